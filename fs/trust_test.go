package fs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/fs"
	"github.com/s3mount/s3mount/internal/rig"
)

// The TestTrust tests check that a user can trust what the mount says and
// stores: a file read after a change reads the new version whole, a file
// removed or renamed while it is written ends up where a local disk would
// put it, and no half-written file is ever visible in the bucket. Every
// step that could block runs under a deadline: a step that does not return
// is reported as hung, and the mount's connection is aborted so that the
// test can go on and clean up.

// trustStepTimeout bounds one step of a trust test.
const trustStepTimeout = 60 * time.Second

// trustOptions are the settings of a trust test's mount.
type trustOptions struct {
	// MemoryLimit is fs.Options.MemoryLimit; zero keeps the default.
	MemoryLimit int64
}

// trustMount is a mount of the shared rig, as mountRig makes, that a test
// can abort when an operation on it hangs.
type trustMount struct {
	*testMount
	unmountSrv func() error
	waitSrv    func()

	abortOnce sync.Once
	aborted   atomic.Bool
}

// newTrustTest is newWriteTest with a mount that a hung operation cannot
// keep from being cleaned up.
func newTrustTest(t *testing.T, o trustOptions) (*writeTest, *trustMount) {
	t.Helper()
	var m *trustMount
	w := newWriteTestWith(t, func(r *rig.Rig) *testMount {
		m = mountTrust(t, r, o)
		return m.testMount
	})
	if err := m.within(t, "creating the test's directory", func() error { return os.MkdirAll(w.dir, 0o755) }); err != nil {
		t.Fatal(err)
	}
	return w, m
}

// mountTrust mounts the rig's authorized paths as mountRig does, with o's
// settings. Its clean-up unmounts within a deadline, and aborts the FUSE
// connection if the mount cannot be unmounted.
func mountTrust(t *testing.T, r *rig.Rig, o trustOptions) *trustMount {
	t.Helper()
	fsys, tm := newRigFS(t, r, rigFSOptions{TTL: time.Minute, MemoryLimit: o.MemoryLimit})
	tm.dir = t.TempDir()
	srv, err := fsys.Mount(tm.dir, fs.MountOptions{Debug: testing.Verbose() && os.Getenv("S3MOUNT_DEBUG_FUSE") != ""})
	if err != nil {
		t.Fatal(err)
	}
	m := &trustMount{testMount: tm, unmountSrv: srv.Unmount, waitSrv: srv.Wait}
	t.Cleanup(func() {
		m.close(t)
		if err := fsys.Close(); err != nil {
			t.Errorf("removing the staging directory: %v", err)
		}
	})
	return m
}

// boundedCall runs fn and reports whether it returned within d, and its
// error if it did.
func boundedCall(d time.Duration, fn func() error) (bool, error) {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

// close unmounts m. If that does not work within 30 seconds, it aborts the
// connection. Server goroutines stuck inside the filesystem are left behind
// rather than waited for forever.
func (m *trustMount) close(t *testing.T) {
	if !m.aborted.Load() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			returned, err := boundedCall(time.Until(deadline), m.unmountSrv)
			if returned && err == nil {
				return
			}
			if !returned || time.Now().After(deadline) {
				t.Errorf("unmount %s: %v (returned %v); aborting the FUSE connection", m.dir, err, returned)
				m.abort()
				break
			}
			// The kernel releases files asynchronously after close: try again.
			time.Sleep(100 * time.Millisecond)
		}
	}
	if returned, _ := boundedCall(10*time.Second, func() error { m.waitSrv(); return nil }); !returned {
		t.Logf("FUSE server goroutines of %s are still blocked in the filesystem after the abort; leaving them", m.dir)
	}
}

// abort aborts the mount's FUSE connection: a forced unmount makes the
// kernel fail every request in flight with ENOTCONN, which unblocks the
// test's system calls. Then the mount is detached.
func (m *trustMount) abort() {
	m.abortOnce.Do(func() {
		m.aborted.Store(true)
		syscall.Unmount(m.dir, syscall.MNT_FORCE)
		syscall.Unmount(m.dir, syscall.MNT_DETACH)
	})
}

// within runs fn, a step that uses the mount, and returns its error. A step
// that does not return within trustStepTimeout fails the test as hung,
// after the mount is aborted.
func (m *trustMount) within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	return m.withinFor(t, trustStepTimeout, what, fn)
}

// withinFor is within with the deadline d.
func (m *trustMount) withinFor(t *testing.T, d time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
	}
	stacks := fsStacks()
	m.abort()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Logf("%s is still blocked after the abort", what)
	}
	t.Fatalf("%s: hung for %v; the mount's connection was aborted. Goroutines inside the filesystem then:\n%s", what, d, stacks)
	return nil
}

// fsStacks returns the stacks of the goroutines running filesystem code,
// to show where a hung operation waits.
func fsStacks() string {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var keep []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "s3mount/s3mount/fs.") {
			keep = append(keep, g)
		}
	}
	if len(keep) > 30 {
		keep = append(keep[:30], fmt.Sprintf("… and %d more", len(keep)-30))
	}
	if len(keep) == 0 {
		return "(none)"
	}
	return strings.Join(keep, "\n\n")
}

// errnoName describes err for a failure message, with its errno's name.
func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%v (%s)", err, trustErrnoNames[errno])
	}
	return fmt.Sprint(err)
}

