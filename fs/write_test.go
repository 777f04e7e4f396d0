package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3mount/s3mount/fs"
	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/rig"
)

// q quotes s for sh.
func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestWriteShellTools runs each change with the tool a user would use, and
// checks the result in the bucket through the SDK.
func TestWriteShellTools(t *testing.T) {
	w := newWriteTest(t)
	ws := w.prefix
	// An implicit directory: objects under a prefix with no marker, there
	// before the mount looks.
	putObject(t, w.r, wsBucket, ws+"implicit/a.txt", []byte("a\n"))
	putObject(t, w.r, wsBucket, ws+"implicit/sub/b.txt", []byte("b\n"))
	// A 12 MiB object (more than one part) for dd to patch.
	mid := randomBytes(12<<20, 1)
	putObject(t, w.r, wsBucket, ws+"mid.bin", mid)
	run := func(t *testing.T, cmd string) string { t.Helper(); return mustSh(t, w.dir, cmd) }

	t.Run("cp", func(t *testing.T) {
		data := randomBytes(300<<10, 2)
		local := filepath.Join(t.TempDir(), "local.bin")
		if err := os.WriteFile(local, data, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "cp "+q(local)+" copied.bin")
		w.wantObject(t, wsBucket, ws+"copied.bin", data)
		run(t, "cmp "+q(local)+" copied.bin")
	})
	t.Run("cp over an existing file", func(t *testing.T) {
		// cp opens an existing file with O_TRUNC and writes it from the
		// start: the streamed path, here over more than one part.
		putObject(t, w.r, wsBucket, ws+"replaced.bin", []byte("old content\n"))
		data := randomBytes(20<<20+12345, 4)
		local := filepath.Join(t.TempDir(), "local.bin")
		if err := os.WriteFile(local, data, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "cp "+q(local)+" replaced.bin")
		w.wantObject(t, wsBucket, ws+"replaced.bin", data)
		run(t, "cmp "+q(local)+" replaced.bin")
	})
	t.Run("overwrite shows no empty object", func(t *testing.T) {
		// dd opens its output with O_TRUNC, moves it to descriptor 1 and
		// closes the original (a flush), as shells do for "> file", and
		// only then writes. Until the new content is complete, the bucket
		// must keep showing the old object, never an empty or partial one.
		old := []byte("old content\n")
		putObject(t, w.r, wsBucket, ws+"atomic.txt", old)
		cmd := exec.Command("sh", "-c", `cd "$1" && { printf new1; sleep 1; printf new2; } | dd of=atomic.txt status=none`, "sh", w.dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		seen := map[string]bool{}
		for running := true; running; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("dd: %v\n%s", err, out.String())
				}
				running = false
			case <-time.After(20 * time.Millisecond):
			}
			data, ok := w.object(t, wsBucket, ws+"atomic.txt")
			if !ok {
				data = []byte("<no object>")
			}
			seen[string(data)] = true
		}
		for content := range seen {
			if content != string(old) && content != "new1new2" {
				t.Errorf("while dd was writing, s3://%s/%satomic.txt was %q; want only %q, then %q", wsBucket, ws, content, old, "new1new2")
			}
		}
		w.wantObject(t, wsBucket, ws+"atomic.txt", []byte("new1new2"))
	})
	t.Run("echo>", func(t *testing.T) {
		run(t, "echo hello > new.txt")
		w.wantObject(t, wsBucket, ws+"new.txt", []byte("hello\n"))
	})
	t.Run("echo>>", func(t *testing.T) {
		run(t, "echo one >> log.txt")
		w.wantObject(t, wsBucket, ws+"log.txt", []byte("one\n"))
		run(t, "echo two >> log.txt")
		w.wantObject(t, wsBucket, ws+"log.txt", []byte("one\ntwo\n"))
		if out := run(t, "cat log.txt"); out != "one\ntwo\n" {
			t.Errorf("cat log.txt = %q", out)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		run(t, "printf 0123456789abcdefghij > trunc.txt")
		w.wantObject(t, wsBucket, ws+"trunc.txt", []byte("0123456789abcdefghij"))
		run(t, "truncate -s 5 trunc.txt")
		w.wantObject(t, wsBucket, ws+"trunc.txt", []byte("01234"))
		run(t, "truncate -s 12 trunc.txt")
		w.wantObject(t, wsBucket, ws+"trunc.txt", []byte("01234\x00\x00\x00\x00\x00\x00\x00"))
		if out := run(t, "stat -c %s trunc.txt"); strings.TrimSpace(out) != "12" {
			t.Errorf("stat -c %%s after truncate -s 12 = %q", out)
		}
	})
	t.Run("dd conv=notrunc", func(t *testing.T) {
		// 64 KiB written across the 8 MiB part boundary of a 12 MiB object.
		patch := randomBytes(64<<10, 3)
		local := filepath.Join(t.TempDir(), "patch.bin")
		if err := os.WriteFile(local, patch, 0o644); err != nil {
			t.Fatal(err)
		}
		const seek = 2040 // blocks of 4 KiB: 8,355,840, ending past 8 MiB
		run(t, fmt.Sprintf("dd if=%s of=mid.bin bs=4096 seek=%d conv=notrunc status=none", q(local), seek))
		want := slices.Clone(mid)
		copy(want[seek*4096:], patch)
		w.wantObject(t, wsBucket, ws+"mid.bin", want)
		if err := os.WriteFile(local, want, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "cmp mid.bin "+q(local))
		if out := run(t, "stat -c %s mid.bin"); strings.TrimSpace(out) != strconv.Itoa(len(mid)) {
			t.Errorf("stat -c %%s after dd conv=notrunc = %q, want %d", out, len(mid))
		}
	})
	t.Run("mv file", func(t *testing.T) {
		run(t, "echo moving > mvsrc.txt")
		w.wantObject(t, wsBucket, ws+"mvsrc.txt", []byte("moving\n"))
		run(t, "mv mvsrc.txt mvdst.txt")
		w.wantNoObject(t, wsBucket, ws+"mvsrc.txt")
		w.wantObject(t, wsBucket, ws+"mvdst.txt", []byte("moving\n"))
		if out := run(t, "cat mvdst.txt; test ! -e mvsrc.txt && echo gone"); out != "moving\ngone\n" {
			t.Errorf("after mv: %q", out)
		}
	})
	t.Run("mv dir", func(t *testing.T) {
		run(t, "mkdir -p d1/sub && echo 1 > d1/f1 && echo 2 > d1/f2 && echo 3 > d1/sub/f3")
		run(t, "mv d1 d2")
		if got := w.keys(t, wsBucket, ws+"d1/"); len(got) != 0 {
			t.Errorf("keys left under d1/ after mv: %q", got)
		}
		if got, want := w.keys(t, wsBucket, ws+"d2/"), []string{"", "f1", "f2", "sub/", "sub/f3"}; !slices.Equal(got, want) {
			t.Errorf("keys under d2/ = %q, want %q", got, want)
		}
		w.wantObject(t, wsBucket, ws+"d2/f1", []byte("1\n"))
		w.wantObject(t, wsBucket, ws+"d2/sub/f3", []byte("3\n"))
		if out := run(t, "cat d2/f1 d2/f2 d2/sub/f3; test ! -e d1 && echo gone"); out != "1\n2\n3\ngone\n" {
			t.Errorf("after mv d1 d2: %q", out)
		}
	})
	t.Run("rm", func(t *testing.T) {
		run(t, "echo bye > rmme.txt")
		w.wantObject(t, wsBucket, ws+"rmme.txt", []byte("bye\n"))
		run(t, "rm rmme.txt")
		w.wantNoObject(t, wsBucket, ws+"rmme.txt")
		if out, err := sh(t, w.dir, "ls rmme.txt"); err == nil {
			t.Errorf("ls after rm succeeded: %q", out)
		}
	})
	t.Run("mkdir", func(t *testing.T) {
		run(t, "mkdir newdir")
		w.wantObject(t, wsBucket, ws+"newdir/", nil)
		if out := run(t, "test -d newdir && echo dir"); out != "dir\n" {
			t.Errorf("test -d newdir: %q", out)
		}
	})
	t.Run("rmdir", func(t *testing.T) {
		run(t, "mkdir full && echo x > full/f")
		out, err := sh(t, w.dir, "rmdir full")
		if err == nil || !strings.Contains(out, "Directory not empty") {
			t.Errorf("rmdir of a non-empty directory: %v %q, want Directory not empty", err, out)
		}
		if got, want := w.keys(t, wsBucket, ws+"full/"), []string{"", "f"}; !slices.Equal(got, want) {
			t.Errorf("keys under full/ after the failed rmdir = %q, want %q", got, want)
		}
		run(t, "mkdir empty")
		w.wantObject(t, wsBucket, ws+"empty/", nil)
		run(t, "rmdir empty")
		w.wantNoObject(t, wsBucket, ws+"empty/")
		if out := run(t, "test ! -e empty && echo gone"); out != "gone\n" {
			t.Errorf("empty still shown after rmdir: %q", out)
		}
	})
	t.Run("rmdir implicit", func(t *testing.T) {
		if out, err := sh(t, w.dir, "rmdir implicit"); err == nil || !strings.Contains(out, "Directory not empty") {
			t.Errorf("rmdir of a non-empty implicit directory: %v %q, want Directory not empty", err, out)
		}
		run(t, "rm implicit/a.txt implicit/sub/b.txt && rmdir implicit/sub && rmdir implicit")
		if got := w.keys(t, wsBucket, ws+"implicit"); len(got) != 0 {
			t.Errorf("keys left under implicit/: %q", got)
		}
		if out := run(t, "test ! -e implicit && echo gone"); out != "gone\n" {
			t.Errorf("implicit still shown after rmdir: %q", out)
		}
	})
	t.Run("touch", func(t *testing.T) {
		run(t, "touch touched")
		w.wantObject(t, wsBucket, ws+"touched", []byte{})
		if out := run(t, "stat -c %s touched"); strings.TrimSpace(out) != "0" {
			t.Errorf("stat -c %%s touched = %q", out)
		}
	})
	t.Run("chmod chown", func(t *testing.T) {
		run(t, "echo keep > perm.txt && mkdir permdir")
		run(t, "chmod 600 perm.txt")
		run(t, `chown "$(id -u):$(id -g)" perm.txt`)
		run(t, "chown 1234:1234 perm.txt")
		run(t, "chmod 700 permdir && chown 1234:1234 permdir")
		w.wantObject(t, wsBucket, ws+"perm.txt", []byte("keep\n"))
		w.wantObject(t, wsBucket, ws+"permdir/", nil)
	})
	t.Run("touch -d", func(t *testing.T) {
		want := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		run(t, "echo t > mtime.txt")
		run(t, "TZ=UTC touch -d '2020-01-02 03:04:05' mtime.txt mtime-new.txt")
		for _, name := range []string{"mtime.txt", "mtime-new.txt"} {
			if out := run(t, "stat -c %Y "+name); strings.TrimSpace(out) != strconv.FormatInt(want.Unix(), 10) {
				t.Errorf("stat -c %%Y %s = %q, want %d", name, out, want.Unix())
			}
			head, ok := s3Head(t, w.r, wsBucket, ws+name)
			if !ok {
				t.Errorf("s3://%s/%s%s does not exist", wsBucket, ws, name)
				continue
			}
			if got := bucket.ParseMtime(head.Metadata[bucket.MtimeKey]); !got.Equal(want) {
				t.Errorf("%s: x-amz-meta-%s = %q (%v), want %v", name, bucket.MtimeKey, head.Metadata[bucket.MtimeKey], got, want)
			}
		}
		w.wantObject(t, wsBucket, ws+"mtime.txt", []byte("t\n"))
		w.wantObject(t, wsBucket, ws+"mtime-new.txt", []byte{})

		// A new mount shows the stored mtime of a file looked up on its
		// own (HeadObject). After a listing it shows S3's upload time
		// instead: listings carry no metadata (README, Current limits).
		m2 := mountRig(t, w.r, time.Minute)
		dir2 := filepath.Join(m2.dir, wsBucket, strings.TrimSuffix(w.prefix, "/"))
		for _, name := range []string{"mtime.txt", "mtime-new.txt"} {
			if out := mustSh(t, dir2, "stat -c %Y "+name); strings.TrimSpace(out) != strconv.FormatInt(want.Unix(), 10) {
				t.Errorf("new mount, stat -c %%Y %s = %q, want %d", name, out, want.Unix())
			}
		}
	})
	t.Run("mv across authorized paths", func(t *testing.T) {
		run(t, "mkdir -p xdir/sub && echo x1 > xdir/a && echo x2 > xdir/sub/b && echo single > xfile")
		run(t, "mkdir -p "+q(w.sharedDir)+" && mv xdir xfile "+q(w.sharedDir)+"/")
		for _, gone := range []string{"xdir/", "xfile"} {
			if got := w.keys(t, wsBucket, ws+gone); len(got) != 0 {
				t.Errorf("keys left in the workspace under %s: %q", gone, got)
			}
		}
		sp := w.sharedPrefix
		if got, want := w.keys(t, sharedBucket, sp), []string{"", "xdir/", "xdir/a", "xdir/sub/", "xdir/sub/b", "xfile"}; !slices.Equal(got, want) {
			t.Errorf("keys under s3://%s/%s = %q, want %q", sharedBucket, sp, got, want)
		}
		w.wantObject(t, sharedBucket, sp+"xdir/a", []byte("x1\n"))
		w.wantObject(t, sharedBucket, sp+"xdir/sub/b", []byte("x2\n"))
		w.wantObject(t, sharedBucket, sp+"xfile", []byte("single\n"))
		if out := mustSh(t, w.sharedDir, "cat xdir/a xdir/sub/b xfile"); out != "x1\nx2\nsingle\n" {
			t.Errorf("cat in the shared path: %q", out)
		}
	})
	t.Run("read your writes", func(t *testing.T) {
		run(t, "echo 'old content, longer' > ryw.txt")
		if out := run(t, "cat ryw.txt"); out != "old content, longer\n" {
			t.Errorf("cat ryw.txt = %q", out)
		}
		if out := run(t, "echo new > ryw.txt && cat ryw.txt && stat -c %s ryw.txt && ls -l ryw.txt | awk '{print $5}'"); out != "new\n4\n4\n" {
			t.Errorf("cat, stat and ls -l right after an overwrite = %q, want %q", out, "new\n4\n4\n")
		}
		w.wantObject(t, wsBucket, ws+"ryw.txt", []byte("new\n"))
	})
}

