package fs_test

// The tests in this file check the metadata caches through a real mount: a
// warm `ls -l` is answered by the kernel's caches and sends nothing, to the
// mount or to S3; this mount's own changes show in the very next listing
// although the kernel keeps directory entries; a refreshed listing brings
// S3's changes; a missing name is trusted for the negative TTL only; and
// concurrent lookups and listings of the same thing are one request.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/fs"
	"github.com/s3mount/s3mount/internal/rig"
	"github.com/s3mount/s3mount/internal/s3bucket"
)

// metaTest is a mount of the shared rig that logs every FUSE request, with
// a directory of its own (prefix in wsBucket, dir in the mount), emptied
// before and after the test.
type metaTest struct {
	r      *rig.Rig
	fsys   *fs.FS
	logs   *rig.SyncBuffer
	prefix string
	dir    string
	mu     sync.Mutex // guards now
	// now is the filesystem's clock, which moves only by advance, so that
	// the listings' ages do not depend on how fast the test runs.
	now time.Time
}

// newMetaTest mounts the shared rig with fsOpts (roots, bucket, logger and
// staging directory are filled in), through the rig's proxy with minted
// credentials, and logs every FUSE request.
func newMetaTest(t *testing.T, fsOpts fs.Options) *metaTest {
	t.Helper()
	r := getSharedRig(t)
	m := &metaTest{r: r, prefix: "jdoe/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/"}
	clearPrefix(t, r, wsBucket, m.prefix)
	t.Cleanup(func() { clearPrefix(t, r, wsBucket, m.prefix) })
	minted, err := r.MAAP.Mint(context.Background(), r.Paths, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := newTestLogger(t)
	client, err := s3bucket.New(context.Background(), s3bucket.Options{Region: rig.Region, Endpoint: r.Proxy.URL, Logger: logger,
		Credentials: credentials.NewStaticCredentialsProvider(minted.AccessKeyID, minted.SecretAccessKey, minted.SessionToken)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Paths {
		fsOpts.Roots = append(fsOpts.Roots, fs.Root{Bucket: p.Bucket, Prefix: p.Prefix, ReadOnly: p.Access != rig.AccessReadWrite})
	}
	fsOpts.Bucket, fsOpts.Logger, fsOpts.StagingDir = client.Bucket, logger, t.TempDir()
	fsOpts.UID, fsOpts.GID = uint32(os.Getuid()), uint32(os.Getgid())
	if m.fsys, err = fs.New(fsOpts); err != nil {
		t.Fatal(err)
	}
	m.now = time.Now()
	fs.SetClock(m.fsys, func() time.Time {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.now
	})
	m.logs = logs
	mnt := t.TempDir()
	srv, err := m.fsys.Mount(mnt, fs.MountOptions{Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; srv.Unmount() != nil; i++ {
			if i == 50 {
				t.Errorf("unmount %s failed; detaching it", mnt)
				syscall.Unmount(mnt, syscall.MNT_DETACH)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		srv.Wait()
		if err := m.fsys.Close(); err != nil {
			t.Error(err)
		}
	})
	m.dir = filepath.Join(mnt, wsBucket, strings.TrimSuffix(m.prefix, "/"))
	return m
}

// advance moves the filesystem's clock forward by d.
func (m *metaTest) advance(d time.Duration) {
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.mu.Unlock()
}

// put uploads objects under the test's prefix through MinIO directly.
func (m *metaTest) put(t *testing.T, names ...string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() { putObject(t, m.r, wsBucket, m.prefix+name, []byte(name)) })
	}
	wg.Wait()
}

// remove deletes an object under the test's prefix through MinIO directly.
func (m *metaTest) remove(t *testing.T, name string) {
	t.Helper()
	if _, err := m.r.MinIO.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(wsBucket), Key: aws.String(m.prefix + name)}); err != nil {
		t.Fatal(err)
	}
}

var fuseOp = regexp.MustCompile(`rx \d+: ([A-Z_0-9]+) `)

// fuseOps returns a function that counts the FUSE requests, by operation,
// that the kernel sent from now on.
func (m *metaTest) fuseOps() func() map[string]int {
	from := len(m.logs.String())
	return func() map[string]int {
		ops := map[string]int{}
		for _, match := range fuseOp.FindAllStringSubmatch(m.logs.String()[from:], -1) {
			ops[match[1]]++
		}
		return ops
	}
}

// counter counts the requests of op under the test's prefix that the rig's
// proxy sees from now on.
func (m *metaTest) counter(t *testing.T, op rig.Op) *rig.FaultHandle {
	t.Helper()
	h := m.r.Proxy.Inject(rig.Fault{Kind: rig.FaultLatency, Match: rig.MatchAll(rig.MatchOp(op), matchUnder(m.prefix))})
	t.Cleanup(h.Remove)
	return h
}

// lsL runs `ls -l` in the test's directory and returns the names listed.
func (m *metaTest) lsL(t *testing.T) []string {
	t.Helper()
	out, err := runCmd(30*time.Second, nil, "ls", "-l", m.dir)
	if err != nil {
		t.Fatalf("ls -l: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		fields := strings.Fields(line)
		names = append(names, fields[len(fields)-1])
	}
	return names
}

func TestMetadataWarmListing(t *testing.T) {
	m := newMetaTest(t, fs.Options{MetadataTTL: time.Minute})
	var names []string
	for i := range metaFiles() {
		names = append(names, fmt.Sprintf("file-%05d", i))
	}
	m.put(t, names...)
	lists, heads := m.counter(t, rig.OpListObjectsV2), m.counter(t, rig.OpHeadObject)

	cold := m.fuseOps()
	if got := m.lsL(t); !slices.Equal(got, names) {
		t.Fatalf("cold ls -l listed %d names, want %d", len(got), len(names))
	}
	coldOps := cold()
	t.Logf("cold ls -l: FUSE %v; S3 %d LIST, %d HEAD", coldOps, lists.Count(), heads.Count())
	if n := coldOps["GETXATTR"] + coldOps["LISTXATTR"]; n > 2 {
		t.Errorf("cold ls -l of %d files sent %d xattr requests, want at most one of each: ENOSYS stops the kernel asking", len(names), n)
	}
	if n := heads.Count(); n > 1 {
		t.Errorf("cold ls -l sent %d HEADs, want at most the directory's own lookup", n)
	}

	for pass := range 2 {
		var lists0, heads0 int
		ops := m.warm(t, fmt.Sprintf("warm ls -l %d", pass), func() {
			lists0, heads0 = lists.Count(), heads.Count()
			if got := m.lsL(t); !slices.Equal(got, names) {
				t.Fatalf("warm ls -l listed %d names, want %d", len(got), len(names))
			}
		}, "GETXATTR", "LISTXATTR", "READDIR", "READDIRPLUS", "LOOKUP")
		t.Logf("warm ls -l %d: FUSE %v", pass, ops)
		if n := ops["GETATTR"]; n > 2 {
			t.Errorf("warm ls -l %d sent %d GETATTR, want none for the files", pass, n)
		}
		if l, h := lists.Count()-lists0, heads.Count()-heads0; ops != nil && (l != 0 || h != 0) {
			t.Errorf("warm ls -l %d sent %d LIST and %d HEAD, want none", pass, l, h)
		}
	}
}

// lsIn runs `ls -l` in dir (below the test's directory) and returns the
// names listed.
func (m *metaTest) lsIn(t *testing.T, dir string) []string {
	t.Helper()
	out, err := runCmd(30*time.Second, nil, "ls", "-l", filepath.Join(m.dir, dir))
	if err != nil {
		t.Fatalf("ls -l %s: %v\n%s", dir, err, out)
	}
	names := []string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		fields := strings.Fields(line)
		names = append(names, fields[len(fields)-1])
	}
	return names
}

// wantListing lists dir twice: the first must show want, and the second
// must too, from the kernel's cache, without a READDIR (see warm).
func (m *metaTest) wantListing(t *testing.T, what, dir string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := m.lsIn(t, dir); !slices.Equal(got, want) {
		t.Errorf("after %s, ls -l %s = %q, want %q", what, dir, got, want)
		return
	}
	m.warm(t, what+", a second ls -l "+dir, func() {
		if got := m.lsIn(t, dir); !slices.Equal(got, want) {
			t.Errorf("after %s, a second ls -l %s = %q, want %q", what, dir, got, want)
		}
	}, "READDIR", "READDIRPLUS")
}

// warm runs list, which the kernel's caches should answer, and fails the
// test if it sends any of ops. The kernel drops its caches under memory
// pressure, and when another process on the machine writes drop_caches,
// so a pass that sent them is tried again, twice.
func (m *metaTest) warm(t *testing.T, what string, list func(), ops ...string) map[string]int {
	t.Helper()
	var sent []string
	for try := range 3 {
		counts := m.fuseOps()
		list()
		got := counts()
		sent = sent[:0]
		for _, op := range ops {
			if got[op] > 0 {
				sent = append(sent, fmt.Sprintf("%d %s", got[op], op))
			}
		}
		if len(sent) == 0 {
			return got
		}
		t.Logf("%s (try %d) sent %s; trying again", what, try+1, strings.Join(sent, ", "))
	}
	t.Errorf("%s sent %s: the kernel did not keep the directory", what, strings.Join(sent, ", "))
	return nil
}

// TestMetadataChangesShowInNextListing changes a directory whose entries
// the kernel keeps, through the mount and behind its back, and lists it
// after each change.
func TestMetadataChangesShowInNextListing(t *testing.T) {
	m := newMetaTest(t, fs.Options{MetadataTTL: time.Minute})
	m.put(t, "a", "b", "sub/x")
	m.wantListing(t, "the start", "", "a", "b", "sub")
	m.wantListing(t, "the start", "sub", "x")

	steps := []struct {
		script   string
		top, sub []string
	}{
		{"echo hi > new", []string{"a", "b", "new", "sub"}, []string{"x"}},
		{"rm a", []string{"b", "new", "sub"}, []string{"x"}},
		{"mv b c", []string{"c", "new", "sub"}, []string{"x"}},
		{"mkdir d", []string{"c", "d", "new", "sub"}, []string{"x"}},
		{"rmdir d", []string{"c", "new", "sub"}, []string{"x"}},
		{"mv sub/x y", []string{"c", "new", "sub", "y"}, nil},
		{"mv y sub/z", []string{"c", "new", "sub"}, []string{"z"}},
		{"mv sub dir", []string{"c", "dir", "new"}, nil},
		{"touch dir/w", []string{"c", "dir", "new"}, nil},
	}
	for _, st := range steps {
		mustShIn(t, 30*time.Second, nil, m.dir, st.script)
		m.wantListing(t, st.script, "", st.top...)
		if slices.Contains(st.top, "sub") {
			m.wantListing(t, st.script, "sub", st.sub...)
		}
	}
	m.wantListing(t, "the renames", "dir", "w", "z")

	// Behind the mount's back: shown once the listing is older than the
	// metadata TTL.
	lists := m.counter(t, rig.OpListObjectsV2)
	m.put(t, "remote")
	m.advance(2 * time.Minute)
	m.wantListing(t, "a put behind the mount's back", "", "c", "dir", "new", "remote")
	if lists.Count() == 0 {
		t.Error("a listing older than the metadata TTL was not fetched again")
	}
	m.remove(t, "remote")
	m.advance(2 * time.Minute)
	m.wantListing(t, "a delete behind the mount's back", "", "c", "dir", "new")

	// A refresh that changes nothing leaves the kernel its entries.
	m.advance(2 * time.Minute)
	ops := m.fuseOps()
	if got := m.lsIn(t, ""); !slices.Equal(got, []string{"c", "dir", "new"}) {
		t.Errorf("ls -l after an unchanged refresh = %q", got)
	}
	if n := ops()["READDIRPLUS"] + ops()["READDIR"]; n > 0 {
		t.Errorf("after a refresh that changed nothing, ls -l read the directory from the mount (%d READDIR)", n)
	}
}

// TestMetadataRewind rewinds a directory open while the kernel keeps its
// entries, after files were created and removed through the mount: the
// rewound listing shows the changes, as rewinddir(3) promises.
func TestMetadataRewind(t *testing.T) {
	m := newMetaTest(t, fs.Options{MetadataTTL: time.Minute})
	m.put(t, "a", "b")
	m.wantListing(t, "the start", "", "a", "b")
	d, err := os.Open(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names := func() []string {
		t.Helper()
		if _, err := d.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		names, err := d.Readdirnames(-1)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		return names
	}
	if got := names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("listed %q, want [a b]", got)
	}
	if err := os.WriteFile(filepath.Join(m.dir, "c"), []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m.dir, "a")); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("after creating c and removing a, the rewound directory lists %q, want [b c]", got)
	}
	d.Close()
	m.wantListing(t, "the rewind", "", "b", "c")
}