var trustErrnoNames = map[syscall.Errno]string{
	syscall.ENOENT: "ENOENT", syscall.ESTALE: "ESTALE", syscall.EIO: "EIO", syscall.EACCES: "EACCES",
	syscall.ENOTEMPTY: "ENOTEMPTY", syscall.ENOTCONN: "ENOTCONN", syscall.EINTR: "EINTR", syscall.ENOSPC: "ENOSPC",
	syscall.EXDEV: "EXDEV", syscall.EINVAL: "EINVAL", syscall.EROFS: "EROFS",
}

// waitNoUploads polls until no multipart upload is left under prefix: the
// kernel releases a file after close returns, and an upload may be aborted
// only then.
func waitNoUploads(t *testing.T, w *writeTest, prefix string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ups := s3Uploads(t, w.r, wsBucket, prefix)
		if len(ups) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("multipart uploads left under s3://%s/%s 10s after close: %q", wsBucket, prefix, ups)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keysForFailure lists the keys under the test's prefix, for a failure
// message.
func keysForFailure(t *testing.T, w *writeTest) string {
	t.Helper()
	return fmt.Sprintf("keys under s3://%s/%s: %q; uploads: %q", wsBucket, w.prefix, w.keys(t, wsBucket, w.prefix), s3Uploads(t, w.r, wsBucket, w.prefix))
}

// TestTrustReopenAfterStale changes a file while a reader has it open, and
// opens it again: the new open reads the file as it now is, whole, with
// its new size. (A read handle pins the version it opened, so the open
// reader may fail with ESTALE; the next open must not inherit that.)
func TestTrustReopenAfterStale(t *testing.T) {
	w, m := newTrustTest(t, trustOptions{})
	old := randomBytes(16<<20, 21)
	// Larger than the old version: a kernel that kept the old size would
	// cut the read short.
	repl := randomBytes(20<<20+4321, 22)
	// probe is where the reader goes on reading after the change: far past
	// the first read and the kernel's readahead, so it needs a new GET.
	const probe = 12 << 20

	for _, tc := range []struct {
		name string
		// change changes the file at path while a reader holds it open,
		// and returns where to open it again and what that must read.
		change func(t *testing.T, path, key string) (string, []byte)
		// staleOnly: the reader must fail with ESTALE. Otherwise it may
		// also go on reading the version it opened, or the new one.
		staleOnly bool
	}{
		{
			name:      "replaced by another client",
			staleOnly: true,
			change: func(t *testing.T, path, key string) (string, []byte) {
				putObject(t, w.r, wsBucket, key, repl)
				return path, repl
			},
		},
		{
			name: "renamed by this mount",
			change: func(t *testing.T, path, key string) (string, []byte) {
				dst := path + ".moved"
				if err := m.within(t, "rename", func() error { return os.Rename(path, dst) }); err != nil {
					t.Fatalf("Rename(%q, %q) with a reader open: %v", path, dst, err)
				}
				return dst, old
			},
		},
		{
			name: "rewritten by this mount",
			change: func(t *testing.T, path, key string) (string, []byte) {
				if err := m.within(t, "rewrite", func() error { return os.WriteFile(path, repl, 0o644) }); err != nil {
					t.Fatalf("WriteFile(%q) with a reader open: %v", path, err)
				}
				return path, repl
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-") + ".bin"
			key, path := w.prefix+name, filepath.Join(w.dir, name)
			putObject(t, w.r, wsBucket, key, old)

			var f *os.File
			first := make([]byte, 1<<20)
			if err := m.within(t, "open and first read", func() error {
				var err error
				if f, err = os.Open(path); err != nil {
					return err
				}
				_, err = f.ReadAt(first, 0)
				return err
			}); err != nil {
				t.Fatalf("opening %s and reading its first MiB: %v", path, err)
			}
			defer f.Close()
			if !bytes.Equal(first, old[:len(first)]) {
				t.Fatalf("first MiB of %s = %s, want %s", path, describe(first), describe(old[:len(first)]))
			}

			path2, want := tc.change(t, path, key)

			// Forget what the kernel cached for the open file, as memory
			// pressure would on a long read, so that the reader asks the
			// mount again.
			dropPageCache(f)
			probed := make([]byte, 1<<20)
			var n int
			var rerr error
			m.within(t, "reading on after the change", func() error {
				n, rerr = f.ReadAt(probed, probe)
				return nil
			})
			switch {
			case rerr == nil && tc.staleOnly:
				t.Errorf("ReadAt(%d) after the object was replaced = %d bytes (%s), want ESTALE", probe, n, describe(probed[:n]))
			case rerr == nil:
				if got := probed[:n]; !bytes.Equal(got, old[probe:probe+len(probed)]) && !bytes.Equal(got, want[probe:probe+len(probed)]) {
					t.Errorf("ReadAt(%d) after the change = %s, want the same bytes of the old or the new version", probe, describe(got))
				}
			case isErrno(rerr, syscall.ESTALE):
			case !tc.staleOnly && isErrno(rerr, syscall.ENOENT):
				t.Logf("ReadAt(%d) after the change: %v", probe, rerr)
			default:
				t.Errorf("ReadAt(%d) after the change: %s, want ESTALE", probe, errnoName(rerr))
			}
			f.Close()

			// Open it again: this open must see the current version.
			var statSize, fstatSize int64
			var got []byte
			if err := m.within(t, "reopen", func() error {
				fi, err := os.Stat(path2)
				if err != nil {
					return fmt.Errorf("Stat: %w", err)
				}
				statSize = fi.Size()
				g, err := os.Open(path2)
				if err != nil {
					return fmt.Errorf("Open: %w", err)
				}
				defer g.Close()
				gi, err := g.Stat()
				if err != nil {
					return fmt.Errorf("Fstat: %w", err)
				}
				fstatSize = gi.Size()
				if got, err = io.ReadAll(g); err != nil {
					return fmt.Errorf("read: %w", err)
				}
				return nil
			}); err != nil {
				t.Fatalf("opening %s again after the change: %s", path2, errnoName(err))
			}
			if statSize != int64(len(want)) || fstatSize != int64(len(want)) {
				t.Errorf("after the change, Stat(%q).Size() = %d and Fstat after open = %d, want %d", path2, statSize, fstatSize, len(want))
			}
			if !bytes.Equal(got, want) {
				t.Errorf("reading %s again after the change = %s, want %s", path2, describe(got), describe(want))
			}
			if path2 != path {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("Stat(%q) after the rename: %v, want not-exist", path, err)
				}
			}
		})
	}

	t.Run("directory of multipart files moved by this mount", func(t *testing.T) {
		// Files over one part, written through the mount, are multipart
		// uploads; their copies in the new place get new ETags.
		src, dst := filepath.Join(w.dir, "mpdir"), filepath.Join(w.dir, "mpdir2")
		files := []struct {
			name string
			data []byte
		}{{"a.bin", randomBytes(10<<20+1, 23)}, {"b.bin", randomBytes(9<<20, 24)}}
		if err := m.within(t, "writing the files", func() error {
			if err := os.Mkdir(src, 0o755); err != nil {
				return err
			}
			for _, f := range files {
				if err := os.WriteFile(filepath.Join(src, f.name), f.data, 0o644); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		etags := map[string]string{}
		for _, f := range files {
			head, ok := s3Head(t, w.r, wsBucket, w.prefix+"mpdir/"+f.name)
			if !ok {
				t.Fatalf("s3://%s/%smpdir/%s does not exist after close", wsBucket, w.prefix, f.name)
			}
			etags[f.name] = aws.ToString(head.ETag)
			if !strings.Contains(etags[f.name], "-") {
				t.Logf("%s: ETag %s is not a multipart upload's", f.name, etags[f.name])
			}
		}
		if err := m.within(t, "mv of the directory", func() error { return os.Rename(src, dst) }); err != nil {
			t.Fatalf("Rename(%q, %q): %v", src, dst, err)
		}
		for _, f := range files {
			if head, ok := s3Head(t, w.r, wsBucket, w.prefix+"mpdir2/"+f.name); ok && aws.ToString(head.ETag) == etags[f.name] {
				t.Logf("%s: the copy kept the ETag %s", f.name, etags[f.name])
			}
			path := filepath.Join(dst, f.name)
			var got []byte
			var size int64
			err := m.within(t, "reading "+path, func() error {
				g, err := os.Open(path)
				if err != nil {
					return err
				}
				defer g.Close()
				// As later, when the kernel no longer caches what was
				// written.
				dropPageCache(g)
				fi, err := g.Stat()
				if err != nil {
					return err
				}
				size = fi.Size()
				got, err = io.ReadAll(g)
				return err
			})
			if err != nil {
				t.Errorf("reading %s after mv: %s", path, errnoName(err))
				continue
			}
			if size != int64(len(f.data)) || !bytes.Equal(got, f.data) {
				t.Errorf("after mv, %s: size %d, content %s; want %d bytes, %s", path, size, describe(got), len(f.data), describe(f.data))
			}
		}
	})
}

// TestTrustDirListingRace creates files in one directory while other
// goroutines list it and look names up, through a real mount, for a few
// seconds: the race detector, or the runtime's check for concurrent map
// access, reports any access to the directory's listing without its lock.
// The work runs in a child process, so that a crash fails this test
// instead of ending the whole test binary with its mounts in place.
func TestTrustDirListingRace(t *testing.T) {
	if !trustIsChild(t) {
		if !raceEnabled {
			t.Log("the race detector is off: only a crash on concurrent map access can show the defect")
		}
		trustRunChild(t, 4*time.Minute)
		return
	}
	w, m := newTrustTest(t, trustOptions{})
	dir := w.dir
	// A fresh listing, so that lookups and creates use it.
	if err := m.within(t, "first listing", func() error { _, err := os.ReadDir(dir); return err }); err != nil {
		t.Fatal(err)
	}
	const (
		creators = 4
		listers  = 2
		statters = 2
		maxFiles = 300 // per creator
	)
	stop := time.Now().Add(3 * time.Second)
	created := make([][]string, creators)
	var wg sync.WaitGroup
	for g := range creators {
		wg.Go(func() {
			for i := 0; i < maxFiles && time.Now().Before(stop); i++ {
				name := fmt.Sprintf("c%d-%04d", g, i)
				if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
					t.Errorf("WriteFile(%s): %v", name, err)
					return
				}
				created[g] = append(created[g], name)
			}
		})
	}
	for range listers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := os.ReadDir(dir); err != nil {
					t.Errorf("ReadDir(%q): %v", dir, err)
					return
				}
			}
		})
	}
	for s := range statters {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				// A name never created is a lookup the kernel has not
				// cached; a name a creator is about to create races with
				// its create.
				if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("nx-%d-%d", s, i))); !os.IsNotExist(err) {
					t.Errorf("Stat of a missing name: %v, want not-exist", err)
					return
				}
				soon := filepath.Join(dir, fmt.Sprintf("c%d-%04d", i%creators, i/creators))
				if _, err := os.Stat(soon); err != nil && !os.IsNotExist(err) {
					t.Errorf("Stat(%q): %v", soon, err)
					return
				}
			}
		})
	}
	m.within(t, "the concurrent creates, listings and lookups", func() error { wg.Wait(); return nil })

	var want []string
	for _, names := range created {
		want = append(want, names...)
	}
	slices.Sort(want)
	t.Logf("%d files created while listing", len(want))
	var listed []string
	if err := m.within(t, "final listing", func() error {
		entries, err := os.ReadDir(dir)
		for _, e := range entries {
			listed = append(listed, e.Name())
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("ReadDir after the creates lists %d names, want the %d created; missing %q, extra %q",
			len(listed), len(want), trustMinus(want, listed), trustMinus(listed, want))
	}
	var keys []string
	for _, k := range w.keys(t, wsBucket, w.prefix) {
		if k != "" {
			keys = append(keys, k)
		}
	}
	if !slices.Equal(keys, want) {
		t.Errorf("%d objects under s3://%s/%s, want the %d created; missing %q", len(keys), wsBucket, w.prefix, len(want), trustMinus(want, keys))
	}
}

// trustMinus returns the strings of a that are not in b, both sorted.
func trustMinus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); !found {
			out = append(out, s)
		}
	}
	return out
}