// memKeys lists every key of an in-memory bucket under prefix, relative to
// it.
func memKeys(t *testing.T, b *bucket.Memory, prefix string) []string {
	t.Helper()
	keys := []string{}
	req := &bucket.ListRequest{Prefix: prefix}
	for {
		page, err := b.List(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			keys = append(keys, strings.TrimPrefix(o.Key, prefix))
		}
		if page.NextContinuationToken == "" {
			return keys
		}
		req.ContinuationToken = page.NextContinuationToken
	}
}

// memObject returns an in-memory object's content, and whether it exists.
func memObject(t *testing.T, b *bucket.Memory, key string) ([]byte, bool) {
	t.Helper()
	rc, err := b.Read(context.Background(), key, 0, -1, "")
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data, true
}

// TestWriteDirRenameOverLimit renames a directory holding more objects than
// RenameLimit: the rename fails with EXDEV and mv copies the tree itself.
func TestWriteDirRenameOverLimit(t *testing.T) {
	b := bucket.NewMemory("b")
	logger, logs := newTestLogger(t)
	dir := mountFS(t, fs.Options{Roots: []fs.Root{{Bucket: "b", Prefix: "p"}}, Bucket: func(string) bucket.Bucket { return b },
		RenameLimit: 3, Logger: logger})
	p := filepath.Join(dir, "b", "p")

	mustSh(t, p, "mkdir dir && for i in 1 2 3 4 5; do echo file$i > dir/f$i; done")
	if got, want := memKeys(t, b, "p/dir/"), []string{"", "f1", "f2", "f3", "f4", "f5"}; !slices.Equal(got, want) {
		t.Fatalf("keys under p/dir/ before mv = %q, want %q", got, want)
	}
	mustSh(t, p, "mv dir dir2")
	if got := memKeys(t, b, "p/dir/"); len(got) != 0 {
		t.Errorf("keys left under p/dir/: %q", got)
	}
	if got, want := memKeys(t, b, "p/dir2/"), []string{"", "f1", "f2", "f3", "f4", "f5"}; !slices.Equal(got, want) {
		t.Errorf("keys under p/dir2/ = %q, want %q", got, want)
	}
	for i := 1; i <= 5; i++ {
		key := fmt.Sprintf("p/dir2/f%d", i)
		if data, ok := memObject(t, b, key); !ok || string(data) != fmt.Sprintf("file%d\n", i) {
			t.Errorf("%s = %q, %v", key, data, ok)
		}
	}
	if !strings.Contains(logs.String(), "directory too large to rename in place") {
		t.Errorf("the log does not say the rename fell back to a copy")
	}
	if out := mustSh(t, p, "ls dir2 | tr '\\n' ' '; test ! -e dir && echo gone"); out != "f1 f2 f3 f4 f5 gone\n" {
		t.Errorf("through the mount: %q", out)
	}

	// At the limit, the directory is renamed in place.
	mustSh(t, p, "mkdir small && echo a > small/a && echo b > small/b && mv small small2")
	if got, want := memKeys(t, b, "p/small2/"), []string{"", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("keys under p/small2/ = %q, want %q", got, want)
	}
	if got := memKeys(t, b, "p/small/"); len(got) != 0 {
		t.Errorf("keys left under p/small/: %q", got)
	}
	if n := strings.Count(logs.String(), "directory too large to rename in place"); n != 1 {
		t.Errorf("the copy fallback was logged %d times, want once", n)
	}
}

