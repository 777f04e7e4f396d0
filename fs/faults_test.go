package fs_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3mount/s3mount/internal/rig"
	"github.com/s3mount/s3mount/internal/s3bucket"
)

// The fault tests mount with S3 timeouts of faultTimeout, so that a request
// the store never answers fails its attempt after a second, and its five
// attempts within seconds instead of minutes.
const faultTimeout = time.Second

// Bounds on one system call under faults. A request that makes no progress
// fails after five attempts of faultTimeout and at most 0.75 s of backoff,
// about 6 s; a system call may wait for two such requests in a row (the
// kernel follows a failed readahead with a read of the page asked for), and
// stallBound leaves room for a loaded machine on top. A call still blocked
// after hangLimit is taken as hung: the test gives up on it instead of
// hanging itself.
const (
	stallBound = 25 * time.Second
	hangLimit  = 60 * time.Second
)

// faultTest is a writeTest whose mount uses faultTimeout, with its staging
// directory known, so that a test can look for what a failed upload kept in
// its "unsaved" directory. Its faults are cleared before the mount stops.
type faultTest struct {
	*writeTest
	staging string
}

// newFaultTest mounts the shared rig for t with short S3 timeouts and the
// metadata TTL ttl, and gives it its own prefix in the workspace bucket.
func newFaultTest(t *testing.T, ttl time.Duration) *faultTest {
	t.Helper()
	r := getSharedRig(t)
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	w := &writeTest{r: r, prefix: "jdoe/" + name + "/", sharedPrefix: "team-data/" + name + "/"}
	clearPrefix(t, r, wsBucket, w.prefix)
	t.Cleanup(func() {
		// A request a stall held may reach MinIO once the faults are
		// cleared, after its client gave up: clear until none comes.
		clearPrefix(t, r, wsBucket, w.prefix)
		quiet := time.Now().Add(time.Second)
		for time.Now().Before(quiet) {
			if len(s3Keys(t, r, wsBucket, w.prefix)) > 0 {
				clearPrefix(t, r, wsBucket, w.prefix)
				quiet = time.Now().Add(time.Second)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	staging := t.TempDir()
	w.m = mountRigTimeouts(t, r, ttl, staging)
	// Registered after the mount, so that it runs before the unmount: no
	// request is held by a fault while the mount stops.
	t.Cleanup(r.Proxy.ClearFaults)
	w.dir = filepath.Join(w.m.dir, wsBucket, strings.TrimSuffix(w.prefix, "/"))
	w.sharedDir = filepath.Join(w.m.dir, sharedBucket, strings.TrimSuffix(w.sharedPrefix, "/"))
	return &faultTest{writeTest: w, staging: staging}
}

// mountRigTimeouts is mountRig with S3 timeouts of faultTimeout and the
// staging directory staging.
func mountRigTimeouts(t *testing.T, r *rig.Rig, ttl time.Duration, staging string) *testMount {
	t.Helper()
	return mountRigWith(t, r, rigFSOptions{TTL: ttl, StagingDir: staging, S3: func(o *s3bucket.Options) {
		o.HeaderTimeout, o.IdleTimeout, o.TLSHandshakeTimeout = faultTimeout, faultTimeout, faultTimeout
	}})
}

// matchUnder selects the requests on objects whose key starts with prefix,
// and the listings whose prefix does: every request about those keys,
// lookups included.
func matchUnder(prefix string) rig.Match {
	return func(r *http.Request) bool {
		if key := rig.ObjectKey(r); key != "" {
			return strings.HasPrefix(key, prefix)
		}
		return strings.HasPrefix(r.URL.Query().Get("prefix"), prefix)
	}
}

// within runs op in a goroutine and returns how long it took and its
// error. If op has not returned after limit, the test fails at once: a
// system call on the mount hung. (The goroutine stays blocked until the
// clean-up clears the faults.)
func within(t *testing.T, limit time.Duration, what string, op func() error) (time.Duration, error) {
	t.Helper()
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- op() }()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-done:
		return time.Since(began), err
	case <-timer.C:
		t.Fatalf("%s still blocked after %v: it hangs", what, limit)
		return 0, nil
	}
}

// wantEIOWithin fails the test unless err is EIO and came within stallBound.
func wantEIOWithin(t *testing.T, what string, took time.Duration, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded after %v, want EIO", what, took)
	case !isErrno(err, syscall.EIO):
		t.Errorf("%s = %v after %v, want EIO", what, err, took)
	case took > stallBound:
		t.Errorf("%s failed with EIO after %v, want within %v", what, took, stallBound)
	default:
		t.Logf("%s: EIO after %v", what, took.Round(time.Millisecond))
	}
}

// slug turns a case name into a file name.
func slug(name string) string {
	return strings.NewReplacer(" ", "-", "/", "-", "(", "", ")", "", ",", "").Replace(name)
}

// evictPages drops the kernel's cached pages of a file on the mount, so
// that the next reads reach the filesystem, and through it S3, again.
func evictPages(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	const fadvDontNeed = 4 // POSIX_FADV_DONTNEED
	if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); errno != 0 {
		return fmt.Errorf("posix_fadvise %s: %w", path, errno)
	}
	return nil
}

