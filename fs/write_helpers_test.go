package fs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3mount/s3mount/internal/rig"
)

// Buckets of the shared rig's read-write paths.
const (
	wsBucket     = "maap-ops-workspace"
	sharedBucket = "shared-project-bucket"
)

// writeTest is one test's own directories in the shared rig: its prefix in
// the workspace and in the shared team path, both emptied before the test
// and after it, so that tests never see each other's files and leave the
// seeded data as they found it.
type writeTest struct {
	r *rig.Rig
	m *testMount
	// prefix is the test's key prefix in wsBucket ("jdoe/<name>/"), and dir
	// the same directory in the mount. The directory does not exist until
	// the test creates it.
	prefix, dir string
	// sharedPrefix and sharedDir are the same for sharedBucket
	// ("team-data/<name>/").
	sharedPrefix, sharedDir string
}

// newWriteTest mounts the shared rig for t and gives it its own prefixes.
func newWriteTest(t *testing.T) *writeTest {
	t.Helper()
	return newWriteTestWith(t, func(r *rig.Rig) *testMount { return mountRig(t, r, time.Minute) })
}

// newWriteTestWith is newWriteTest with a mount of the shared rig that
// mount makes.
func newWriteTestWith(t *testing.T, mount func(*rig.Rig) *testMount) *writeTest {
	t.Helper()
	r := getSharedRig(t)
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	w := &writeTest{r: r, prefix: "jdoe/" + name + "/", sharedPrefix: "team-data/" + name + "/"}
	for _, bp := range [][2]string{{wsBucket, w.prefix}, {sharedBucket, w.sharedPrefix}} {
		clearPrefix(t, r, bp[0], bp[1])
		t.Cleanup(func() { clearPrefix(t, r, bp[0], bp[1]) })
	}
	// Registered after the clean-ups, so it unmounts before they run.
	w.m = mount(r)
	w.dir = filepath.Join(w.m.dir, wsBucket, strings.TrimSuffix(w.prefix, "/"))
	w.sharedDir = filepath.Join(w.m.dir, sharedBucket, strings.TrimSuffix(w.sharedPrefix, "/"))
	return w
}

// object returns the content of an object read through the SDK, and
// whether it exists.
func (w *writeTest) object(t *testing.T, bucketName, key string) ([]byte, bool) {
	t.Helper()
	return s3Object(t, w.r, bucketName, key)
}

// wantObject fails the test unless key holds exactly want in the bucket.
func (w *writeTest) wantObject(t *testing.T, bucketName, key string, want []byte) {
	t.Helper()
	got, ok := w.object(t, bucketName, key)
	switch {
	case !ok:
		t.Errorf("s3://%s/%s does not exist, want %d bytes", bucketName, key, len(want))
	case !bytesEqual(got, want):
		t.Errorf("s3://%s/%s = %s, want %s", bucketName, key, describe(got), describe(want))
	}
}

// wantNoObject fails the test if key exists in the bucket.
func (w *writeTest) wantNoObject(t *testing.T, bucketName, key string) {
	t.Helper()
	if got, ok := w.object(t, bucketName, key); ok {
		t.Errorf("s3://%s/%s exists (%s), want no such object", bucketName, key, describe(got))
	}
}

// keys lists the keys under prefix in the bucket, relative to it, sorted.
func (w *writeTest) keys(t *testing.T, bucketName, prefix string) []string {
	t.Helper()
	return s3Keys(t, w.r, bucketName, prefix)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// describe summarizes content for a failure message: short content is
// quoted, long content shown by size and hash.
func describe(b []byte) string {
	if len(b) <= 64 {
		return strconv.Quote(string(b))
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("<%d bytes, sha256 %x…>", len(b), sum[:8])
}

// isNotFound reports whether an SDK error says the object does not exist.
func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// s3Object reads an object through the SDK, bypassing the mount.
func s3Object(t testing.TB, r *rig.Rig, bucketName, key string) ([]byte, bool) {
	t.Helper()
	out, err := r.MinIO.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key)})
	if isNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("GetObject s3://%s/%s: %v", bucketName, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("reading s3://%s/%s: %v", bucketName, key, err)
	}
	return data, true
}

// s3Head returns an object's metadata through the SDK, and whether it
// exists.
func s3Head(t testing.TB, r *rig.Rig, bucketName, key string) (*s3.HeadObjectOutput, bool) {
	t.Helper()
	out, err := r.MinIO.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key)})
	if isNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("HeadObject s3://%s/%s: %v", bucketName, key, err)
	}
	return out, true
}

// s3ObjectSHA256 hashes an object as the SDK streams it, without holding it
// in memory.
func s3ObjectSHA256(t testing.TB, r *rig.Rig, bucketName, key string) (string, int64) {
	t.Helper()
	out, err := r.MinIO.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject s3://%s/%s: %v", bucketName, key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		t.Fatalf("reading s3://%s/%s: %v", bucketName, key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// fileSHA256 hashes a local file.
func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// s3Keys lists every key under prefix through the SDK, relative to prefix,
// sorted.
func s3Keys(t testing.TB, r *rig.Rig, bucketName, prefix string) []string {
	t.Helper()
	keys := []string{}
	// URL-encoded, so that keys with control characters list too.
	p := s3.NewListObjectsV2Paginator(r.MinIO.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucketName), Prefix: aws.String(prefix),
		EncodingType: types.EncodingTypeUrl})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("listing s3://%s/%s: %v", bucketName, prefix, err)
		}
		for _, o := range page.Contents {
			key, err := url.QueryUnescape(aws.ToString(o.Key))
			if err != nil {
				t.Fatalf("listing s3://%s/%s: key %q: %v", bucketName, prefix, aws.ToString(o.Key), err)
			}
			keys = append(keys, strings.TrimPrefix(key, prefix))
		}
	}
	slices.Sort(keys)
	return keys
}

// s3Uploads lists the multipart uploads in progress under prefix, as
// "key uploadID".
func s3Uploads(t testing.TB, r *rig.Rig, bucketName, prefix string) []string {
	t.Helper()
	out, err := r.MinIO.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucketName), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("ListMultipartUploads s3://%s/%s: %v", bucketName, prefix, err)
	}
	var uploads []string
	for _, u := range out.Uploads {
		uploads = append(uploads, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	return uploads
}

// clearPrefix removes every object and multipart upload under prefix,
// through the SDK.
func clearPrefix(t testing.TB, r *rig.Rig, bucketName, prefix string) {
	t.Helper()
	ctx := context.Background()
	c := r.MinIO.Client()
	for _, k := range s3Keys(t, r, bucketName, prefix) {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucketName), Key: aws.String(prefix + k)}); err != nil {
			t.Errorf("cleaning up s3://%s/%s%s: %v", bucketName, prefix, k, err)
		}
	}
	for _, u := range s3Uploads(t, r, bucketName, prefix) {
		key, id, _ := strings.Cut(u, " ")
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucketName), Key: aws.String(key), UploadId: aws.String(id)}); err != nil {
			t.Errorf("cleaning up upload %s of s3://%s/%s: %v", id, bucketName, key, err)
		}
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeRandomFile writes size pseudo-random bytes, from seed, to path.
func writeRandomFile(t testing.TB, path string, size int64, seed byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{seed, 0x5e, 0xed}), size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// randomBytes returns size pseudo-random bytes from seed.
func randomBytes(size int, seed byte) []byte {
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{seed, 0xb7, 0xe5}).Read(b)
	return b
}
