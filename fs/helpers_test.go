package fs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/creds"
	"github.com/s3mount/s3mount/fs"
	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/rig"
	"github.com/s3mount/s3mount/internal/s3bucket"
)

// sharedRig is one seeded rig for the tests that do not change its
// settings. TestMain stops it.
var sharedRig struct {
	once sync.Once
	rig  *rig.Rig
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedRig.rig != nil {
		sharedRig.rig.Close()
	}
	os.Exit(code)
}

// getSharedRig returns the shared rig, starting it on first use.
func getSharedRig(t testing.TB) *rig.Rig {
	t.Helper()
	rig.RequireMinIO(t)
	sharedRig.once.Do(func() {
		sharedRig.rig, sharedRig.err = rig.Start(context.Background(), rig.Options{Seed: true})
	})
	if sharedRig.err != nil {
		t.Fatal(sharedRig.err)
	}
	return sharedRig.rig
}

func newTestLogger(t testing.TB) (*slog.Logger, *rig.SyncBuffer) {
	logs := &rig.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mount log:\n%s", logs.String())
		}
	})
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs
}

// testMount is a filesystem mounted for one test.
type testMount struct {
	dir      string
	provider *creds.Provider
	logs     *rig.SyncBuffer
}

// mountFS mounts fsOpts at a temporary directory and unmounts it at cleanup,
// even if the test fails.
func mountFS(t testing.TB, fsOpts fs.Options) string {
	t.Helper()
	dir, _ := mountFSWith(t, fsOpts)
	return dir
}

// mountFSWith is mountFS that also returns the filesystem.
func mountFSWith(t testing.TB, fsOpts fs.Options) (string, *fs.FS) {
	t.Helper()
	if fsOpts.StagingDir == "" {
		fsOpts.StagingDir = t.TempDir()
	}
	fsys, err := fs.New(fsOpts)
	if err != nil {
		t.Fatal(err)
	}
	return mountFSOf(t, fsys), fsys
}

// mountFSOf mounts fsys at a temporary directory and unmounts it at
// cleanup, even if the test fails.
func mountFSOf(t testing.TB, fsys *fs.FS) string {
	t.Helper()
	dir := t.TempDir()
	srv, err := fsys.Mount(dir, fs.MountOptions{Debug: testing.Verbose() && os.Getenv("S3MOUNT_DEBUG_FUSE") != ""})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			err := srv.Unmount()
			if err == nil {
				break
			}
			if i == 50 {
				t.Errorf("unmount %s: %v; detaching it", dir, err)
				syscall.Unmount(dir, syscall.MNT_DETACH)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		srv.Wait()
		if err := fsys.Close(); err != nil {
			t.Errorf("removing the staging directory: %v", err)
		}
	})
	return dir
}

// rigFSOptions are the settings of a filesystem over the rig.
type rigFSOptions struct {
	// TTL is fs.Options.MetadataTTL.
	TTL time.Duration
	// MemoryLimit is fs.Options.MemoryLimit; zero keeps the default.
	MemoryLimit int64
	// S3, if set, adjusts the S3 client's options (timeouts, say).
	S3 func(*s3bucket.Options)
	// StagingDir is fs.Options.StagingDir; default a new temporary one.
	StagingDir string
}

// newRigFS makes a filesystem of the rig's authorized paths through its
// MAAP emulator and proxy, as s3mount does, with a renewing provider that
// runs until the test ends and keeps the paths up to date.
func newRigFS(t testing.TB, r *rig.Rig, o rigFSOptions) (*fs.FS, *testMount) {
	t.Helper()
	logger, logs := newTestLogger(t)
	src, err := creds.NewMAAP(creds.MAAPOptions{URL: r.MAAP.URL + rig.MAAPCredentialsPath, Ticket: r.Ticket})
	if err != nil {
		t.Fatal(err)
	}
	provider := creds.NewProvider(src, creds.Options{Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := provider.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go provider.Run(ctx)
	s3opts := s3bucket.Options{Credentials: provider.Credentials(), Region: rig.Region, Endpoint: r.Proxy.URL,
		Rejected: provider.Rejected, DeniedNearExpiry: provider.DeniedNearExpiry, Logger: logger}
	if o.S3 != nil {
		o.S3(&s3opts)
	}
	client, err := s3bucket.New(ctx, s3opts)
	if err != nil {
		t.Fatal(err)
	}
	toRoots := func(paths []creds.Path) []fs.Root {
		var roots []fs.Root
		for _, p := range paths {
			roots = append(roots, fs.Root{Bucket: p.Bucket, Prefix: p.Prefix, ReadOnly: p.Access != creds.ReadWrite})
		}
		return roots
	}
	if o.StagingDir == "" {
		o.StagingDir = t.TempDir()
	}
	fsys, err := fs.New(fs.Options{Roots: toRoots(provider.Paths()), Bucket: client.Bucket, MetadataTTL: o.TTL, Logger: logger,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), StagingDir: o.StagingDir, MemoryLimit: o.MemoryLimit})
	if err != nil {
		t.Fatal(err)
	}
	provider.OnPaths(func(paths []creds.Path) { fsys.SetRoots(toRoots(paths)) })
	return fsys, &testMount{provider: provider, logs: logs}
}

// mountRig mounts the rig's authorized paths through its MAAP emulator and
// proxy, as s3mount does.
func mountRig(t testing.TB, r *rig.Rig, ttl time.Duration) *testMount {
	t.Helper()
	return mountRigWith(t, r, rigFSOptions{TTL: ttl})
}

// mountRigWith is mountRig with more settings.
func mountRigWith(t testing.TB, r *rig.Rig, o rigFSOptions) *testMount {
	t.Helper()
	fsys, m := newRigFS(t, r, o)
	m.dir = mountFSOf(t, fsys)
	return m
}

// mountMemory mounts in-memory buckets, one root per bucket.
func mountMemory(t testing.TB, roots []fs.Root, buckets ...*bucket.Memory) (string, *rig.SyncBuffer) {
	t.Helper()
	logger, logs := newTestLogger(t)
	byName := map[string]bucket.Bucket{}
	for _, b := range buckets {
		byName[b.Name()] = b
	}
	dir := mountFS(t, fs.Options{Roots: roots, Bucket: func(name string) bucket.Bucket { return byName[name] }, Logger: logger})
	return dir, logs
}

// putObject uploads through MinIO directly, bypassing the mount.
func putObject(t testing.TB, r *rig.Rig, bucketName, key string, data []byte) {
	t.Helper()
	_, err := r.MinIO.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucketName), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("PutObject s3://%s/%s: %v", bucketName, key, err)
	}
}

// getObject downloads through MinIO directly, bypassing the mount.
func getObject(t testing.TB, r *rig.Rig, bucketName, key string) []byte {
	t.Helper()
	out, err := r.MinIO.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject s3://%s/%s: %v", bucketName, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// bucketState lists every key of a bucket with its ETag, through MinIO
// directly.
func bucketState(t testing.TB, r *rig.Rig, bucketName string) []string {
	t.Helper()
	var state []string
	p := s3.NewListObjectsV2Paginator(r.MinIO.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucketName)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			state = append(state, aws.ToString(o.Key)+" "+aws.ToString(o.ETag))
		}
	}
	sort.Strings(state)
	return state
}

// readDirNames lists dir through the mount, without "." and "..".
func readDirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir(%q): %v", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	return names
}

// isErrno reports whether err carries errno.
func isErrno(err error, errno syscall.Errno) bool {
	return errors.Is(err, errno)
}