// firstDifference describes where got differs from want, which it is a read
// at off of; "" if they agree.
func firstDifference(got, want []byte, off int64) string {
	if len(got) > len(want) {
		return fmt.Sprintf("%d bytes at offset %d, past the end of the file's %d expected there", len(got), off, len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("wrong byte at offset %d: %#02x, want %#02x", off+int64(i), got[i], want[i])
		}
	}
	return ""
}

// readSequentially reads path from start to end in reads of bufSize bytes
// and checks every read against want. It returns the error that ended the
// reading early, if any; bad data (a wrong byte, an end of file before
// len(want)) fails the test.
func readSequentially(t *testing.T, path string, want []byte, bufSize int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, bufSize)
	var off int64
	for {
		n, err := f.Read(buf)
		if bad := firstDifference(buf[:n], want[min(off, int64(len(want))):], off); bad != "" {
			t.Errorf("sequential read of %s: %s", path, bad)
			return nil
		}
		off += int64(n)
		switch {
		case err == io.EOF && off != int64(len(want)):
			t.Errorf("sequential read of %s: end of file at %d, want %d bytes: short data", path, off, len(want))
			return nil
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// readRandomly makes count preads of path at offsets and lengths drawn from
// seed, some across or past the end, with flags added to the open (such as
// O_DIRECT), and checks each against want as readSequentially does.
func readRandomly(t *testing.T, path string, want []byte, flags int, count int, seed uint64) error {
	f, err := os.OpenFile(path, os.O_RDONLY|flags, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, 0xfa17))
	size := int64(len(want))
	buf := make([]byte, 1<<20)
	for range count {
		off := rng.Int64N(size + 64<<10)
		length := 1 + rng.IntN(len(buf))
		if rng.IntN(8) == 0 {
			off = max(size-int64(length)/2, 0) // across the end
		}
		n, err := f.ReadAt(buf[:length], off)
		expect := want[min(off, size):min(off+int64(length), size)]
		if bad := firstDifference(buf[:n], expect, off); bad != "" {
			t.Errorf("pread(%d bytes at %d) of %s: %s", length, off, path, bad)
			return nil
		}
		switch {
		case err == io.EOF && n != len(expect):
			t.Errorf("pread(%d bytes at %d) of %s = %d bytes and EOF, want %d bytes: short data", length, off, path, n, len(expect))
			return nil
		case err == nil && n != length:
			t.Errorf("pread(%d bytes at %d) of %s = %d bytes, want %d", length, off, path, n, length)
			return nil
		case err != nil && err != io.EOF:
			return err
		}
	}
	return nil
}

// sha256Hex returns the SHA-256 of b in hex.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestFaultsRead reads a multi-MiB object through the mount while the proxy
// damages its GETs, in four ways: sequential reads compared chunk by chunk,
// sha256sum, random preads through the page cache, and random O_DIRECT
// preads that reach the filesystem at exactly the offsets asked. Every read
// must return the object's bytes; where the fault may exhaust the retries,
// a read may instead fail with EIO, but never return short or wrong data.
func TestFaultsRead(t *testing.T) {
	ft := newFaultTest(t, time.Minute)
	const size = 4<<20 + 4321
	tests := []struct {
		name  string
		fault rig.Fault // Match is set by the test: the object's GETs.
		// mayFail says the fault can hit more often than a read resumes
		// or a GET is retried: reads may then fail, with EIO only.
		mayFail bool
	}{
		// A read resumes a broken stream twice, and the SDK makes five
		// attempts of a GET: faults bounded below that must not show.
		{name: "connection reset mid-body", fault: rig.Fault{Kind: rig.FaultReset, After: 300 << 10, Rate: 0.5, Seed: 1, Times: 2}},
		{name: "short body", fault: rig.Fault{Kind: rig.FaultShortBody, After: 100 << 10, Rate: 0.5, Seed: 2, Times: 2}},
		{name: "reset before the body", fault: rig.Fault{Kind: rig.FaultReset, Rate: 0.5, Seed: 3, Times: 2}},
		{name: "stalled body", fault: rig.Fault{Kind: rig.FaultStallBody, After: 200 << 10, Times: 1}},
		{name: "500 at a rate", fault: rig.Fault{Kind: rig.FaultInternalError, Rate: 0.3, Seed: 4, Times: 4}},
		{name: "503 at a rate", fault: rig.Fault{Kind: rig.FaultSlowDown, Rate: 0.2, Seed: 5, Times: 3}},
		{name: "latency", fault: rig.Fault{Kind: rig.FaultLatency, Delay: 200 * time.Millisecond, Rate: 0.3, Seed: 6}},
		// Unbounded: reads may run out of attempts.
		{name: "frequent resets", fault: rig.Fault{Kind: rig.FaultReset, After: 64 << 10, Rate: 0.6, Seed: 7}, mayFail: true},
		{name: "frequent 500s", fault: rig.Fault{Kind: rig.FaultInternalError, Rate: 0.6, Seed: 8}, mayFail: true},
	}
	// Every object is in place before the mount lists the directory.
	data := map[string][]byte{}
	for i, tc := range tests {
		data[tc.name] = randomBytes(size, byte(100+i))
		putObject(t, ft.r, wsBucket, ft.prefix+slug(tc.name)+".bin", data[tc.name])
	}
	type phase struct {
		name string
		read func(t *testing.T, path string, want []byte, seed uint64) error
	}
	phases := []phase{
		{"sequential read", func(t *testing.T, path string, want []byte, _ uint64) error {
			return readSequentially(t, path, want, 256<<10)
		}},
		{"sha256sum", func(t *testing.T, path string, want []byte, _ uint64) error {
			if err := evictPages(path); err != nil {
				return err
			}
			out, err := shIn(hangLimit, nil, filepath.Dir(path), `sha256sum "$1"`, filepath.Base(path))
			if err != nil {
				if strings.Contains(out, "Input/output error") {
					return syscall.EIO
				}
				return fmt.Errorf("sha256sum: %v: %s", err, out)
			}
			if got, _, _ := strings.Cut(out, " "); got != sha256Hex(want) {
				t.Errorf("sha256sum %s = %s, want %s", path, got, sha256Hex(want))
			}
			return nil
		}},
		{"random preads", func(t *testing.T, path string, want []byte, seed uint64) error {
			if err := evictPages(path); err != nil {
				return err
			}
			return readRandomly(t, path, want, 0, 16, seed)
		}},
		{"random O_DIRECT preads", func(t *testing.T, path string, want []byte, seed uint64) error {
			return readRandomly(t, path, want, syscall.O_DIRECT, 16, seed)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := ft.prefix + slug(tc.name) + ".bin"
			path := filepath.Join(ft.dir, slug(tc.name)+".bin")
			hits := 0
			for i, ph := range phases {
				// A fresh fault for each way of reading, so that a bounded
				// one is not spent by the first.
				f := tc.fault
				f.Seed += uint64(i) * 1000
				f.Match = rig.MatchAll(rig.MatchOp(rig.OpGetObject), matchUnder(key))
				h := ft.r.Proxy.Inject(f)
				took, err := within(t, hangLimit, ph.name+" of "+path, func() error { return ph.read(t, path, data[tc.name], uint64(i)) })
				h.Remove()
				hits += h.Count()
				t.Logf("%s: %d faults, %v", ph.name, h.Count(), took.Round(time.Millisecond))
				switch {
				case err == nil:
				case tc.mayFail && isErrno(err, syscall.EIO):
					t.Logf("%s: EIO after %d faults", ph.name, h.Count())
				default:
					t.Errorf("%s of %s with %v faults: %v, want the object's bytes", ph.name, path, tc.fault.Kind, err)
				}
			}
			if hits == 0 {
				t.Errorf("the %v fault hit no request: nothing was tested", tc.fault.Kind)
			}
		})
	}
}

// TestFaultsReadPermanent breaks every GET of an object, and checks that a
// read fails with EIO, soon, through read(2), pread(2) and cat, without
// returning any wrong byte. (TestFaultsStall covers GETs that stall.)
func TestFaultsReadPermanent(t *testing.T) {
	ft := newFaultTest(t, time.Minute)
	const size = 4<<20 + 99
	tests := []struct {
		name  string
		fault rig.Fault
	}{
		{"every GET resets", rig.Fault{Kind: rig.FaultReset}},
		{"every GET is cut short", rig.Fault{Kind: rig.FaultShortBody}},
		{"every GET answers 500", rig.Fault{Kind: rig.FaultInternalError}},
	}
	data := map[string][]byte{}
	for i, tc := range tests {
		data[tc.name] = randomBytes(size, byte(150+i))
		putObject(t, ft.r, wsBucket, ft.prefix+slug(tc.name)+".bin", data[tc.name])
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := ft.prefix + slug(tc.name) + ".bin"
			path := filepath.Join(ft.dir, slug(tc.name)+".bin")
			want := data[tc.name]
			f := tc.fault
			f.Match = rig.MatchAll(rig.MatchOp(rig.OpGetObject), matchUnder(key))
			h := ft.r.Proxy.Inject(f)
			defer h.Remove()

			took, err := within(t, hangLimit, "read of "+path, func() error { return readSequentially(t, path, want, 256<<10) })
			wantEIOWithin(t, "read", took, err)
			took, err = within(t, hangLimit, "pread of "+path, func() error {
				if err := evictPages(path); err != nil {
					return err
				}
				return readRandomly(t, path, want, 0, 1, 42)
			})
			wantEIOWithin(t, "pread", took, err)
			began := time.Now()
			out, err := shIn(hangLimit, nil, ft.dir, `cat "$1" >/dev/null`, filepath.Base(path))
			if took := time.Since(began); err == nil || !strings.Contains(out, "Input/output error") || took > stallBound {
				t.Errorf("cat %s: %v %q after %v, want Input/output error within %v", path, err, out, took, stallBound)
			}
			if n := h.Count(); n < 3 {
				t.Errorf("the fault hit %d GETs, want at least 3 (a read resumes twice)", n)
			}
		})
	}
}