// TestWriteLargeFile writes 1 GiB with dd and compares the object's hash,
// read through the SDK, with the source's.
func TestWriteLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB")
	}
	w := newWriteTest(t)
	src := filepath.Join(t.TempDir(), "big.src")
	began := time.Now()
	mustSh(t, t.TempDir(), "head -c 1G /dev/urandom > "+q(src))
	want := fileSHA256(t, src)
	t.Logf("source made and hashed in %v", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	mustSh(t, w.m.dir, "mkdir -p "+q(w.dir)+" && dd if="+q(src)+" of="+q(filepath.Join(w.dir, "big.bin"))+" bs=1M status=none")
	t.Logf("dd took %v", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	got, n := s3ObjectSHA256(t, w.r, wsBucket, w.prefix+"big.bin")
	t.Logf("SDK read took %v", time.Since(began).Round(time.Millisecond))
	if n != 1<<30 || got != want {
		t.Errorf("s3://%s/%sbig.bin: %d bytes, sha256 %s; want %d bytes, sha256 %s", wsBucket, w.prefix, n, got, 1<<30, want)
	}
	if head, ok := s3Head(t, w.r, wsBucket, w.prefix+"big.bin"); ok && !strings.Contains(*head.ETag, "-") {
		t.Errorf("ETag %s is not a multipart upload's", *head.ETag)
	}
	if out := mustSh(t, w.dir, "stat -c %s big.bin"); strings.TrimSpace(out) != strconv.Itoa(1<<30) {
		t.Errorf("stat -c %%s big.bin = %q", out)
	}
}

// treeDirs are the directories of the trees makeTree writes.
var treeDirs = []string{"", "a", "a/b", "a/b/c", "d", "d/e", "odd name (1)", "f/g/h/i"}

// largePath is where makeTree puts its i-th large file.
func largePath(i int) string {
	return filepath.Join(treeDirs[(i*3)%len(treeDirs)], fmt.Sprintf("large-%d.bin", i))
}

// makeTree writes a tree of files of mixed sizes under root: small files,
// some empty, in nested directories, and a few large ones around the part
// size. Files and directories get the mount's modes, and past mtimes with
// nanoseconds.
func makeTree(t *testing.T, root string, small int, large []int64) (files int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, uint64(small)))
	dirs := treeDirs
	mtime := func() time.Time {
		return time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
	}
	write := func(rel string, size int64, seed byte) {
		path := filepath.Join(root, rel)
		writeRandomFile(t, path, size, seed)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, time.Now(), mtime()); err != nil {
			t.Fatal(err)
		}
		files++
	}
	for i := range small {
		size := int64(rng.IntN(32 << 10))
		if i%25 == 0 {
			size = 0
		}
		write(filepath.Join(dirs[i%len(dirs)], fmt.Sprintf("file-%03d.dat", i)), size, byte(i))
	}
	for i, size := range large {
		write(largePath(i), size, byte(200+i))
	}
	for _, d := range dirs {
		path := filepath.Join(root, d)
		if err := os.Chmod(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, time.Now(), mtime()); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// largeSizes are the large files of the trees: 1 MiB, exactly one part,
// one byte more, and a few parts.
var largeSizes = []int64{1 << 20, 8 << 20, 8<<20 + 1, 20 << 20}

// TestWriteRsync copies a tree of 500 files with rsync -a, compares it with
// diff -r, and checks that a second rsync finds nothing to do.
func TestWriteRsync(t *testing.T) {
	w := newWriteTest(t)
	src := filepath.Join(t.TempDir(), "src")
	n := makeTree(t, src, 500-len(largeSizes), largeSizes)

	began := time.Now()
	mustSh(t, w.m.dir, "rsync -a "+q(src+"/")+" "+q(w.dir+"/"))
	t.Logf("rsync of %d files took %v", n, time.Since(began).Round(time.Millisecond))
	mustSh(t, w.m.dir, "diff -r "+q(src)+" "+q(w.dir))

	// The bucket holds every file, with its bytes, and no temporary file
	// of rsync's.
	var objects []string
	for _, k := range w.keys(t, wsBucket, w.prefix) {
		if !strings.HasSuffix(k, "/") && k != "" {
			objects = append(objects, k)
		}
	}
	if len(objects) != n {
		t.Errorf("%d objects under s3://%s/%s, want %d", len(objects), wsBucket, w.prefix, n)
	}
	for _, k := range objects {
		if strings.HasPrefix(filepath.Base(k), ".") {
			t.Errorf("rsync's temporary file left behind: %s", k)
		}
	}
	for i := range largeSizes {
		rel := largePath(i)
		if got, _ := s3ObjectSHA256(t, w.r, wsBucket, w.prefix+rel); got != fileSHA256(t, filepath.Join(src, rel)) {
			t.Errorf("s3://%s/%s%s differs from the source", wsBucket, w.prefix, rel)
		}
	}

	began = time.Now()
	out := mustSh(t, w.m.dir, "rsync -a --itemize-changes "+q(src+"/")+" "+q(w.dir+"/"))
	t.Logf("second rsync took %v", time.Since(began).Round(time.Millisecond))
	if out != "" {
		t.Errorf("second rsync -a --itemize-changes changed %d things, want none:\n%s", strings.Count(out, "\n"), out)
	}
	// A new mount lists S3's upload times until it has looked each file up
	// on its own, so there the first rsync -a compares against those
	// (README, Current limits).
}

// TestWriteTar extracts a tarball into the mount and compares the tree
// with diff -r.
func TestWriteTar(t *testing.T) {
	w := newWriteTest(t)
	tmp := t.TempDir()
	orig := filepath.Join(tmp, "orig")
	n := makeTree(t, orig, 150, largeSizes[:3])
	mustSh(t, tmp, "tar cf tree.tar -C orig .")

	began := time.Now()
	mustSh(t, w.m.dir, "mkdir -p "+q(w.dir)+" && tar xf "+q(filepath.Join(tmp, "tree.tar"))+" -C "+q(w.dir))
	t.Logf("tar xf of %d files took %v", n, time.Since(began).Round(time.Millisecond))
	mustSh(t, w.m.dir, "diff -r "+q(orig)+" "+q(w.dir))
	var objects int
	for _, k := range w.keys(t, wsBucket, w.prefix) {
		if !strings.HasSuffix(k, "/") && k != "" {
			objects++
		}
	}
	if objects != n {
		t.Errorf("%d objects under s3://%s/%s, want %d", objects, wsBucket, w.prefix, n)
	}
	for i := range 3 {
		rel := largePath(i)
		if got, _ := s3ObjectSHA256(t, w.r, wsBucket, w.prefix+rel); got != fileSHA256(t, filepath.Join(orig, rel)) {
			t.Errorf("s3://%s/%s%s differs from the source", wsBucket, w.prefix, rel)
		}
	}
}

// TestWriteFio runs fio's random writes with verification on a fresh file
// in the mount, then verifies the object as stored, downloaded through the
// SDK, with fio --verify_only.
func TestWriteFio(t *testing.T) {
	w := newWriteTest(t)
	mustSh(t, w.m.dir, "mkdir -p "+q(w.dir))
	job := "fio --name=rw --size=64m --rw=randwrite --bs=4k --verify=crc32c --do_verify=1 --direct=0 --ioengine=psync --fallocate=none --randseed=1234 "
	began := time.Now()
	out, err := sh(t, w.dir, job+"--filename=fio.dat")
	t.Logf("fio took %v", time.Since(began).Round(time.Millisecond))
	if err != nil || !strings.Contains(out, "err= 0") || strings.Contains(out, "verify failed") {
		t.Fatalf("fio: %v\n%s", err, out)
	}
	// Read back what S3 holds, and have fio verify it again.
	data, ok := w.object(t, wsBucket, w.prefix+"fio.dat")
	if !ok || len(data) != 64<<20 {
		t.Fatalf("s3://%s/%sfio.dat: exists %v, %d bytes, want %d", wsBucket, w.prefix, ok, len(data), 64<<20)
	}
	local := filepath.Join(t.TempDir(), "fio.dat")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = sh(t, filepath.Dir(local), job+"--verify_only --filename=fio.dat")
	if err != nil || !strings.Contains(out, "err= 0") || strings.Contains(out, "verify failed") {
		t.Errorf("fio --verify_only on the object downloaded through the SDK: %v\n%s", err, out)
	}
}

// TestWriteUploadFailure makes every upload of the test's files fail at the
// proxy, and checks that cp fails, the log says why, and the bucket is left
// as it was: no new object, an existing one unchanged, no multipart upload.
func TestWriteUploadFailure(t *testing.T) {
	w := newWriteTest(t)
	r := w.r
	t.Cleanup(func() { r.Proxy.SetFault(nil) })
	for _, tc := range []struct {
		name string
		size int
		// old, if set, is the object's content before cp overwrites it
		// (cp opens it with O_TRUNC, the streamed path).
		old []byte
	}{
		{name: "multipart", size: 20 << 20},
		{name: "single PUT", size: 1 << 20},
		{name: "multipart overwrite", size: 20 << 20, old: []byte("old content\n")},
		{name: "single PUT overwrite", size: 1 << 20, old: []byte("old content\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := strings.ReplaceAll(tc.name, " ", "-")
			key := w.prefix + sub + "/up.bin"
			object := "s3://" + wsBucket + "/" + key
			if tc.old != nil {
				putObject(t, r, wsBucket, key, tc.old)
			}
			mustSh(t, w.m.dir, "mkdir -p "+q(filepath.Join(w.dir, sub)))
			data := randomBytes(tc.size, 9)
			local := filepath.Join(t.TempDir(), "local.bin")
			if err := os.WriteFile(local, data, 0o644); err != nil {
				t.Fatal(err)
			}
			faultPath := "/" + wsBucket + "/" + w.prefix + sub + "/"
			var faults atomic.Int64
			r.Proxy.SetFault(func(rw http.ResponseWriter, req *http.Request) bool {
				if req.Method != http.MethodPut || !strings.HasPrefix(req.URL.Path, faultPath) {
					return false
				}
				faults.Add(1)
				io.Copy(io.Discard, req.Body)
				// Parts after the first answer later, as they do when
				// parts travel at different speeds: they are still in
				// flight when the first one fails.
				if n := req.URL.Query().Get("partNumber"); n != "" && n != "1" {
					select {
					case <-time.After(300 * time.Millisecond):
					case <-req.Context().Done():
						return true
					}
				}
				rig.WriteS3Error(rw, http.StatusForbidden, "AccessDenied", "Access Denied (injected by the test)")
				return true
			})
			defer r.Proxy.SetFault(nil)

			out, err := sh(t, w.dir, "cp "+q(local)+" "+q(sub+"/up.bin"))
			if err == nil {
				t.Errorf("cp succeeded while every upload failed: %q", out)
			} else if !strings.Contains(out, "Permission denied") {
				// S3 denied the request: EACCES, as the README's table says.
				t.Errorf("cp failed with %q, want Permission denied", strings.TrimSpace(out))
			}
			if faults.Load() == 0 {
				t.Errorf("no upload request reached the fault")
			}
			// A staged file's release tries once more after close, then
			// keeps the content locally; wait for the log to say the upload
			// failed for good before clearing the fault, so that no retry
			// can succeed behind the test's back.
			waitFor(t, 30*time.Second, "the log to say the upload of "+object+" failed", func() bool {
				for _, line := range strings.Split(w.m.logs.String(), "\n") {
					if strings.Contains(line, "upload failed") && strings.Contains(line, key) {
						return true
					}
				}
				return false
			})
			r.Proxy.SetFault(nil)

			logs := w.m.logs.String()
			var why []string
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, key) {
					why = append(why, line)
				}
			}
			if !strings.Contains(strings.Join(why, "\n"), "AccessDenied") {
				t.Errorf("the log does not say why the upload of %s failed (AccessDenied):\n%s", object, strings.Join(why, "\n"))
			}
			if kept := keptAt(logs, object); kept != "" {
				if got, err := os.ReadFile(kept); err != nil || !bytes.Equal(got, data) {
					t.Errorf("content kept at %s: %d bytes, %v; want the %d bytes written", kept, len(got), err, len(data))
				}
			}
			if tc.old != nil {
				w.wantObject(t, wsBucket, key, tc.old)
			} else {
				w.wantNoObject(t, wsBucket, key)
			}
			if ups := s3Uploads(t, r, wsBucket, w.prefix); len(ups) != 0 {
				t.Errorf("multipart uploads left behind: %q", ups)
			}
		})
	}
}