// trustChildEnv names the test that a child process started by
// trustRunChild is to run.
const trustChildEnv = "S3MOUNT_TRUST_CHILD"

// trustIsChild reports whether this process is the child trustRunChild
// started for t.
func trustIsChild(t *testing.T) bool { return os.Getenv(trustChildEnv) == t.Name() }

// trustRunChild runs t again in a child process of the test binary and
// fails t if the child fails, reports a data race, or crashes. The child's
// temporary files, mounts included, are under a directory of t's, and any
// mount it leaves (a crash leaves its mount dead) is detached.
func trustRunChild(t *testing.T, timeout time.Duration) {
	t.Helper()
	tmp := t.TempDir()
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() { detachMountsUnder(t, tmp) })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v",
		"-test.timeout="+(timeout-30*time.Second).String())
	cmd.Env = append(os.Environ(), trustChildEnv+"="+t.Name(), "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	began := time.Now()
	err := cmd.Run()
	t.Logf("the child ran for %v", time.Since(began).Round(time.Millisecond))
	text := out.String()
	switch {
	case ctx.Err() != nil:
		t.Errorf("the child running %s hung for %v and was killed:\n%s", t.Name(), timeout, trustDigest(text))
	case err != nil || strings.Contains(text, "WARNING: DATA RACE") || strings.Contains(text, "fatal error:"):
		t.Errorf("the child running %s failed (%v):\n%s", t.Name(), err, trustDigest(text))
	}
}