// writeFile writes data to path through the mount, opened with O_TRUNC, in
// 1 MiB writes, each system call bounded by hangLimit. If fsyncAt > 0 it
// calls fsync once that many bytes are written, then afterFsync; before
// closing it calls beforeClose. It returns fsync's and close's errors; a
// failed open or write fails the test.
func writeFile(t *testing.T, path string, data []byte, fsyncAt int, afterFsync, beforeClose func()) (fsyncErr, closeErr error) {
	t.Helper()
	var f *os.File
	if _, err := within(t, hangLimit, "open "+path, func() (err error) {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		return err
	}); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	write := func(from, to int) {
		t.Helper()
		if _, err := within(t, hangLimit, "writes to "+path, func() error {
			for off := from; off < to; off += 1 << 20 {
				if _, err := f.Write(data[off:min(off+1<<20, to)]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			f.Close()
			t.Fatalf("write %s: %v", path, err)
		}
	}
	if fsyncAt > 0 {
		write(0, fsyncAt)
		_, fsyncErr = within(t, hangLimit, "fsync "+path, f.Sync)
		if afterFsync != nil {
			afterFsync()
		}
		write(fsyncAt, len(data))
	} else {
		write(0, len(data))
	}
	if beforeClose != nil {
		beforeClose()
	}
	_, closeErr = within(t, hangLimit, "close "+path, f.Close)
	return fsyncErr, closeErr
}

// writeFaultCase is a file written while the proxy injects fault into the
// requests ops of its key.
type writeFaultCase struct {
	name  string
	size  int
	old   []byte // old is the object's content before, or nil for none.
	ops   []rig.Op
	fault rig.Fault
	// fsyncAt, if not 0, is where the writer calls fsync.
	fsyncAt int
	// wantLog, if set, is a message the mount must log: proof that the
	// fault took the path the case is about.
	wantLog string
	// maxHits, if not 0, bounds how many requests the fault may hit.
	maxHits int
}

// Sizes of the write cases: one file within one part (a PutObject), and
// one of two full parts and a partial one (a multipart upload whose first
// parts go up in the background while the file is written).
const (
	smallSize = 1<<20 + 7
	multiSize = 20<<20 + 12345
)

var (
	putOps       = []rig.Op{rig.OpPutObject}
	partOps      = []rig.Op{rig.OpUploadPart}
	multipartOps = []rig.Op{rig.OpCreateMultipartUpload, rig.OpUploadPart, rig.OpCompleteMultipartUpload}
)

// putOld puts the old content of every case that has one, and makes the
// test's directory: before anything lists it, so that the mount sees them.
func (ft *faultTest) putOld(t *testing.T, tests []writeFaultCase) {
	t.Helper()
	for _, tc := range tests {
		if tc.old != nil {
			putObject(t, ft.r, wsBucket, ft.prefix+slug(tc.name)+".bin", tc.old)
		}
	}
	if _, err := within(t, hangLimit, "mkdir "+ft.dir, func() error { return os.MkdirAll(ft.dir, 0o755) }); err != nil {
		t.Fatal(err)
	}
}

// TestFaultsWrite writes files while the proxy fails a bounded number of
// their upload requests, which the retries must absorb: every close and
// fsync succeeds, the object holds exactly the bytes written (SHA-256 of
// what the SDK reads), the mount reads them back, and no multipart upload
// is left behind.
func TestFaultsWrite(t *testing.T) {
	ft := newFaultTest(t, time.Minute)
	old := []byte("old content\n")
	tests := []writeFaultCase{
		{name: "PutObject 500 twice", size: smallSize, ops: putOps, fault: rig.Fault{Kind: rig.FaultInternalError, Times: 2}},
		{name: "PutObject 503 twice", size: smallSize, ops: putOps, fault: rig.Fault{Kind: rig.FaultSlowDown, Times: 2}},
		{name: "PutObject reset twice", size: smallSize, ops: putOps, fault: rig.Fault{Kind: rig.FaultReset, Times: 2}},
		{name: "PutObject stalls once", size: smallSize, ops: putOps, fault: rig.Fault{Kind: rig.FaultStall, Times: 1}},
		{name: "PutObject latency", size: smallSize, ops: putOps, fault: rig.Fault{Kind: rig.FaultLatency, Delay: 300 * time.Millisecond}},
		{name: "PutObject overwrite 500 at a rate", size: smallSize, old: old, ops: putOps,
			fault: rig.Fault{Kind: rig.FaultInternalError, Rate: 0.5, Seed: 11, Times: 4}},
		{name: "parts 500 at a rate", size: multiSize, ops: partOps, fault: rig.Fault{Kind: rig.FaultInternalError, Rate: 0.5, Seed: 23, Times: 4}},
		// Nine failures in a row: at least one part's five background
		// attempts all fail, and the commit must send it again.
		{name: "a background part fails", size: multiSize, ops: partOps, fault: rig.Fault{Kind: rig.FaultInternalError, Times: 9},
			wantLog: "background part upload failed"},
		{name: "parts reset twice", size: multiSize, ops: partOps, fault: rig.Fault{Kind: rig.FaultReset, Times: 2}},
		{name: "a part stalls once", size: multiSize, ops: partOps, fault: rig.Fault{Kind: rig.FaultStall, Times: 1}},
		{name: "CreateMultipartUpload 500 twice", size: multiSize, ops: []rig.Op{rig.OpCreateMultipartUpload},
			fault: rig.Fault{Kind: rig.FaultInternalError, Times: 2}},
		{name: "CompleteMultipartUpload 500 twice", size: multiSize, ops: []rig.Op{rig.OpCompleteMultipartUpload},
			fault: rig.Fault{Kind: rig.FaultInternalError, Times: 2}},
		// The store completes the upload but the answer is lost: the retry
		// finds no upload, and must recognise the object as its own.
		{name: "CompleteMultipartUpload answer reset", size: multiSize, ops: []rig.Op{rig.OpCompleteMultipartUpload},
			fault: rig.Fault{Kind: rig.FaultReset, Times: 1}, wantLog: "the answer to a completed upload was lost"},
		{name: "CompleteMultipartUpload answer stalls", size: multiSize, ops: []rig.Op{rig.OpCompleteMultipartUpload},
			fault: rig.Fault{Kind: rig.FaultStallBody, Times: 1}, wantLog: "the answer to a completed upload was lost"},
		{name: "multipart overwrite latency", size: multiSize, old: old, ops: multipartOps,
			fault: rig.Fault{Kind: rig.FaultLatency, Delay: 300 * time.Millisecond, Rate: 0.7, Seed: 13}},
		{name: "fsync mid-file, 500 at a rate", size: multiSize, ops: multipartOps, fsyncAt: 12 << 20,
			fault: rig.Fault{Kind: rig.FaultInternalError, Rate: 0.5, Seed: 14, Times: 4}},
	}
	ft.putOld(t, tests)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := ft.prefix + slug(tc.name) + ".bin"
			path := filepath.Join(ft.dir, slug(tc.name)+".bin")
			data := randomBytes(tc.size, byte(i))
			f := tc.fault
			f.Match = rig.MatchAll(rig.MatchOp(tc.ops...), matchUnder(key))
			h := ft.r.Proxy.Inject(f)
			defer h.Remove()
			multipart := tc.size > 8<<20
			uploading := func() {
				// Parts go up while the file is written: an upload is under
				// way before the close.
				if multipart {
					waitFor(t, 10*time.Second, "a multipart upload of "+key+" to be under way", func() bool {
						return len(s3Uploads(t, ft.r, wsBucket, key)) > 0
					})
				}
			}
			var afterFsync func()
			if tc.fsyncAt > 0 {
				afterFsync = func() { ft.wantObject(t, wsBucket, key, data[:tc.fsyncAt]) }
			}
			fsyncErr, closeErr := writeFile(t, path, data, tc.fsyncAt, afterFsync, uploading)
			if fsyncErr != nil {
				t.Errorf("fsync %s: %v, want success despite the faults", path, fsyncErr)
			}
			if closeErr != nil {
				t.Errorf("close %s: %v, want success despite the faults", path, closeErr)
			}
			h.Remove()
			if sum, n := s3ObjectSHA256(t, ft.r, wsBucket, key); sum != sha256Hex(data) || n != int64(len(data)) {
				t.Errorf("s3://%s/%s: %d bytes, sha256 %s; want %d bytes, sha256 %s", wsBucket, key, n, sum, len(data), sha256Hex(data))
			}
			if _, err := within(t, hangLimit, "read back "+path, func() error { return readSequentially(t, path, data, 1<<20) }); err != nil {
				t.Errorf("reading back %s: %v", path, err)
			}
			if ups := s3Uploads(t, ft.r, wsBucket, ft.prefix); len(ups) != 0 {
				t.Errorf("multipart uploads left behind: %q", ups)
			}
			if h.Count() == 0 {
				t.Errorf("the %v fault hit no request: nothing was tested", tc.fault.Kind)
			}
			if tc.wantLog != "" && !logMentions(ft.m.logs.String(), tc.wantLog, key) {
				t.Errorf("the log has no %q for %s: the fault did not take the path this case is about", tc.wantLog, key)
			}
		})
	}
}