// keptAt returns the kept_at path logged for object, or "".
func keptAt(logs, object string) string {
	re := regexp.MustCompile(`object=` + regexp.QuoteMeta(object) + ` kept_at=(\S+)`)
	if m := re.FindStringSubmatch(logs); m != nil {
		return m[1]
	}
	return ""
}

// TestWriteTwoHandles writes the same file through two descriptors that
// both truncated it: they share one content, as on a local disk, and the
// file is stored when the last one closes.
func TestWriteTwoHandles(t *testing.T) {
	w := newWriteTest(t)
	mustSh(t, w.m.dir, "mkdir -p "+q(w.dir)+" && echo original > "+q(filepath.Join(w.dir, "two.txt")))
	oracle := filepath.Join(t.TempDir(), "two.txt")
	if err := os.WriteFile(oracle, []byte("original\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{oracle, filepath.Join(w.dir, "two.txt")} {
		a, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			a.Close()
			t.Fatal(err)
		}
		_, errA := a.WriteString("content written through handle A, the longer one\n")
		_, errB := b.WriteString("B\n")
		if errA != nil || errB != nil {
			t.Errorf("writes: %v, %v", errA, errB)
		}
		if err := a.Close(); err != nil {
			t.Errorf("close A: %v", err)
		}
		if path != oracle {
			// B still writes: nothing is stored yet.
			w.wantObject(t, wsBucket, w.prefix+"two.txt", []byte("original\n"))
		}
		if err := b.Close(); err != nil {
			t.Errorf("close B: %v", err)
		}
	}
	want, err := os.ReadFile(oracle)
	if err != nil {
		t.Fatal(err)
	}
	w.wantObject(t, wsBucket, w.prefix+"two.txt", want)
	if out := mustSh(t, w.dir, "cat two.txt"); out != string(want) {
		t.Errorf("cat two.txt = %q, want %q", out, want)
	}
}