// trustDigest keeps what explains a child's failure: its first data race
// report, the first fatal error with the start of its goroutine dump, the
// test's failure lines, and the end of the output.
func trustDigest(out string) string {
	lines := strings.Split(out, "\n")
	var keep []string
	if i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "WARNING: DATA RACE") }); i >= 0 {
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "==========") {
			end++
		}
		keep = append(keep, lines[i:min(end+1, len(lines))]...)
	}
	if i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "fatal error:") }); i >= 0 {
		keep = append(keep, lines[i:min(i+80, len(lines))]...)
	}
	for _, l := range lines {
		if tl := strings.TrimSpace(l); strings.HasPrefix(tl, "trust_test.go:") || strings.HasPrefix(tl, "testing.go:") || strings.HasPrefix(tl, "--- FAIL") {
			keep = append(keep, l)
		}
	}
	keep = append(keep, "[end of the child's output:]")
	keep = append(keep, lines[max(0, len(lines)-12):]...)
	return strings.Join(keep, "\n")
}

// detachMountsUnder lazily unmounts every mount below dir.
func detachMountsUnder(t *testing.T, dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Errorf("reading the mount table: %v", err)
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.HasPrefix(fields[1], dir+"/") {
			continue
		}
		t.Logf("the child left %s (%s) mounted; detaching it", fields[1], fields[0])
		if err := syscall.Unmount(fields[1], syscall.MNT_DETACH); err != nil {
			t.Errorf("detaching %s: %v", fields[1], err)
		}
	}
}