// logMentions reports whether a line of logs holds both msg and key.
func logMentions(logs, msg, key string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, msg) && strings.Contains(line, key) {
			return true
		}
	}
	return false
}

// TestFaultsWritePermanent makes every upload request of a file fail, and
// checks that fsync or close reports it, that the bucket is left as it was
// (no object, or the old one unchanged) with no multipart upload, and that
// the log names where the content was kept, under the staging directory's
// "unsaved" directory, with exactly the bytes written.
func TestFaultsWritePermanent(t *testing.T) {
	ft := newFaultTest(t, time.Minute)
	old := []byte("old content\n")
	always500 := rig.Fault{Kind: rig.FaultInternalError}
	tests := []writeFaultCase{
		{name: "PutObject fails", size: smallSize, ops: putOps, fault: always500},
		{name: "PutObject overwrite fails", size: smallSize, old: old, ops: putOps, fault: always500},
		{name: "parts fail", size: multiSize, ops: partOps, fault: always500},
		{name: "parts of an overwrite fail", size: multiSize, old: old, ops: partOps, fault: always500},
		// The writes may try to start the upload once, the close's flush
		// and its release once each: three retry budgets of five attempts.
		// A store that fails must not cost every write a retry budget.
		{name: "CreateMultipartUpload fails", size: multiSize, old: old, ops: []rig.Op{rig.OpCreateMultipartUpload}, fault: always500, maxHits: 15},
		{name: "CompleteMultipartUpload fails", size: multiSize, ops: []rig.Op{rig.OpCompleteMultipartUpload}, fault: always500},
		{name: "fsync of a small file", size: smallSize, ops: putOps, fault: always500, fsyncAt: 4096},
		{name: "fsync of a multipart file", size: multiSize, old: old, ops: multipartOps, fault: always500, fsyncAt: 12 << 20},
	}
	ft.putOld(t, tests)
	unsaved := filepath.Join(ft.staging, "unsaved") + string(filepath.Separator)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := ft.prefix + slug(tc.name) + ".bin"
			object := "s3://" + wsBucket + "/" + key
			path := filepath.Join(ft.dir, slug(tc.name)+".bin")
			data := randomBytes(tc.size, byte(50+i))
			f := tc.fault
			f.Match = rig.MatchAll(rig.MatchOp(tc.ops...), matchUnder(key))
			h := ft.r.Proxy.Inject(f)
			defer h.Remove()

			fsyncErr, closeErr := writeFile(t, path, data, tc.fsyncAt, nil, nil)
			if tc.fsyncAt > 0 && !isErrno(fsyncErr, syscall.EIO) {
				t.Errorf("fsync %s = %v while every upload fails, want EIO", path, fsyncErr)
			}
			if !isErrno(closeErr, syscall.EIO) {
				t.Errorf("close %s = %v while every upload fails, want EIO", path, closeErr)
			}
			// The release after the close tries once more, then keeps the
			// content; only then is the outcome final.
			waitFor(t, hangLimit, "the log to say where the content of "+object+" was kept", func() bool {
				return keptAt(ft.m.logs.String(), object) != ""
			})
			kept := keptAt(ft.m.logs.String(), object)
			if !strings.HasPrefix(kept, unsaved) {
				t.Errorf("content of %s kept at %s, want a file in %s", object, kept, unsaved)
			}
			if got, err := os.ReadFile(kept); err != nil || !bytes.Equal(got, data) {
				t.Errorf("content kept at %s: %s, %v; want the %s written", kept, describe(got), err, describe(data))
			}
			if tc.old != nil {
				ft.wantObject(t, wsBucket, key, tc.old)
			} else {
				ft.wantNoObject(t, wsBucket, key)
			}
			if ups := s3Uploads(t, ft.r, wsBucket, ft.prefix); len(ups) != 0 {
				t.Errorf("multipart uploads left behind: %q", ups)
			}
			if h.Count() == 0 {
				t.Errorf("the fault hit no request: nothing was tested")
			}
			if tc.maxHits > 0 && h.Count() > tc.maxHits {
				t.Errorf("the fault hit %d requests, want at most %d", h.Count(), tc.maxHits)
			}
		})
	}
}

