package fs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/fs"
	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/rig"
)

// sh runs a shell command line in dir and returns its combined output.
//
// The shell changes into dir itself. Setting cmd.Dir to a directory inside a
// mount this process serves can deadlock: os/exec forks with CLONE_VFORK, so
// the forking thread waits, outside the Go scheduler, for the child's chdir,
// which waits for this process's FUSE server, which a stop-the-world GC may
// have paused while it waits for the forking thread.
func sh(t *testing.T, dir, cmdline string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `cd "$1" && `+cmdline, "sh", dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustSh(t *testing.T, dir, cmdline string) string {
	t.Helper()
	out, err := sh(t, dir, cmdline)
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	return out
}

func TestTreeShowsOnlyAuthorizedPaths(t *testing.T) {
	r := getSharedRig(t)
	m := mountRig(t, r, time.Minute)

	tests := []struct {
		dir  string
		want []string
	}{
		{"", []string{"maap-ops-workspace/", "public-reference-data/", "shared-project-bucket/"}},
		{"maap-ops-workspace", []string{"jdoe/"}},
		{"public-reference-data", []string{"smap/"}},
		{"public-reference-data/smap", []string{"v9/"}},
		{"maap-ops-workspace/jdoe", []string{"README.txt", "data/", "empty-dir/", "results/"}},
		{"maap-ops-workspace/jdoe/empty-dir", []string{}},
		{"maap-ops-workspace/jdoe/results", []string{"run1.csv", "run2.csv"}},
		{"public-reference-data/smap/v9", []string{"SMAP_L3_2024-01-01.h5", "granules/"}},
	}
	for _, tt := range tests {
		if got := readDirNames(t, filepath.Join(m.dir, tt.dir)); !slices.Equal(got, tt.want) {
			t.Errorf("ReadDir(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
	for _, outside := range []string{"maap-ops-workspace/other-user", "maap-ops-workspace/other-user/secret.txt", "nonexistent-bucket", "maap-ops-workspace/jdoe/nope"} {
		if _, err := os.Stat(filepath.Join(m.dir, outside)); !os.IsNotExist(err) {
			t.Errorf("Stat(%q) error = %v, want not-exist", outside, err)
		}
	}
	// ls -a shows . and .., and every tool sees the same inode twice.
	out := mustSh(t, m.dir, "ls -a maap-ops-workspace/jdoe")
	if !strings.HasPrefix(out, ".\n..\n") {
		t.Errorf("ls -a = %q, want . and .. first", out)
	}
	i1 := mustSh(t, m.dir, "stat -c %i maap-ops-workspace/jdoe/README.txt")
	i2 := mustSh(t, m.dir, "ls -i maap-ops-workspace/jdoe/README.txt | cut -d' ' -f1")
	if strings.TrimSpace(i1) != strings.TrimSpace(i2) {
		t.Errorf("inode numbers differ: stat %q, ls -i %q", i1, i2)
	}
}

func TestAttributesComeFromS3(t *testing.T) {
	r := getSharedRig(t)
	m := mountRig(t, r, time.Minute)
	for _, o := range rig.SeedObjects(r.Paths) {
		if strings.HasSuffix(o.Key, "/") || strings.Contains(o.Key, "other-user") {
			continue
		}
		head, err := r.MinIO.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &o.Bucket, Key: &o.Key})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(m.dir, o.Bucket, o.Key)
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("Stat(%q): %v", path, err)
			continue
		}
		if fi.Size() != int64(len(o.Body)) {
			t.Errorf("Stat(%q).Size = %d, want %d", path, fi.Size(), len(o.Body))
		}
		if want := aws.ToTime(head.LastModified); !fi.ModTime().Equal(want) {
			t.Errorf("Stat(%q).ModTime = %v, want %v", path, fi.ModTime(), want)
		}
		wantMode := os.FileMode(0o644)
		if strings.HasPrefix(o.Bucket, "public-reference") {
			wantMode = 0o444
		}
		if fi.Mode() != wantMode {
			t.Errorf("Stat(%q).Mode = %v, want %v", path, fi.Mode(), wantMode)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if want := (int64(len(o.Body)) + 511) / 512; st.Blocks != want {
			t.Errorf("Stat(%q).Blocks = %d, want %d", path, st.Blocks, want)
		}
	}
	for dir, want := range map[string]os.FileMode{
		"":                                       0o555 | os.ModeDir,
		"maap-ops-workspace":                     0o555 | os.ModeDir,
		"maap-ops-workspace/jdoe":                0o755 | os.ModeDir,
		"maap-ops-workspace/jdoe/results":        0o755 | os.ModeDir,
		"public-reference-data/smap/v9":          0o555 | os.ModeDir,
		"public-reference-data/smap/v9/granules": 0o555 | os.ModeDir,
	} {
		fi, err := os.Stat(filepath.Join(m.dir, dir))
		if err != nil || fi.Mode() != want {
			t.Errorf("Stat(%q) = %v, %v; want mode %v", dir, fi.Mode(), err, want)
		}
	}
}

func TestShellToolsRead(t *testing.T) {
	r := getSharedRig(t)
	// 100 MiB of pseudo-random bytes, uploaded before mounting.
	big := make([]byte, 100<<20)
	rng := rand.New(rand.NewChaCha8([32]byte{1, 2, 3}))
	for i := 0; i < len(big); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			big[i+j] = byte(v >> (8 * j))
		}
	}
	for _, p := range []string{"jdoe/big/", "jdoe/odd names/"} {
		t.Cleanup(func() { clearPrefix(t, r, "maap-ops-workspace", p) })
	}
	putObject(t, r, "maap-ops-workspace", "jdoe/big/random.bin", big)
	putObject(t, r, "maap-ops-workspace", "jdoe/odd names/a b+c%20d?e#f&g=h ü.txt", []byte("odd\n"))
	m := mountRig(t, r, time.Minute)
	ws := filepath.Join(m.dir, "maap-ops-workspace", "jdoe")

	sum := sha256.Sum256(big)
	out := mustSh(t, ws, "sha256sum big/random.bin")
	if got := strings.Fields(out)[0]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256sum = %s, want %x", got, sum)
	}

	local := filepath.Join(t.TempDir(), "sample.bin")
	if err := os.WriteFile(local, rig.SampleBin(), 0o600); err != nil {
		t.Fatal(err)
	}
	mustSh(t, ws, "cmp data/sample.bin "+local)
	mustSh(t, ws, "cp data/sample.bin "+local+".copy && cmp "+local+" "+local+".copy")

	if out := mustSh(t, ws, "cat README.txt"); out != string(getObject(t, r, "maap-ops-workspace", "jdoe/README.txt")) {
		t.Errorf("cat README.txt = %q", out)
	}
	if out := mustSh(t, ws, "head -c 1000 big/random.bin"); out != string(big[:1000]) {
		t.Errorf("head -c 1000 returned %d different bytes", len(out))
	}
	if out := mustSh(t, ws, "dd if=big/random.bin bs=1M skip=37 count=3 status=none"); out != string(big[37<<20:40<<20]) {
		t.Errorf("dd skip=37 count=3 returned %d different bytes", len(out))
	}
	if out := mustSh(t, ws, "tail -c 12345 big/random.bin"); out != string(big[len(big)-12345:]) {
		t.Errorf("tail -c returned %d different bytes", len(out))
	}
	if out := mustSh(t, ws, "cat 'odd names/a b+c%20d?e#f&g=h ü.txt'"); out != "odd\n" {
		t.Errorf("cat of an odd name = %q", out)
	}

	out = mustSh(t, m.dir, "find . -type f | sort")
	want := []string{
		"./maap-ops-workspace/jdoe/README.txt", "./maap-ops-workspace/jdoe/big/random.bin",
		"./maap-ops-workspace/jdoe/data/sample.bin", "./maap-ops-workspace/jdoe/odd names/a b+c%20d?e#f&g=h ü.txt",
		"./maap-ops-workspace/jdoe/results/run1.csv", "./maap-ops-workspace/jdoe/results/run2.csv",
		"./public-reference-data/smap/v9/SMAP_L3_2024-01-01.h5", "./public-reference-data/smap/v9/granules/g001.txt",
		"./public-reference-data/smap/v9/granules/g002.txt", "./shared-project-bucket/team-data/notes.md",
		"./shared-project-bucket/team-data/shared/params.json",
	}
	sort.Strings(want)
	if got := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(got, want) {
		t.Errorf("find -type f =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out := mustSh(t, ws, "du -b data/sample.bin | cut -f1"); strings.TrimSpace(out) != strconv.Itoa(rig.SampleBinSize) {
		t.Errorf("du -b = %q, want %d", out, rig.SampleBinSize)
	}
	if out := mustSh(t, ws, "du -k big/random.bin | cut -f1"); strings.TrimSpace(out) != "102400" {
		t.Errorf("du -k = %q, want 102400", out)
	}
	if out := mustSh(t, ws, "stat -c '%s' big/random.bin"); strings.TrimSpace(out) != strconv.Itoa(len(big)) {
		t.Errorf("stat -c %%s = %q", out)
	}

	t.Run("RandomReadsOneHandle", func(t *testing.T) {
		f, err := os.Open(filepath.Join(ws, "big/random.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(1, uint64(g)))
				buf := make([]byte, 3<<20)
				for range 25 {
					off := rng.Int64N(int64(len(big)))
					n := 1 + rng.IntN(len(buf))
					if g%2 == 0 {
						n = 1 + rng.IntN(8192)
					}
					got, err := f.ReadAt(buf[:n], off)
					if err != nil && err != io.EOF {
						t.Errorf("ReadAt(%d, %d): %v", n, off, err)
						return
					}
					if !bytes.Equal(buf[:got], big[off:min(off+int64(n), int64(len(big)))]) {
						t.Errorf("ReadAt(%d, %d) returned wrong bytes", n, off)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestReadOnlyPathsRefuseChanges(t *testing.T) {
	r := getSharedRig(t)
	m := mountRig(t, r, time.Minute)
	before := bucketState(t, r, "public-reference-data")
	// Warm the listings so that lookups need no requests either.
	mustSh(t, m.dir, "ls -lR . > /dev/null")
	requests := r.Proxy.Requests()

	ro := "public-reference-data/smap/v9"
	cmds := []string{
		"touch " + ro + "/new-file",
		"touch " + ro + "/SMAP_L3_2024-01-01.h5",
		"echo x > " + ro + "/SMAP_L3_2024-01-01.h5",
		"echo x >> " + ro + "/SMAP_L3_2024-01-01.h5",
		"echo x > " + ro + "/granules/new.txt",
		"rm " + ro + "/granules/g001.txt",
		"rm -rf " + ro + "/granules",
		"mkdir " + ro + "/newdir",
		"rmdir " + ro + "/granules",
		"mv " + ro + "/granules/g001.txt " + ro + "/granules/moved.txt",
		"mv " + ro + "/granules " + ro + "/moved",
		"cp /etc/hostname " + ro + "/",
		"chmod 600 " + ro + "/granules/g002.txt",
		"ln -s g002.txt " + ro + "/granules/link",
		"truncate -s 0 " + ro + "/granules/g002.txt",
		// The synthetic directories above the paths are read-only too.
		"mkdir public-reference-data/new",
		"touch public-reference-data/smap/file",
		"mkdir new-bucket",
		"mv maap-ops-workspace/jdoe maap-ops-workspace/jdoe2",
	}
	for _, c := range cmds {
		out, err := sh(t, m.dir, c)
		if err == nil {
			t.Errorf("%s succeeded on a read-only path", c)
			continue
		}
		if !strings.Contains(out, "Read-only file system") {
			t.Errorf("%s: %q, want Read-only file system", c, out)
		}
	}
	if err := os.WriteFile(filepath.Join(m.dir, ro, "granules/g002.txt"), []byte("x"), 0o644); !isErrno(err, syscall.EROFS) {
		t.Errorf("WriteFile on a read-only path: %v, want EROFS", err)
	}
	// The kernel answers access(2) itself (default_permissions): the
	// modes it goes by show no write bits.
	if st, err := os.Stat(filepath.Join(m.dir, ro, "granules/g002.txt")); err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Errorf("Stat of a read-only file = %v, %v; want no write bits", st.Mode(), err)
	}
	if n := r.Proxy.Requests() - requests; n != 0 {
		t.Errorf("refused changes sent %d requests to S3, want 0", n)
	}
	if after := bucketState(t, r, "public-reference-data"); !slices.Equal(before, after) {
		t.Errorf("read-only bucket changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestReadOnlyFlag(t *testing.T) {
	b := bucket.NewMemory("b")
	b.PutBytes("p/f", []byte("data"))
	logger, _ := newTestLogger(t)
	dir := mountFS(t, fs.Options{Roots: []fs.Root{{Bucket: "b", Prefix: "p"}}, ReadOnly: true, Logger: logger,
		Bucket: func(string) bucket.Bucket { return b }})
	for _, c := range []string{"touch b/p/new", "echo x > b/p/f", "rm b/p/f", "mkdir b/p/d"} {
		if out, err := sh(t, dir, c); err == nil || !strings.Contains(out, "Read-only file system") {
			t.Errorf("%s with --read-only: %v %q, want Read-only file system", c, err, out)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "b/p/f")); err != nil || fi.Mode() != 0o444 {
		t.Errorf("Stat with --read-only = %v, %v; want mode 0444", fi.Mode(), err)
	}
}

// TestHostileKeys mounts an in-memory bucket, because MinIO refuses to store
// most of these keys.
func TestHostileKeys(t *testing.T) {
	b := bucket.NewMemory("b")
	long := strings.Repeat("n", 255)
	for _, k := range []string{
		"p/ok.txt", "p//double", "p/./dot", "p/../up", "p/..", "p/.", "p/a\x00b", "p/" + long + "x", "p/" + long,
		"p/conflict", "p/conflict/inside", "p/marker/", "p/.hidden", "p/", "p/sub//x", "p/\u00e9t\u00e9 \u2713.nc",
	} {
		b.PutBytes(k, []byte("content of "+k))
	}
	dir, logs := mountMemory(t, []fs.Root{{Bucket: "b", Prefix: "p"}}, b)
	p := filepath.Join(dir, "b", "p")

	want := []string{".hidden", "conflict/", "marker/", long, "ok.txt", "sub/", "\u00e9t\u00e9 \u2713.nc"}
	for range 2 { // listing twice logs nothing new
		if got := readDirNames(t, p); !slices.Equal(got, want) {
			t.Errorf("ReadDir = %q, want %q", got, want)
		}
	}
	if got := readDirNames(t, filepath.Join(p, "sub")); len(got) != 0 {
		t.Errorf("ReadDir(sub) = %q, want nothing (its only key has an empty segment)", got)
	}
	if data, err := os.ReadFile(filepath.Join(p, long)); err != nil || string(data) != "content of p/"+long {
		t.Errorf("ReadFile(255-byte name) = %q, %v", data, err)
	}
	if data, err := os.ReadFile(filepath.Join(p, "conflict", "inside")); err != nil || string(data) != "content of p/conflict/inside" {
		t.Errorf("ReadFile(conflict/inside) = %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(p, long+"x")); !isErrno(err, syscall.ENAMETOOLONG) {
		t.Errorf("Stat(256-byte name) = %v, want ENAMETOOLONG", err)
	}
	// ".." resolves in the kernel: it never reaches a key outside the path.
	if _, err := os.Stat(filepath.Join(p, "..", "up")); !os.IsNotExist(err) {
		t.Errorf("Stat(p/../up) = %v, want not-exist", err)
	}
	skipped := loggedObjects(logs.String(), "cannot be shown")
	for _, key := range []string{"p//", "p/./", "p/../", "p/..", "p/.", "p/a\x00b", "p/" + long + "x", "p/sub//"} {
		if n := skipped["s3://b/"+key]; n != 1 {
			t.Errorf("key %q logged %d times, want once", key, n)
		}
	}
	if len(skipped) != 8 {
		t.Errorf("logged %d skipped keys, want 8: %v", len(skipped), skipped)
	}
	if hidden := loggedObjects(logs.String(), "hidden by a directory"); len(hidden) != 1 || hidden["s3://b/p/conflict"] != 1 {
		t.Errorf("conflicts logged: %v, want s3://b/p/conflict once", hidden)
	}
}

// TestLookupWithoutListing covers names looked up before their directory
// was listed, and listings longer than one page.
func TestLookupWithoutListing(t *testing.T) {
	b := bucket.NewMemory("b")
	for i := range 2500 {
		b.PutBytes(fmt.Sprintf("p/many/f%04d", i), []byte{byte(i)})
	}
	b.PutBytes("p/implicit/deep/file", []byte("deep"))
	b.PutBytes("p/file", []byte("file"))
	dir, _ := mountMemory(t, []fs.Root{{Bucket: "b", Prefix: "p"}}, b)
	p := filepath.Join(dir, "b", "p")
	if data, err := os.ReadFile(filepath.Join(p, "implicit/deep/file")); err != nil || string(data) != "deep" {
		t.Errorf("ReadFile(implicit/deep/file) = %q, %v", data, err)
	}
	if fi, err := os.Stat(filepath.Join(p, "implicit")); err != nil || !fi.IsDir() {
		t.Errorf("Stat(implicit) = %v, %v; want a directory", fi, err)
	}
	if _, err := os.Stat(filepath.Join(p, "missing")); !os.IsNotExist(err) {
		t.Errorf("Stat(missing) = %v", err)
	}
	if got := readDirNames(t, filepath.Join(p, "many")); len(got) != 2500 || got[2499] != "f2499" {
		t.Errorf("ReadDir(many) has %d entries", len(got))
	}
}

// loggedObjects counts the object= values of log lines that contain msg.
func loggedObjects(log, msg string) map[string]int {
	counts := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		_, v, ok := strings.Cut(line, " object=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		counts[v]++
	}
	return counts
}