// TestTrustRemoveWhileWriting removes a file that is still being written,
// as rm would, and goes on writing: as on a local disk, the writes and the
// close succeed and the file is gone, so nothing may appear in the bucket
// and no multipart upload may be left.
func TestTrustRemoveWhileWriting(t *testing.T) {
	w, m := newTrustTest(t, trustOptions{})
	path, key := filepath.Join(w.dir, "removed.bin"), w.prefix+"removed.bin"
	data := randomBytes(24<<20, 31)
	var f *os.File
	if err := m.within(t, "create and write 20 MiB", func() error {
		var err error
		if f, err = os.Create(path); err != nil {
			return err
		}
		_, err = f.Write(data[:20<<20])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.within(t, "rm", func() error { return os.Remove(path) }); err != nil {
		t.Fatalf("Remove(%q) while it is written: %v", path, err)
	}
	var werr, cerr error
	m.within(t, "write after rm, and close", func() error {
		_, werr = f.Write(data[20<<20:])
		cerr = f.Close()
		return nil
	})
	if werr != nil {
		t.Errorf("Write of 4 MiB more after rm: %s, want success as on a local disk", errnoName(werr))
	}
	if cerr != nil {
		t.Errorf("Close after rm: %s, want success as on a local disk", errnoName(cerr))
	}
	if got, ok := w.object(t, wsBucket, key); ok {
		t.Errorf("s3://%s/%s exists after rm and close (%s); the removed file came back", wsBucket, key, describe(got))
	}
	waitNoUploads(t, w, w.prefix)
	w.wantNoObject(t, wsBucket, key)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Stat(%q) after rm and close: %v, want not-exist", path, err)
	}
}

// TestTrustRenameWhileWriting renames a file that is still being written,
// or its directory, and goes on writing: as on a local disk, the whole
// content lands under the new name and nothing stays at the old one.
func TestTrustRenameWhileWriting(t *testing.T) {
	w, m := newTrustTest(t, trustOptions{})
	for _, tc := range []struct {
		name string
		// mkdirs are created first; the file is written at file, then
		// from is renamed to to, and the file must end up at moved.
		mkdirs                []string
		file, from, to, moved string
		// gone is a prefix (relative to the test's) with no key left
		// after the close: the old name, or the old directory.
		gone string
	}{
		{name: "same directory", mkdirs: []string{"a"}, file: "a/f.bin", from: "a/f.bin", to: "a/g.bin", moved: "a/g.bin", gone: "a/f.bin"},
		{name: "into another directory", mkdirs: []string{"b", "b2"}, file: "b/f.bin", from: "b/f.bin", to: "b2/f.bin", moved: "b2/f.bin", gone: "b/f.bin"},
		{name: "its directory", mkdirs: []string{"c"}, file: "c/f.bin", from: "c", to: "c2", moved: "c2/f.bin", gone: "c/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(24<<20, 41)
			abs := func(rel string) string { return filepath.Join(w.dir, rel) }
			var f *os.File
			if err := m.within(t, "create and write 20 MiB", func() error {
				for _, d := range tc.mkdirs {
					if err := os.Mkdir(abs(d), 0o755); err != nil {
						return err
					}
				}
				var err error
				if f, err = os.Create(abs(tc.file)); err != nil {
					return err
				}
				_, err = f.Write(data[:20<<20])
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := m.within(t, "mv", func() error { return os.Rename(abs(tc.from), abs(tc.to)) }); err != nil {
				t.Fatalf("Rename(%q, %q) while the file is written: %s", tc.from, tc.to, errnoName(err))
			}
			var werr, cerr error
			m.within(t, "write after mv, and close", func() error {
				_, werr = f.Write(data[20<<20:])
				cerr = f.Close()
				return nil
			})
			if werr != nil {
				t.Errorf("Write of 4 MiB more after mv: %s, want success", errnoName(werr))
			}
			if cerr != nil {
				t.Errorf("Close after mv: %s, want success", errnoName(cerr))
			}
			waitNoUploads(t, w, w.prefix)
			got, ok := w.object(t, wsBucket, w.prefix+tc.moved)
			if !ok || !bytes.Equal(got, data) {
				t.Errorf("s3://%s/%s%s after mv, write and close: exists %v, %s; want the whole %s (%s)",
					wsBucket, w.prefix, tc.moved, ok, describe(got), describe(data), keysForFailure(t, w))
			}
			if left := w.keys(t, wsBucket, w.prefix+tc.gone); len(left) != 0 {
				t.Errorf("keys left at the old name s3://%s/%s%s: %q", wsBucket, w.prefix, tc.gone, left)
			}
			var size int64
			if err := m.within(t, "stat", func() error {
				fi, err := os.Stat(abs(tc.moved))
				if err == nil {
					size = fi.Size()
				}
				return err
			}); err != nil || size != int64(len(data)) {
				t.Errorf("Stat(%q) after close: size %d, %v; want %d", tc.moved, size, err, len(data))
			}
		})
	}
}

// TestTrustRmdirWhileWriting removes the directory of a new file that is
// still being written and not yet uploaded: as on a local disk, rmdir
// fails with ENOTEMPTY and the file is stored on close.
func TestTrustRmdirWhileWriting(t *testing.T) {
	w, m := newTrustTest(t, trustOptions{})
	dir, path, key := filepath.Join(w.dir, "d"), filepath.Join(w.dir, "d", "f.txt"), w.prefix+"d/f.txt"
	content := []byte("written, not yet closed\n")
	var f *os.File
	if err := m.within(t, "mkdir, create, write", func() error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		var err error
		if f, err = os.Create(path); err != nil {
			return err
		}
		_, err = f.Write(content)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rmErr, cerr error
	m.within(t, "rmdir, close", func() error {
		rmErr = syscall.Rmdir(dir)
		cerr = f.Close()
		return nil
	})
	if !isErrno(rmErr, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a directory holding a file being written: %s, want ENOTEMPTY", errnoName(rmErr))
	}
	if cerr != nil {
		t.Errorf("Close: %s", errnoName(cerr))
	}
	w.wantObject(t, wsBucket, key, content)
	if err := m.within(t, "stat", func() error {
		fi, err := os.Stat(dir)
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("not a directory: %v", fi.Mode())
		}
		return err
	}); err != nil {
		t.Errorf("Stat(%q) after the failed rmdir: %v, want a directory", dir, err)
	}
}

// trustDriver is a Python program that opens argv[1] as a new file and
// runs the operations argv[2:] on it: "w:SRC" writes the content of the
// local file SRC at the current offset, "p0:SRC" writes it at offset 0,
// "t:N" truncates to N bytes, "end" seeks to the end, "fork" forks a child
// that exits at once (closing its copy of the descriptor, which flushes
// it), "fsync" and "close". "pause:TAG" prints "paused TAG" and waits for
// a line on stdin. It prints "done" at the end.
const trustDriver = `
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for op in sys.argv[2:]:
    name, _, arg = op.partition(':')
    if name == 'w' or name == 'p0':
        with open(arg, 'rb') as src:
            view = memoryview(src.read())
        off = 0
        while off < len(view):
            chunk = view[off:off + (1 << 20)]
            if name == 'w':
                n = os.write(fd, chunk)
            else:
                n = os.pwrite(fd, chunk, off)
            off += n
    elif name == 't':
        os.ftruncate(fd, int(arg))
    elif name == 'end':
        os.lseek(fd, 0, os.SEEK_END)
    elif name == 'fork':
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    elif name == 'fsync':
        os.fsync(fd)
    elif name == 'pause':
        print('paused ' + arg, flush=True)
        sys.stdin.readline()
    elif name == 'close':
        os.close(fd)
    else:
        sys.exit('unknown operation ' + op)
print('done', flush=True)
`

// trustShellAppend appends two local files to $1 with cat, in one shell
// redirection: each cat is a child process, and its exit closes its copy
// of the descriptor. It pauses as trustDriver does.
const trustShellAppend = `exec 3>&1
{ cat "$2"; echo "paused written" >&3; read x; cat "$3"; echo "paused closing" >&3; read x; } >> "$1"
echo done`

// TestTrustNoPartialObjects writes files the ways science programs do, and
// polls the bucket through the SDK meanwhile: until close (or fsync), no
// object may appear at the key, whatever the program does with the open
// file; then the object holds what the same program leaves on a local disk.
func TestTrustNoPartialObjects(t *testing.T) {
	// The programs run in processes of their own, which runPausing kills
	// if they hang; the mount needs no abort.
	w, _ := newTrustTest(t, trustOptions{})
	local := t.TempDir()
	a, b, h := randomBytes(20<<20, 51), randomBytes(4<<20, 52), randomBytes(100, 53)
	src := func(name string, data []byte) string {
		p := filepath.Join(local, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pa, pb, ph := src("a.src", a), src("b.src", b), src("h.src", h)
	py := func(ops ...string) func(path string) []string {
		return func(path string) []string { return append([]string{"python3", "-c", trustDriver, path}, ops...) }
	}

	for _, tc := range []struct {
		name string
		argv func(path string) []string
		// visible is content the key may show before the close: nil, none.
		visible []byte
		// mustShow is the content the key must hold at a pause.
		mustShow map[string][]byte
	}{
		{name: "sequential", argv: py("w:"+pa, "pause:written", "w:"+pb, "pause:closing", "close")},
		{name: "header patched at offset 0", argv: py("w:"+pa, "pause:written", "p0:"+ph, "pause:patched", "end", "w:"+pb, "pause:closing", "close")},
		{name: "ftruncate larger, then more writes", argv: py("w:"+pa, "pause:written", "t:"+strconv.Itoa(len(a)+1<<20), "pause:truncated", "end", "w:"+pb, "pause:closing", "close")},
		{name: "child process exits", argv: py("w:"+pa, "fork", "pause:forked", "w:"+pb, "fork", "pause:closing", "close")},
		{name: "shell append with subprocesses", argv: func(path string) []string {
			return []string{"sh", "-c", trustShellAppend, "sh", path, pa, pb}
		}},
		{name: "fsync midway", argv: py("w:"+pa, "fsync", "pause:fsynced", "w:"+pb, "pause:closing", "close"),
			visible: a, mustShow: map[string][]byte{"fsynced": a, "closing": a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.NewReplacer(" ", "-", ",", "").Replace(tc.name) + ".bin"
			key, path := w.prefix+name, filepath.Join(w.dir, name)

			// The oracle: the same program on a local disk.
			oraclePath := filepath.Join(t.TempDir(), name)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			argv := tc.argv(oraclePath)
			oracle := exec.CommandContext(ctx, argv[0], argv[1:]...)
			oracle.Stdin = strings.NewReader(strings.Repeat("\n", 20))
			if out, err := oracle.CombinedOutput(); err != nil {
				t.Fatalf("the program on a local disk: %v\n%s", err, out)
			}
			want, err := os.ReadFile(oraclePath)
			if err != nil {
				t.Fatal(err)
			}

			poll := startTrustPoller(w.r, wsBucket, key, tc.visible)
			defer poll.stop()
			pauses := runPausing(t, tc.argv(path), func(tag string) {
				got, ok := w.object(t, wsBucket, key)
				if show, must := tc.mustShow[tag]; must {
					if !ok || !bytes.Equal(got, show) {
						t.Errorf("at pause %q: s3://%s/%s exists %v, %s; want %s", tag, wsBucket, key, ok, describe(got), describe(show))
					}
				} else if ok && (tc.visible == nil || !bytes.Equal(got, tc.visible)) {
					t.Errorf("at pause %q, with the file still open: s3://%s/%s exists (%s); want no object before close", tag, wsBucket, key, describe(got))
				}
				if tag == "closing" {
					poll.stop()
				}
			})
			poll.stop()
			for _, v := range poll.violations() {
				t.Errorf("while the file was open: %s", v)
			}
			if !slices.Contains(pauses, "closing") {
				t.Fatalf("the program did not reach its close; it paused at %q", pauses)
			}
			got, ok := w.object(t, wsBucket, key)
			if !ok || !bytes.Equal(got, want) {
				t.Errorf("s3://%s/%s after close: exists %v, %s; want what a local disk holds, %s", wsBucket, key, ok, describe(got), describe(want))
			}
			waitNoUploads(t, w, w.prefix)
		})
	}
}

// runPausing runs argv, a program that prints "paused TAG" and waits for a
// line on stdin at each pause, and "done" at its end. At each pause it
// calls check, then lets the program go on. It returns the tags seen, and
// fails t if the program fails or takes longer than two minutes.
func runPausing(t *testing.T, argv []string, check func(tag string)) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var tags []string
	done := false
read:
	for {
		select {
		case line, open := <-lines:
			if !open {
				break read
			}
			if tag, ok := strings.CutPrefix(line, "paused "); ok {
				t.Logf("%s paused at %q after %v", argv[0], tag, time.Since(began).Round(time.Millisecond))
				tags = append(tags, tag)
				check(tag)
				io.WriteString(stdin, "\n")
			} else if line == "done" {
				done = true
			} else {
				t.Logf("%s: %s", argv[0], line)
			}
		case <-ctx.Done():
			t.Errorf("%s hung after the pauses %q; killed it", argv[0], tags)
			break read
		}
	}
	stdin.Close()
	err = cmd.Wait()
	if err != nil || !done {
		t.Errorf("%s: %v, done %v\n%s", argv[0], err, done, stderr.String())
	}
	return tags
}

// trustPoller polls an object's existence through the SDK in the
// background, and records every time it shows something other than
// nothing or the allowed content's size.
type trustPoller struct {
	stopOnce sync.Once
	quit     chan struct{}
	finished chan struct{}

	mu   sync.Mutex // guards seen and bad
	seen map[string]bool
	bad  []string
}

func startTrustPoller(r *rig.Rig, bucketName, key string, allowed []byte) *trustPoller {
	p := &trustPoller{quit: make(chan struct{}), finished: make(chan struct{}), seen: map[string]bool{}}
	go func() {
		defer close(p.finished)
		for {
			select {
			case <-p.quit:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			head, err := r.MinIO.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key)})
			cancel()
			var what string
			switch {
			case isNotFound(err):
			case err != nil:
				what = "HeadObject failed: " + err.Error()
			case allowed == nil || aws.ToInt64(head.ContentLength) != int64(len(allowed)):
				what = fmt.Sprintf("s3://%s/%s appeared with %d bytes, ETag %s", bucketName, key, aws.ToInt64(head.ContentLength), aws.ToString(head.ETag))
			}
			if what != "" {
				p.mu.Lock()
				if !p.seen[what] {
					p.seen[what] = true
					p.bad = append(p.bad, what)
				}
				p.mu.Unlock()
			}
			select {
			case <-p.quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return p
}

// stop ends the polling and waits for it.
func (p *trustPoller) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.finished
}

func (p *trustPoller) violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.bad)
}

// TestTrustWriteMemoryManyFiles writes 300 files at once from one process,
// as a model writing one output per variable does: a little to each, then
// 9 MiB to a few of them in turn, then closes them all. The mount's write
// memory must not deadlock it, however small.
func TestTrustWriteMemoryManyFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		memory int64
	}{
		{"default memory limit", 0},
		{"16 MiB memory limit", 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, m := newTrustTest(t, trustOptions{MemoryLimit: tc.memory})
			const files = 300
			want := make([][]byte, files)
			var big []int
			for i := range files {
				want[i] = append([]byte(fmt.Sprintf("file %03d\n", i)), randomBytes(1000, byte(i))...)
				if i%60 == 7 {
					big = append(big, i)
				}
			}
			tails := map[int][]byte{}
			for _, i := range big {
				tails[i] = randomBytes(9<<20, byte(100+i))
			}
			path := func(i int) string { return filepath.Join(w.dir, fmt.Sprintf("f%03d.dat", i)) }
			began := time.Now()
			err := m.within(t, "writing 300 open files", func() error {
				handles := make([]*os.File, files)
				defer func() {
					for _, f := range handles {
						if f != nil {
							f.Close()
						}
					}
				}()
				for i := range files {
					f, err := os.Create(path(i))
					if err != nil {
						return fmt.Errorf("create %s: %w", path(i), err)
					}
					handles[i] = f
					if _, err := f.Write(want[i]); err != nil {
						return fmt.Errorf("first write to %s: %w", path(i), err)
					}
				}
				for off := 0; off < 9<<20; off += 1 << 20 {
					for _, i := range big {
						if _, err := handles[i].Write(tails[i][off : off+1<<20]); err != nil {
							return fmt.Errorf("write at %d to %s: %w", len(want[i])+off, path(i), err)
						}
					}
				}
				for i, f := range handles {
					handles[i] = nil
					if err := f.Close(); err != nil {
						return fmt.Errorf("close %s: %w", path(i), err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("300 files written in %v", time.Since(began).Round(time.Millisecond))
			for _, i := range big {
				want[i] = append(want[i], tails[i]...)
			}
			var keys []string
			for _, k := range w.keys(t, wsBucket, w.prefix) {
				if k != "" {
					keys = append(keys, k)
				}
			}
			if len(keys) != files {
				t.Errorf("%d objects under s3://%s/%s, want %d", len(keys), wsBucket, w.prefix, files)
			}
			for i := range files {
				key := w.prefix + filepath.Base(path(i))
				if got, ok := w.object(t, wsBucket, key); !ok || !bytes.Equal(got, want[i]) {
					t.Errorf("s3://%s/%s: exists %v, %s; want %s", wsBucket, key, ok, describe(got), describe(want[i]))
				}
			}
			waitNoUploads(t, w, w.prefix)
		})
	}
}

// TestTrustAppendToVanishedFile appends to a file whose object is gone:
// deleted by another client after the mount saw it, or removed through the
// mount while open. The user may see the write succeed (as a local disk
// lets an open file live on), or ENOENT or ESTALE, but not EIO, and the
// log must not blame S3 for it.
func TestTrustAppendToVanishedFile(t *testing.T) {
	w, m := newTrustTest(t, trustOptions{})
	for _, tc := range []struct {
		name string
		// sdkDelete deletes the object through the SDK before the open;
		// otherwise it is removed through the mount after the open.
		sdkDelete bool
	}{
		{"deleted by another client", true},
		{"removed through the mount while open", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-") + ".log"
			key, path := w.prefix+name, filepath.Join(w.dir, name)
			putObject(t, w.r, wsBucket, key, []byte("hello\n"))
			if err := m.within(t, "stat", func() error { _, err := os.Stat(path); return err }); err != nil {
				t.Fatalf("Stat(%q): %v", path, err)
			}
			logStart := len(m.logs.String())
			if tc.sdkDelete {
				if _, err := w.r.MinIO.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(wsBucket), Key: aws.String(key)}); err != nil {
					t.Fatal(err)
				}
			}
			var openErr, rmErr, writeErr, closeErr error
			m.within(t, "append", func() error {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				if openErr = err; err != nil {
					return nil
				}
				if !tc.sdkDelete {
					rmErr = os.Remove(path)
				}
				_, writeErr = f.WriteString("more\n")
				closeErr = f.Close()
				return nil
			})
			if rmErr != nil {
				t.Fatalf("Remove(%q) while open: %v", path, rmErr)
			}
			for _, step := range []struct {
				op  string
				err error
			}{{"open for append", openErr}, {"write", writeErr}, {"close", closeErr}} {
				if step.err != nil && !isErrno(step.err, syscall.ENOENT) && !isErrno(step.err, syscall.ESTALE) {
					t.Errorf("%s: %s; want success, ENOENT or ESTALE", step.op, errnoName(step.err))
				}
			}
			t.Logf("open %v, write %v, close %v", openErr, writeErr, closeErr)
			if logs := m.logs.String()[logStart:]; strings.Contains(logs, "S3 request failed") {
				var lines []string
				for _, l := range strings.Split(logs, "\n") {
					if strings.Contains(l, "S3 request failed") {
						lines = append(lines, l)
					}
				}
				t.Errorf("the log blames S3 for a file that is gone:\n%s", strings.Join(lines, "\n"))
			}
			got, ok := w.object(t, wsBucket, key)
			switch {
			case !tc.sdkDelete && ok:
				t.Errorf("s3://%s/%s exists after the file was removed through the mount (%s); want no object", wsBucket, key, describe(got))
			case tc.sdkDelete && openErr == nil && writeErr == nil && closeErr == nil && (!ok || !bytes.HasSuffix(got, []byte("more\n"))):
				t.Errorf("the append succeeded, but s3://%s/%s exists %v, %s; want it to end with the appended line", wsBucket, key, ok, describe(got))
			}
			waitNoUploads(t, w, w.prefix)
		})
	}
}