// TestWriteStagingDiskFull writes 32 MiB through a 16 MiB staging disk.
// A write that needs the staging file fails with ENOSPC and leaves the
// bucket as it was; a write that streams to S3 without staging may
// succeed, but then stores every byte. Never a partial object.
func TestWriteStagingDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	staging := t.TempDir()
	if err := syscall.Mount("tmpfs", staging, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a 16 MiB tmpfs for the staging directory: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(staging, 0); err != nil {
			t.Errorf("unmounting the staging tmpfs: %v", err)
			syscall.Unmount(staging, syscall.MNT_DETACH)
		}
	})
	b := bucket.NewMemory("b")
	old := []byte("old content\n")
	b.PutBytes("p/inplace.bin", old)
	b.PutBytes("p/overwrite.bin", old)
	logger, logs := newTestLogger(t)
	dir := mountFS(t, fs.Options{Roots: []fs.Root{{Bucket: "b", Prefix: "p"}}, Bucket: func(string) bucket.Bucket { return b },
		StagingDir: staging, Logger: logger})
	p := filepath.Join(dir, "b", "p")
	const size = 32 << 20

	for _, tc := range []struct {
		name, cmd string
		old       []byte // nil: a new file
		staged    bool   // the write needs the staging file
	}{
		// Written in place, without O_TRUNC: always staged.
		{"in place", "dd if=/dev/zero of=inplace.bin bs=1M count=32 conv=notrunc status=none", old, true},
		// A new file and an overwrite, written from the start.
		{"new file", "dd if=/dev/zero of=new.bin bs=1M count=32 status=none", nil, false},
		{"overwrite", "dd if=/dev/zero of=overwrite.bin bs=1M count=32 status=none", old, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "p/" + strings.Fields(strings.SplitN(tc.cmd, "of=", 2)[1])[0]
			out, err := sh(t, p, tc.cmd)
			got, exists := memObject(t, b, key)
			switch {
			case err == nil && tc.staged:
				t.Errorf("%s succeeded on a 16 MiB staging disk; want No space left on device", tc.cmd)
			case err == nil:
				// Streamed without staging: then every byte must be there.
				if !exists || !bytes.Equal(got, make([]byte, size)) {
					t.Errorf("%s succeeded but %s = %s (exists %v), want %d zero bytes", tc.cmd, key, describe(got), exists, size)
				}
			default:
				if !strings.Contains(out, "No space left on device") {
					t.Errorf("%s: %v %q, want No space left on device", tc.cmd, err, out)
				}
				if tc.old == nil && exists {
					t.Errorf("%s exists after the failed dd: %s; want no object", key, describe(got))
				}
				if tc.old != nil && (!exists || !bytes.Equal(got, tc.old)) {
					t.Errorf("%s after the failed dd = %s (exists %v), want its old content %q", key, describe(got), exists, tc.old)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "staging disk is full") {
		t.Errorf("the log does not say the staging disk is full")
	}
}

// TestWriteChmodStoresNothing checks that chmod and chown, which S3 has no
// place for, send no request that reads or writes the object: no download
// of its content, no upload, no copy.
func TestWriteChmodStoresNothing(t *testing.T) {
	w := newWriteTest(t)
	mustSh(t, w.m.dir, "mkdir -p "+q(w.dir)+" && echo content > "+q(filepath.Join(w.dir, "f.txt")))
	h := w.r.Proxy.Inject(rig.Fault{Kind: rig.FaultLatency, Match: rig.MatchAll(matchUnder(w.prefix),
		rig.MatchOp(rig.OpGetObject, rig.OpPutObject, rig.OpCopyObject, rig.OpCreateMultipartUpload))})
	defer h.Remove()
	mustSh(t, w.m.dir, "chmod 600 "+q(filepath.Join(w.dir, "f.txt"))+" && chown "+strconv.Itoa(os.Getuid())+" "+q(filepath.Join(w.dir, "f.txt")))
	if n := h.Count(); n != 0 {
		t.Errorf("chmod and chown sent %d GET, PUT or copy requests; want none", n)
	}
	w.wantObject(t, wsBucket, w.prefix+"f.txt", []byte("content\n"))
}