// TestFaultsStall stops the store from answering any request about a file
// (FaultStall holds each request unanswered), and checks that each of stat
// of a file not seen before, getattr once the attributes expired, a read, a
// read whose response body stalls, and a close fails with EIO within
// stallBound instead of hanging; that a failed close keeps the content; and
// that a writer that passes the first part while the store stalls is held
// up by it once, not on every write. The operations run at once, each on
// its own file, so that their stalls overlap.
func TestFaultsStall(t *testing.T) {
	// Attributes expire after a second, so that a getattr on an open file
	// must ask the store.
	const ttl = time.Second
	ft := newFaultTest(t, ttl)
	data := randomBytes(4<<20, 200)
	for _, name := range []string{"stat.bin", "attr.bin", "read.bin", "readbody.bin"} {
		putObject(t, ft.r, wsBucket, ft.prefix+name, data)
	}
	path := func(name string) string { return filepath.Join(ft.dir, name) }
	object := func(name string) string { return "s3://" + wsBucket + "/" + ft.prefix + name }
	// openFile opens a file before the store stalls; it is closed before
	// the mount stops.
	openFile := func(name string, flag int) *os.File {
		var f *os.File
		if _, err := within(t, hangLimit, "open "+name, func() (err error) {
			f, err = os.OpenFile(path(name), flag, 0o644)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	attr := openFile("attr.bin", os.O_RDONLY)
	opened := time.Now()
	read := openFile("read.bin", os.O_RDONLY)
	readBody := openFile("readbody.bin", os.O_RDONLY)
	closing := openFile("close.txt", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	closeContent := []byte("written before the store stalled\n")
	// big is written up to just before its second part, which is all
	// local; the rest is written while the store stalls.
	big := openFile("big.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	bigContent := randomBytes(10<<20, 201)
	const bigBefore = 7 << 20
	if _, err := within(t, hangLimit, "writes before the stall", func() error {
		if _, err := closing.Write(closeContent); err != nil {
			return err
		}
		_, err := big.Write(bigContent[:bigBefore])
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// From here on the store holds every request about these files. The
	// starts of big.bin's multipart uploads are counted on their own.
	creates := ft.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStall, Match: rig.MatchAll(rig.MatchOp(rig.OpCreateMultipartUpload), matchUnder(ft.prefix+"big.bin"))})
	stalls := map[string]*rig.FaultHandle{}
	for name, kind := range map[string]rig.FaultKind{"stat.bin": rig.FaultStall, "attr.bin": rig.FaultStall, "read.bin": rig.FaultStall,
		"readbody.bin": rig.FaultStallBody, "close.txt": rig.FaultStall, "big.bin": rig.FaultStall} {
		stalls[name] = ft.r.Proxy.Inject(rig.Fault{Kind: kind, Match: matchUnder(ft.prefix + name)})
	}

	type result struct {
		took time.Duration
		err  error
	}
	ops := []struct {
		name, call, file string
		start            time.Time // start is when the call may be made.
		run              func() error
	}{
		{"stat of an uncached file", "stat", "stat.bin", time.Time{}, func() error { _, err := os.Stat(path("stat.bin")); return err }},
		{"getattr once the attributes expired", "fstat", "attr.bin", opened.Add(ttl + 200*time.Millisecond), func() error { _, err := attr.Stat(); return err }},
		{"read", "pread", "read.bin", time.Time{}, func() error { _, err := read.ReadAt(make([]byte, 64<<10), 1<<20); return err }},
		{"read of a body that stalls", "pread", "readbody.bin", time.Time{}, func() error { _, err := readBody.ReadAt(make([]byte, 64<<10), 1<<20); return err }},
		{"close", "close", "close.txt", time.Time{}, closing.Close},
	}
	results := make([]chan result, len(ops))
	for i, op := range ops {
		results[i] = make(chan result, 1)
		go func() {
			// Waiting out the attribute timeout: the call is about what
			// happens once it has passed.
			time.Sleep(time.Until(op.start))
			began := time.Now()
			err := op.run()
			results[i] <- result{time.Since(began), err}
		}()
	}
	// The writer of big.bin: the rest of its writes, each alone, then the
	// close.
	var bigWrites []result
	var createsByWrites int // createsByWrites is creates.Count() once the writes are done.
	bigClose := make(chan result, 1)
	bigWritten := make(chan struct{})
	go func() {
		for off := bigBefore; off < len(bigContent); off += 1 << 20 {
			began := time.Now()
			_, err := big.Write(bigContent[off:min(off+1<<20, len(bigContent))])
			bigWrites = append(bigWrites, result{time.Since(began), err})
		}
		createsByWrites = creates.Count()
		close(bigWritten)
		began := time.Now()
		err := big.Close()
		bigClose <- result{time.Since(began), err}
	}()

	for i, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			select {
			case r := <-results[i]:
				wantEIOWithin(t, op.call, r.took, r.err)
			case <-time.After(hangLimit):
				t.Fatalf("%s still blocked after %v: it hangs", op.call, hangLimit)
			}
			if n := stalls[op.file].Count(); n == 0 {
				t.Errorf("the stall held no request about %s: nothing was tested", op.file)
			} else {
				t.Logf("the stall held %d requests about %s", n, op.file)
			}
		})
	}
	t.Run("writes past the first part", func(t *testing.T) {
		select {
		case <-bigWritten:
		case <-time.After(hangLimit):
			t.Fatalf("writes to big.bin still blocked after %v: they hang", hangLimit)
		}
		var total time.Duration
		for i, w := range bigWrites {
			total += w.took
			if w.err != nil {
				t.Errorf("write %d of big.bin: %v, want success: the data is staged locally", i, w.err)
			}
			t.Logf("write %d of big.bin took %v", i, w.took.Round(time.Millisecond))
		}
		// The writes need only the local disk. Starting the upload in the
		// background may cost the writer one retry budget, not one per
		// write.
		if total > stallBound {
			t.Errorf("the %d writes to big.bin past its first part took %v in all while the store stalled, want within %v",
				len(bigWrites), total, stallBound)
		}
		if n := createsByWrites; n > 5 {
			t.Errorf("the writes asked the stalled store %d times to start a multipart upload, want at most one retry budget (5)", n)
		}
		select {
		case r := <-bigClose:
			wantEIOWithin(t, "close", r.took, r.err)
		case <-time.After(hangLimit):
			t.Fatalf("close of big.bin still blocked after %v: it hangs", hangLimit)
		}
	})
	t.Run("content is kept", func(t *testing.T) {
		// The release after a failed close tries once more, which stalls as
		// long, then keeps the content.
		for name, want := range map[string][]byte{"close.txt": closeContent, "big.bin": bigContent} {
			waitFor(t, hangLimit, "the log to say where the content of "+object(name)+" was kept", func() bool {
				return keptAt(ft.m.logs.String(), object(name)) != ""
			})
			kept := keptAt(ft.m.logs.String(), object(name))
			if !strings.HasPrefix(kept, filepath.Join(ft.staging, "unsaved")+string(filepath.Separator)) {
				t.Errorf("content of %s kept at %s, want a file in the staging directory's unsaved directory", object(name), kept)
			}
			if got, err := os.ReadFile(kept); err != nil || !bytes.Equal(got, want) {
				t.Errorf("content of %s kept at %s: %s, %v; want %s", object(name), kept, describe(got), err, describe(want))
			}
			ft.wantNoObject(t, wsBucket, ft.prefix+name)
		}
		if ups := s3Uploads(t, ft.r, wsBucket, ft.prefix); len(ups) != 0 {
			t.Errorf("multipart uploads left behind: %q", ups)
		}
	})
}

// TestFaultsConnectionReset resets every connection that asks about a file
// before it is answered, as a load balancer in front of a failed store
// does. Each call must fail as on any other store failure, with EIO; the
// socket's own errno (ECONNRESET, EPIPE) means nothing to the caller.
func TestFaultsConnectionReset(t *testing.T) {
	ft := newFaultTest(t, time.Minute)
	data := randomBytes(1<<20, 220)
	putObject(t, ft.r, wsBucket, ft.prefix+"read.bin", data)
	var f *os.File
	if _, err := within(t, hangLimit, "open read.bin", func() (err error) {
		f, err = os.Open(filepath.Join(ft.dir, "read.bin"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var w *os.File
	if _, err := within(t, hangLimit, "write write.txt", func() (err error) {
		if w, err = os.Create(filepath.Join(ft.dir, "write.txt")); err == nil {
			_, err = w.WriteString("never stored\n")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })

	var resets atomic.Int64
	mine := matchUnder(ft.prefix)
	ft.r.Proxy.SetFault(func(rw http.ResponseWriter, r *http.Request) bool {
		if !mine(r) {
			return false
		}
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(rw).Hijack()
		if err != nil {
			rig.WriteS3Error(rw, http.StatusInternalServerError, "InternalError", "the test could not reset the connection: "+err.Error())
			return true
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
		resets.Add(1)
		return true
	})
	t.Cleanup(func() { ft.r.Proxy.SetFault(nil) })

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"stat of an uncached file", func() error { _, err := os.Stat(filepath.Join(ft.dir, "stat.bin")); return err }},
		{"read", func() error { _, err := f.ReadAt(make([]byte, 64<<10), 0); return err }},
		{"close", w.Close},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := resets.Load()
			took, err := within(t, hangLimit, tc.name, tc.call)
			wantEIOWithin(t, tc.name, took, err)
			if resets.Load() == before {
				t.Errorf("no connection was reset: nothing was tested")
			}
		})
	}
}