// TestTrustReaddirAfterCommit lists a new directory while a file in it is
// being closed, then lists it again: once close has returned, the file is
// always listed. A listing fetched from S3 before the upload completed
// must not replace what the mount knows about its own write. It runs in a
// child process, as TestTrustDirListingRace does: the listings race with
// the commits here too.
func TestTrustReaddirAfterCommit(t *testing.T) {
	if !trustIsChild(t) {
		trustRunChild(t, 4*time.Minute)
		return
	}
	w, m := newTrustTest(t, trustOptions{})
	var hidden []string
	for i := range 50 {
		dir := filepath.Join(w.dir, fmt.Sprintf("d%02d", i))
		name := fmt.Sprintf("f%02d.txt", i)
		err := m.within(t, "iteration "+strconv.Itoa(i), func() error {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			if _, err := f.WriteString("content " + name + "\n"); err != nil {
				f.Close()
				return err
			}
			// Listings of the new directory run while the file is closed
			// (and uploaded): until one of them is kept, each asks S3, so
			// several are in flight across the upload.
			var closed atomic.Bool
			var listers sync.WaitGroup
			listErrs := make(chan error, 4)
			for range 4 {
				listers.Go(func() {
					for !closed.Load() {
						if _, err := os.ReadDir(dir); err != nil {
							listErrs <- err
							return
						}
					}
				})
			}
			cerr := f.Close()
			closed.Store(true)
			listers.Wait()
			close(listErrs)
			if lerr := <-listErrs; lerr != nil {
				return fmt.Errorf("ReadDir during close: %w", lerr)
			}
			if cerr != nil {
				return fmt.Errorf("close: %w", cerr)
			}
			for j := range 5 {
				entries, err := os.ReadDir(dir)
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == name }) {
					hidden = append(hidden, fmt.Sprintf("%s/%s (listing %d after close: %d entries)", filepath.Base(dir), name, j+1, len(entries)))
					break
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
	}
	if len(hidden) > 0 {
		t.Errorf("ReadDir right after close did not list the file just written, %d times in 50: %q", len(hidden), hidden)
	}
	var files int
	for _, k := range w.keys(t, wsBucket, w.prefix) {
		if strings.HasSuffix(k, ".txt") {
			files++
		}
	}
	if files != 50 {
		t.Errorf("%d files under s3://%s/%s, want 50", files, wsBucket, w.prefix)
	}
}