// TestMetadataRefreshUpdatesFiles changes a file behind the mount's back:
// once the listing is refreshed, stat and cat show the new version without
// a HEAD.
func TestMetadataRefreshUpdatesFiles(t *testing.T) {
	m := newMetaTest(t, fs.Options{MetadataTTL: time.Minute})
	m.put(t, "f")
	path := filepath.Join(m.dir, "f")
	m.lsIn(t, "")
	if out := mustShIn(t, 30*time.Second, nil, m.dir, "cat f; stat -c %s f"); out != "f1\n" {
		t.Fatalf("cat f; stat -c %%s f = %q, want %q", out, "f1\n")
	}
	putObject(t, m.r, wsBucket, m.prefix+"f", []byte("version two"))
	heads := m.counter(t, rig.OpHeadObject)
	m.advance(2 * time.Minute)
	m.lsIn(t, "")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != int64(len("version two")) {
		t.Errorf("after the listing was refreshed, stat shows %d bytes, want %d", info.Size(), len("version two"))
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "version two" {
		t.Errorf("after the listing was refreshed, cat = %q (%v), want %q", data, err, "version two")
	}
	if n := heads.Count(); n != 0 {
		t.Errorf("stat and cat of a file the listing refreshed sent %d HEADs, want none", n)
	}
}

// TestMetadataNegativeTTL checks that a listing answers for a name it
// lacks only for the negative TTL, and the kernel as long, while names it
// has last the metadata TTL.
func TestMetadataNegativeTTL(t *testing.T) {
	const negativeTTL = time.Second
	m := newMetaTest(t, fs.Options{MetadataTTL: time.Minute, NegativeTTL: negativeTTL})
	m.put(t, "present")
	m.lsIn(t, "")
	m.put(t, "late-a", "late-b")
	heads := m.counter(t, rig.OpHeadObject)

	// The listing is younger than the negative TTL: it answers.
	if _, err := os.Stat(filepath.Join(m.dir, "late-a")); !isErrno(err, syscall.ENOENT) {
		t.Fatalf("stat of a name the fresh listing lacks: %v, want ENOENT", err)
	}
	if n := heads.Count(); n != 0 {
		t.Errorf("a name a fresh listing lacks sent %d HEADs, want none", n)
	}

	// Older than the negative TTL, younger than the metadata TTL: S3 is
	// asked for missing names, while listed names need nothing.
	m.advance(negativeTTL + time.Second)
	ops := m.fuseOps()
	if _, err := os.Stat(filepath.Join(m.dir, "late-b")); err != nil {
		t.Errorf("stat of a name put after the listing, past the negative TTL: %v", err)
	}
	if n := heads.Count(); n != 1 {
		t.Errorf("a name the listing lacks, past the negative TTL, sent %d HEADs, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "present")); err != nil {
		t.Error(err)
	}
	if n := heads.Count(); n != 1 {
		t.Errorf("a listed name sent %d more HEADs, want none", n-1)
	}
	if !slices.Contains(m.lsIn(t, ""), "late-b") {
		t.Error("a name found by a lookup did not join the listing")
	}

	// The kernel keeps the negative entry for late-a for the negative TTL
	// only: after it, late-a is looked up, and found.
	if n := ops()["LOOKUP"]; n != 1 {
		t.Logf("lookups: %d", n)
	}
	deadline := time.Now().Add(10 * negativeTTL)
	for {
		_, err := os.Stat(filepath.Join(m.dir, "late-a"))
		if err == nil {
			break
		}
		if !isErrno(err, syscall.ENOENT) || time.Now().After(deadline) {
			t.Fatalf("stat of late-a %v after the negative TTL: %v", 10*negativeTTL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMetadataCoalesced stats one name, present or missing, from many
// threads at once, and lists one directory from many processes at once:
// each is one request to S3.
func TestMetadataCoalesced(t *testing.T) {
	m := newMetaTest(t, fs.Options{MetadataTTL: time.Minute})
	m.put(t, "present", "other")
	if _, err := os.Stat(m.dir); err != nil {
		t.Fatal(err)
	}
	slow := func(op rig.Op) *rig.FaultHandle {
		h := m.r.Proxy.Inject(rig.Fault{Kind: rig.FaultLatency, Delay: 300 * time.Millisecond,
			Match: rig.MatchAll(rig.MatchOp(op), matchUnder(m.prefix))})
		t.Cleanup(h.Remove)
		return h
	}
	heads := slow(rig.OpHeadObject)
	for _, name := range []string{"present", "missing"} {
		h0 := heads.Count()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				_, err := os.Stat(filepath.Join(m.dir, name))
				if (err == nil) != (name == "present") {
					t.Errorf("stat %s: %v", name, err)
				}
			})
		}
		wg.Wait()
		if n := heads.Count() - h0; n != 1 {
			t.Errorf("16 stats of %s at once sent %d HEADs, want 1", name, n)
		}
	}

	lists := slow(rig.OpListObjectsV2)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := readDirNames(t, m.dir); !slices.Equal(got, []string{"other", "present"}) {
				t.Errorf("ReadDir = %q", got)
			}
		})
	}
	wg.Wait()
	if n := lists.Count(); n != 1 {
		t.Errorf("8 listings of one directory at once sent %d LISTs, want 1", n)
	}
}

// metaFiles is how many files TestMetadataWarmListing lists: 300, or
// $META_FILES.
func metaFiles() int {
	if n, err := strconv.Atoi(os.Getenv("META_FILES")); err == nil {
		return n
	}
	return 300
}
