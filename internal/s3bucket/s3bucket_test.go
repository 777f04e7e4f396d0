package s3bucket_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3mount/s3mount/creds"
	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/bucket/buckettest"
	"github.com/s3mount/s3mount/internal/rig"
	"github.com/s3mount/s3mount/internal/s3bucket"
)

func newClient(t *testing.T, r *rig.Rig, c rig.Credentials) *s3bucket.Client {
	t.Helper()
	return newClientWith(t, r, c, s3bucket.Options{})
}

// newClientWith returns a client that reaches the rig through its proxy
// with c and the other settings of opts.
func newClientWith(t *testing.T, r *rig.Rig, c rig.Credentials, opts s3bucket.Options) *s3bucket.Client {
	t.Helper()
	opts.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	opts.Region = rig.Region
	opts.Endpoint = r.Proxy.URL
	client, err := s3bucket.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestSuiteOnMinIO runs the shared bucket suite against MinIO, through the
// proxy, with STS credentials limited by the MAAP session policy.
func TestSuiteOnMinIO(t *testing.T) {
	r := rig.StartForTest(t, rig.Options{Lifetime: time.Hour})
	c, err := r.MAAP.Mint(context.Background(), r.Paths, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ws := r.Paths[0]
	b := newClient(t, r, c).Bucket(ws.Bucket)
	t.Run("Writes", func(t *testing.T) { buckettest.RunWrites(t, b, ws.Prefix+"/writes/") })
	buckettest.Run(t, b, ws.Prefix+"/suite/", func(t *testing.T, key string, data []byte) {
		_, err := r.MinIO.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(ws.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestErrorKinds(t *testing.T) {
	r := rig.StartForTest(t, rig.Options{Lifetime: time.Hour})
	ctx := context.Background()
	ws := r.Paths[0]
	good, err := r.MAAP.Mint(ctx, r.Paths, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := newClient(t, r, good).Bucket(ws.Bucket)

	// The session policy denies listing outside the prefix.
	if _, err := b.List(ctx, &bucket.ListRequest{Prefix: "other-user/", Delimiter: "/"}); !errors.Is(err, bucket.ErrPermission) {
		t.Errorf("List outside the prefix: %v, want ErrPermission", err)
	}
	if _, err := b.Stat(ctx, "other-user/secret.txt"); !errors.Is(err, bucket.ErrPermission) {
		t.Errorf("Stat outside the prefix: %v, want ErrPermission", err)
	}

	// Expired credentials, as the proxy enforces them.
	expired, err := r.MAAP.Mint(ctx, r.Paths, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	eb := newClient(t, r, expired).Bucket(ws.Bucket)
	if _, err := eb.List(ctx, &bucket.ListRequest{Prefix: ws.Prefix + "/"}); !errors.Is(err, bucket.ErrCredentials) {
		t.Errorf("List with expired credentials: %v, want ErrCredentials", err)
	}
	if _, err := eb.Stat(ctx, ws.Prefix+"/x"); !errors.Is(err, bucket.ErrCredentials) {
		t.Errorf("Stat with expired credentials: %v, want ErrCredentials", err)
	}
	if _, err := eb.Read(ctx, ws.Prefix+"/x", 0, 10, ""); !errors.Is(err, bucket.ErrCredentials) {
		t.Errorf("Read with expired credentials: %v, want ErrCredentials", err)
	}

	// No credentials at all: the provider fails.
	client, err := s3bucket.New(ctx, s3bucket.Options{
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("endpoint down")
		}),
		Region: rig.Region, Endpoint: r.Proxy.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Bucket(ws.Bucket).Stat(ctx, ws.Prefix+"/x"); !errors.Is(err, bucket.ErrCredentials) {
		t.Errorf("Stat without credentials: %v, want ErrCredentials", err)
	}
}

func TestBadEndpoint(t *testing.T) {
	for _, ep := range []string{"ftp://host", "not a url", "http://"} {
		_, err := s3bucket.New(context.Background(), s3bucket.Options{Endpoint: ep,
			Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
		if err == nil {
			t.Errorf("New(endpoint %q) succeeded", ep)
		}
	}
}

// lyingSource hands out credentials that claim to last an hour; the test
// makes the proxy refuse them as expired, so that only a renewal on
// rejection keeps requests working.
type lyingSource struct {
	r       *rig.Rig
	fetches atomic.Int32
}

func (s *lyingSource) Name() string { return "test" }

func (s *lyingSource) Fetch(ctx context.Context) (creds.Grant, error) {
	s.fetches.Add(1)
	c, err := s.r.MAAP.Mint(ctx, s.r.Paths, time.Hour)
	if err != nil {
		return creds.Grant{}, err
	}
	return creds.Grant{Credentials: aws.Credentials{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		CanExpire: true, Expires: time.Now().Add(time.Hour),
	}}, nil
}

// TestRenewsOnRejection checks that a request refused with ExpiredToken
// (or a HEAD's bare 400) is retried once with new credentials, and that
// the caller sees no error.
func TestRenewsOnRejection(t *testing.T) {
	r := rig.StartForTest(t, rig.Options{Lifetime: time.Hour})
	ctx := context.Background()
	src := &lyingSource{r: r}
	provider := creds.NewProvider(src, creds.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := provider.Start(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := s3bucket.New(ctx, s3bucket.Options{Credentials: provider.Credentials(), Region: rig.Region,
		Endpoint: r.Proxy.URL, Rejected: provider.Rejected})
	if err != nil {
		t.Fatal(err)
	}
	ws := r.Paths[0]
	b := client.Bucket(ws.Bucket)
	data := []byte("survives a rotation")
	for i, op := range []func() error{
		func() error {
			_, err := b.Put(ctx, ws.Prefix+"/rotated.txt", bytes.NewReader(data), int64(len(data)), time.Time{})
			return err
		},
		func() error { _, err := b.Stat(ctx, ws.Prefix+"/rotated.txt"); return err },
		func() error {
			_, err := b.List(ctx, &bucket.ListRequest{Prefix: ws.Prefix + "/", Delimiter: "/"})
			return err
		},
		func() error {
			rd, err := b.Read(ctx, ws.Prefix+"/rotated.txt", 0, -1, "")
			if err == nil {
				rd.Close()
			}
			return err
		},
	} {
		// The proxy now refuses the current key, which the provider still
		// takes for valid.
		current, err := provider.Credentials().Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r.Proxy.SetExpiry(current.AccessKeyID, time.Now().Add(-time.Second))
		before := src.fetches.Load()
		if err := op(); err != nil {
			t.Errorf("operation %d after the key expired: %v", i, err)
		}
		if got := src.fetches.Load() - before; got != 1 {
			t.Errorf("operation %d fetched %d new credentials, want 1", i, got)
		}
	}
	if n := r.Proxy.Rejected(); n < 4 {
		t.Errorf("proxy rejected %d requests, want at least 4 (one per operation)", n)
	}
}

// nearExpirySource hands out credentials declared to expire 30 seconds
// from now.
type nearExpirySource struct {
	r       *rig.Rig
	fetches atomic.Int32
	first   atomic.Value // string: the first access key handed out
}

func (s *nearExpirySource) Name() string { return "test" }

func (s *nearExpirySource) Fetch(ctx context.Context) (creds.Grant, error) {
	s.fetches.Add(1)
	c, err := s.r.MAAP.Mint(ctx, s.r.Paths, time.Hour)
	if err != nil {
		return creds.Grant{}, err
	}
	s.first.CompareAndSwap(nil, c.AccessKeyID)
	return creds.Grant{Credentials: aws.Credentials{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		CanExpire: true, Expires: time.Now().Add(30 * time.Second),
	}}, nil
}

// TestRenewsOnDenialNearExpiry: S3 answers 403 for credentials about to
// expire (as with clock skew); the request is retried with new ones.
func TestRenewsOnDenialNearExpiry(t *testing.T) {
	r := rig.StartForTest(t, rig.Options{Lifetime: time.Hour})
	ctx := context.Background()
	src := &nearExpirySource{r: r}
	provider := creds.NewProvider(src, creds.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := provider.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.Proxy.SetFault(func(w http.ResponseWriter, req *http.Request) bool {
		if rig.AccessKeyID(req) == src.first.Load() {
			rig.WriteS3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied.")
			return true
		}
		return false
	})
	t.Cleanup(func() { r.Proxy.SetFault(nil) })
	client, err := s3bucket.New(ctx, s3bucket.Options{Credentials: provider.Credentials(), Region: rig.Region,
		Endpoint: r.Proxy.URL, Rejected: provider.Rejected, DeniedNearExpiry: provider.DeniedNearExpiry})
	if err != nil {
		t.Fatal(err)
	}
	ws := r.Paths[0]
	if _, err := client.Bucket(ws.Bucket).List(ctx, &bucket.ListRequest{Prefix: ws.Prefix + "/"}); err != nil {
		t.Errorf("List denied near expiry was not retried with new credentials: %v", err)
	}
	if n := src.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
	// A denial of fresh credentials is not retried.
	if _, err := client.Bucket(ws.Bucket).List(ctx, &bucket.ListRequest{Prefix: "other-user/"}); !errors.Is(err, bucket.ErrPermission) {
		t.Errorf("List outside the path: %v, want ErrPermission", err)
	}
}

// faultRig is a rig and a workspace client for the fault tests.
type faultRig struct {
	r     *rig.Rig
	creds rig.Credentials
	ws    rig.AuthorizedPath
}

func startFaultRig(t *testing.T) *faultRig {
	t.Helper()
	r := rig.StartForTest(t, rig.Options{Lifetime: time.Hour})
	c, err := r.MAAP.Mint(context.Background(), r.Paths, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &faultRig{r: r, creds: c, ws: r.Paths[0]}
}

// bucket returns the workspace bucket through a client with opts, and a
// key prefix of its own for t. Faults injected during t are cleared when
// it ends.
func (f *faultRig) bucket(t *testing.T, opts s3bucket.Options) (bucket.Bucket, string) {
	t.Helper()
	t.Cleanup(f.r.Proxy.ClearFaults)
	prefix := f.ws.Prefix + "/faults/" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "/"
	return newClientWith(t, f.r, f.creds, opts).Bucket(f.ws.Bucket), prefix
}

// put stores data as key straight in MinIO, past the proxy and its faults.
func (f *faultRig) put(t *testing.T, key string, data []byte) {
	t.Helper()
	_, err := f.r.MinIO.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(f.ws.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
}

// get reads key straight from MinIO.
func (f *faultRig) get(t *testing.T, key string) []byte {
	t.Helper()
	out, err := f.r.MinIO.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(f.ws.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", f.ws.Bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// randomData returns n pseudo-random bytes.
func randomData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// shortTimeouts are the client settings of the fault tests: a stall is
// found within a second.
var shortTimeouts = s3bucket.Options{HeaderTimeout: time.Second, IdleTimeout: time.Second}

// testCtx bounds an operation under test, so that a hang fails the test
// instead of running into the test binary's timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readAll reads key from offset 0 through b and returns the bytes that
// came and the error that ended them.
func readAll(ctx context.Context, b bucket.Bucket, key string) ([]byte, error) {
	rc, err := b.Read(ctx, key, 0, -1, "")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// wantTransient fails t unless err is an error the filesystem reports as
// EIO: not a cancellation and none of the bucket errors, and caused by a
// timeout. (Go's header timeout matches context.DeadlineExceeded, which
// the filesystem takes for EIO like any other error.)
func wantTransient(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded, want an error", what)
		return
	}
	for _, kind := range []error{context.Canceled, bucket.ErrNotFound, bucket.ErrPermission, bucket.ErrStale, bucket.ErrCredentials} {
		if errors.Is(err, kind) {
			t.Errorf("%s: %v, which matches %v; want an error the filesystem reports as EIO", what, err, kind)
		}
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%s: %v, want a timeout", what, err)
	}
}

// TestStallsTimeOut checks that a store that stops answering, at any point
// of a request, costs an attempt after the timeout and not the request, and
// that one that never answers fails the request within the bound the
// package doc gives.
func TestStallsTimeOut(t *testing.T) {
	f := startFaultRig(t)

	t.Run("HeadersRecover", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		data := []byte("answers on the third attempt")
		f.put(t, prefix+"obj", data)
		for _, tc := range []struct {
			op   rig.Op
			call func(ctx context.Context) error
		}{
			{rig.OpHeadObject, func(ctx context.Context) error {
				info, err := b.Stat(ctx, prefix+"obj")
				if err == nil && info.Size != int64(len(data)) {
					err = fmt.Errorf("size %d, want %d", info.Size, len(data))
				}
				return err
			}},
			{rig.OpGetObject, func(ctx context.Context) error {
				got, err := readAll(ctx, b, prefix+"obj")
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("read %q, want %q", got, data)
				}
				return err
			}},
			{rig.OpPutObject, func(ctx context.Context) error {
				_, err := b.Put(ctx, prefix+"put", bytes.NewReader(data), int64(len(data)), time.Time{})
				if err == nil && !bytes.Equal(f.get(t, prefix+"put"), data) {
					err = errors.New("the stored object differs")
				}
				return err
			}},
			{rig.OpListObjectsV2, func(ctx context.Context) error {
				page, err := b.List(ctx, &bucket.ListRequest{Prefix: prefix, Delimiter: "/"})
				if err == nil && len(page.Objects) == 0 {
					err = errors.New("listed nothing")
				}
				return err
			}},
		} {
			h := f.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStall, Match: rig.MatchOp(tc.op), Times: 2})
			began := time.Now()
			if err := tc.call(testCtx(t)); err != nil {
				t.Errorf("%s stalled twice: %v", tc.op, err)
			}
			if took := time.Since(began); took < 2*time.Second {
				t.Errorf("%s stalled twice took %v, want two 1 s timeouts", tc.op, took)
			}
			if n := h.Count(); n != 2 {
				t.Errorf("%s: fault hit %d requests, want 2", tc.op, n)
			}
			h.Remove()
		}
	})

	t.Run("HeadersGiveUp", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		f.put(t, prefix+"obj", []byte("x"))
		h := f.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStall, Match: rig.MatchOp(rig.OpHeadObject)})
		began := time.Now()
		_, err := b.Stat(testCtx(t), prefix+"obj")
		took := time.Since(began)
		wantTransient(t, "Stat on a store that never answers", err)
		// Five attempts of 1 s, and at most 0.75 s of backoff.
		if took < 5*time.Second || took > 5*time.Second+750*time.Millisecond+5*time.Second {
			t.Errorf("Stat gave up after %v, want about 5 s", took)
		}
		if n := h.Count(); n != 5 {
			t.Errorf("fault hit %d requests, want 5 attempts", n)
		}
	})

	// Copies and completions do their work before they answer: a wait for
	// headers longer than HeaderTimeout is no stall there.
	t.Run("SlowAnswers", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		ctx := testCtx(t)
		data := []byte("copied")
		f.put(t, prefix+"src", data)
		h := f.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStall, Delay: 1500 * time.Millisecond,
			Match: rig.MatchOp(rig.OpCopyObject, rig.OpCompleteMultipartUpload)})
		if _, err := b.Copy(ctx, prefix+"src", prefix+"dst", int64(len(data)), time.Time{}); err != nil {
			t.Errorf("Copy answered after 1.5 s: %v", err)
		}
		id, err := b.CreateMultipart(ctx, prefix+"multi", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		etag, err := b.UploadPart(ctx, prefix+"multi", id, 1, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.CompleteMultipart(ctx, prefix+"multi", id, []bucket.CompletedPart{{Number: 1, ETag: etag}}); err != nil {
			t.Errorf("CompleteMultipart answered after 1.5 s: %v", err)
		}
		if n := h.Count(); n != 2 {
			t.Errorf("fault hit %d requests, want 2: one attempt each", n)
		}
		for _, key := range []string{"dst", "multi"} {
			if got := f.get(t, prefix+key); !bytes.Equal(got, data) {
				t.Errorf("%s: %q, want %q", key, got, data)
			}
		}
	})

	// The store stops reading the request body: only the stall bound on
	// sending can end the attempt, as there is no header timeout here.
	t.Run("Upload", func(t *testing.T) {
		opts := s3bucket.Options{HeaderTimeout: -1, IdleTimeout: time.Second}
		b, prefix := f.bucket(t, opts)
		// Far more than the socket buffers hold (a few MiB on loopback).
		data := randomData(12<<20, 1)
		ctx := testCtx(t)

		h := f.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStall, Match: rig.MatchOp(rig.OpPutObject, rig.OpUploadPart), Times: 1})
		if _, err := b.Put(ctx, prefix+"put", bytes.NewReader(data), int64(len(data)), time.Time{}); err != nil {
			t.Fatalf("Put stalled once: %v", err)
		}
		if !bytes.Equal(f.get(t, prefix+"put"), data) {
			t.Errorf("Put stalled once stored other bytes")
		}
		if n := h.Count(); n != 1 {
			t.Errorf("PutObject: fault hit %d requests, want 1", n)
		}
		h.Remove()

		h = f.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStall, Match: rig.MatchOp(rig.OpUploadPart), Times: 1})
		id, err := b.CreateMultipart(ctx, prefix+"multi", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		etag, err := b.UploadPart(ctx, prefix+"multi", id, 1, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("UploadPart stalled once: %v", err)
		}
		if _, err := b.CompleteMultipart(ctx, prefix+"multi", id, []bucket.CompletedPart{{Number: 1, ETag: etag}}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.get(t, prefix+"multi"), data) {
			t.Errorf("multipart upload with a stalled part stored other bytes")
		}
		if n := h.Count(); n != 1 {
			t.Errorf("UploadPart: fault hit %d requests, want 1", n)
		}
	})

	t.Run("Body", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		data := randomData(100<<10, 2)
		f.put(t, prefix+"obj", data)
		f.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStallBody, Match: rig.MatchOp(rig.OpGetObject), After: 1000, Times: 1})
		began := time.Now()
		got, err := readAll(testCtx(t), b, prefix+"obj")
		took := time.Since(began)
		wantTransient(t, "reading a body that stalls", err)
		if !bytes.Equal(got, data[:1000]) {
			t.Errorf("read %d bytes before the stall, want the object's first 1000", len(got))
		}
		if took < time.Second || took > 10*time.Second {
			t.Errorf("the stalled read failed after %v, want about 1 s", took)
		}
		if got, err := readAll(testCtx(t), b, prefix+"obj"); err != nil || !bytes.Equal(got, data) {
			t.Errorf("read after the stall: %d bytes, %v", len(got), err)
		}
	})

	// A pause shorter than the timeout is no stall.
	t.Run("BodyPause", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		data := randomData(100<<10, 3)
		f.put(t, prefix+"obj", data)
		h := f.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStallBody, Match: rig.MatchOp(rig.OpGetObject), After: 1000, Delay: 300 * time.Millisecond})
		if got, err := readAll(testCtx(t), b, prefix+"obj"); err != nil || !bytes.Equal(got, data) {
			t.Errorf("read with a 300 ms pause: %d bytes, %v", len(got), err)
		}
		if n := h.Count(); n != 1 {
			t.Errorf("fault hit %d requests, want 1", n)
		}
	})

	// The SDK reads a listing's body itself: a stall there is retried.
	t.Run("ListBody", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		f.put(t, prefix+"a", []byte("a"))
		f.put(t, prefix+"b", []byte("b"))
		h := f.r.Proxy.Inject(rig.Fault{Kind: rig.FaultStallBody, Match: rig.MatchOp(rig.OpListObjectsV2), After: 100, Times: 1})
		page, err := b.List(testCtx(t), &bucket.ListRequest{Prefix: prefix})
		if err != nil {
			t.Fatalf("List with a stalled body: %v", err)
		}
		if len(page.Objects) != 2 {
			t.Errorf("List with a stalled body: %d objects, want 2", len(page.Objects))
		}
		if n := h.Count(); n != 1 {
			t.Errorf("fault hit %d requests, want 1", n)
		}
	})
}

// TestTransientFaults checks that dropped and cut responses and S3's
// retryable errors are retried where the SDK reads the response, and that
// a body the caller reads never ends as if whole when it was cut.
func TestTransientFaults(t *testing.T) {
	f := startFaultRig(t)

	for _, tc := range []struct {
		name string
		kind rig.FaultKind
	}{
		{"ResetBody", rig.FaultReset},
		{"ShortBody", rig.FaultShortBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, prefix := f.bucket(t, shortTimeouts)
			data := randomData(100<<10, 4)
			f.put(t, prefix+"obj", data)
			f.r.Proxy.Inject(rig.Fault{Kind: tc.kind, Match: rig.MatchOp(rig.OpGetObject), After: 1000, Times: 1})
			got, err := readAll(testCtx(t), b, prefix+"obj")
			if err == nil {
				t.Fatalf("read of a cut body: %d bytes and no error", len(got))
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("read of a cut body: %v, a cancellation", err)
			}
			if tc.kind == rig.FaultShortBody && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read of a short body: %v, want io.ErrUnexpectedEOF", err)
			}
			if len(got) > 1000 || !bytes.Equal(got, data[:len(got)]) {
				t.Errorf("read of a cut body: %d bytes that are not the object's start", len(got))
			}
			if got, err := readAll(testCtx(t), b, prefix+"obj"); err != nil || !bytes.Equal(got, data) {
				t.Errorf("read after the fault: %d bytes, %v", len(got), err)
			}
			// A ranged read cut short is no different.
			f.r.Proxy.Inject(rig.Fault{Kind: tc.kind, Match: rig.MatchOp(rig.OpGetObject), After: 10, Times: 1})
			rc, err := b.Read(testCtx(t), prefix+"obj", 500, 100, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err = io.ReadAll(rc)
			rc.Close()
			if err == nil || len(got) > 10 || !bytes.Equal(got, data[500:500+len(got)]) {
				t.Errorf("ranged read of a cut body: %d bytes, %v", len(got), err)
			}
		})
	}

	// The SDK reads a listing itself: a cut one is retried.
	t.Run("ListCut", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		f.put(t, prefix+"a", []byte("a"))
		for _, kind := range []rig.FaultKind{rig.FaultReset, rig.FaultShortBody} {
			h := f.r.Proxy.Inject(rig.Fault{Kind: kind, Match: rig.MatchOp(rig.OpListObjectsV2), After: 100, Times: 1})
			page, err := b.List(testCtx(t), &bucket.ListRequest{Prefix: prefix})
			if err != nil || len(page.Objects) != 1 {
				t.Errorf("List cut by %v: %v", kind, err)
			} else if n := h.Count(); n != 1 {
				t.Errorf("%v hit %d requests, want 1", kind, n)
			}
			h.Remove()
		}
	})

	// The store completes the upload but its answer is lost: the retry
	// finds no upload, and the object it made is recognised by its ETag.
	t.Run("CompleteAnswerLost", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		ctx := testCtx(t)
		for i, kind := range []rig.FaultKind{rig.FaultReset, rig.FaultShortBody, rig.FaultStallBody} {
			key := prefix + kind.String()
			id, err := b.CreateMultipart(ctx, key, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			var parts []bucket.CompletedPart
			var want []byte
			for n := int32(1); n <= 2; n++ {
				// Every part but the last must be at least 5 MiB.
				data := randomData(5<<20/int(n), uint64(10*i)+uint64(n))
				want = append(want, data...)
				etag, err := b.UploadPart(ctx, key, id, n, bytes.NewReader(data), int64(len(data)))
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, bucket.CompletedPart{Number: n, ETag: etag})
			}
			h := f.r.Proxy.Inject(rig.Fault{Kind: kind, Match: rig.MatchOp(rig.OpCompleteMultipartUpload), Times: 1})
			info, err := b.CompleteMultipart(ctx, key, id, parts)
			if err != nil {
				t.Errorf("CompleteMultipart whose answer %v lost: %v", kind, err)
			} else if st, err := b.Stat(ctx, key); err != nil || st.ETag != info.ETag {
				t.Errorf("CompleteMultipart gave ETag %s, Stat %s (%v)", info.ETag, st.ETag, err)
			}
			if !bytes.Equal(f.get(t, key), want) {
				t.Errorf("%v: the object is not the parts", kind)
			}
			if n := h.Count(); n != 1 {
				t.Errorf("%v hit %d requests, want 1", kind, n)
			}
			h.Remove()
		}
		// An upload that is truly gone still fails.
		_, err := b.CompleteMultipart(ctx, prefix+"gone", "no-such-upload",
			[]bucket.CompletedPart{{Number: 1, ETag: `"0cc175b9c0f1b6a831c399e269772661"`}})
		if !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("CompleteMultipart of an unknown upload: %v, want ErrNotFound", err)
		}
	})

	t.Run("ErrorsThenSuccess", func(t *testing.T) {
		b, prefix := f.bucket(t, shortTimeouts)
		data := []byte("third time lucky")
		f.put(t, prefix+"obj", data)
		for _, tc := range []struct {
			kind rig.FaultKind
			op   rig.Op
			call func(ctx context.Context) error
		}{
			{rig.FaultSlowDown, rig.OpGetObject, func(ctx context.Context) error {
				got, err := readAll(ctx, b, prefix+"obj")
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("read %q", got)
				}
				return err
			}},
			{rig.FaultInternalError, rig.OpHeadObject, func(ctx context.Context) error { _, err := b.Stat(ctx, prefix+"obj"); return err }},
			{rig.FaultSlowDown, rig.OpPutObject, func(ctx context.Context) error {
				_, err := b.Put(ctx, prefix+"put", bytes.NewReader(data), int64(len(data)), time.Time{})
				return err
			}},
			{rig.FaultInternalError, rig.OpListObjectsV2, func(ctx context.Context) error {
				_, err := b.List(ctx, &bucket.ListRequest{Prefix: prefix})
				return err
			}},
			{rig.FaultInternalError, rig.OpCompleteMultipartUpload, func(ctx context.Context) error {
				id, err := b.CreateMultipart(ctx, prefix+"multi", time.Time{})
				if err != nil {
					return err
				}
				etag, err := b.UploadPart(ctx, prefix+"multi", id, 1, bytes.NewReader(data), int64(len(data)))
				if err != nil {
					return err
				}
				_, err = b.CompleteMultipart(ctx, prefix+"multi", id, []bucket.CompletedPart{{Number: 1, ETag: etag}})
				return err
			}},
		} {
			h := f.r.Proxy.Inject(rig.Fault{Kind: tc.kind, Match: rig.MatchOp(tc.op), Times: 2})
			if err := tc.call(testCtx(t)); err != nil {
				t.Errorf("%s after two %v: %v", tc.op, tc.kind, err)
			}
			if n := h.Count(); n != 2 {
				t.Errorf("%s: %v hit %d requests, want 2", tc.op, tc.kind, n)
			}
			h.Remove()
		}
		if got := f.get(t, prefix+"multi"); !bytes.Equal(got, data) {
			t.Errorf("multipart object: %q, want %q", got, data)
		}
	})
}

// TestListEncodedKeys checks that keys with characters XML cannot carry
// list like any other.
func TestListEncodedKeys(t *testing.T) {
	f := startFaultRig(t)
	b, prefix := f.bucket(t, s3bucket.Options{})
	names := []string{"a\x01b", "ok", "a b", "a+b", "é%~*'()", "tab\tnl\n", "del\x7f"}
	for _, n := range names {
		f.put(t, prefix+n, []byte(n))
	}
	f.put(t, prefix+"sub\x01/x", []byte("x"))
	ctx := testCtx(t)

	// What MinIO sends back: the keys URL-encoded, spaces as '+'.
	raw, err := f.r.MinIO.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(f.ws.Bucket),
		Prefix: aws.String(prefix + "a"), EncodingType: s3types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	var rawKeys []string
	for _, o := range raw.Contents {
		rawKeys = append(rawKeys, strings.TrimPrefix(aws.ToString(o.Key), prefix))
	}
	// In key order: "a\x01b", "a b", "a+b".
	if want := []string{"a%01b", "a+b", "a%2Bb"}; !slices.Equal(rawKeys, want) {
		t.Errorf("MinIO lists %q URL-encoded as %q, want %q", prefix+"a", rawKeys, want)
	}

	page, err := b.List(ctx, &bucket.ListRequest{Prefix: prefix, Delimiter: "/"})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	var keys []string
	for _, o := range page.Objects {
		keys = append(keys, strings.TrimPrefix(o.Key, prefix))
		if o.Size != int64(len(strings.TrimPrefix(o.Key, prefix))) {
			t.Errorf("List: %q has size %d", o.Key, o.Size)
		}
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("List(%q) = %q, want %q", prefix, keys, want)
	}
	if wantP := []string{prefix + "sub\x01/"}; !slices.Equal(page.CommonPrefixes, wantP) {
		t.Errorf("List(%q) prefixes = %q, want %q", prefix, page.CommonPrefixes, wantP)
	}

	// Page by page, without a delimiter.
	var all []string
	req := &bucket.ListRequest{Prefix: prefix, MaxKeys: 3}
	for {
		page, err := b.List(ctx, req)
		if err != nil {
			t.Fatalf("List page: %v", err)
		}
		for _, o := range page.Objects {
			all = append(all, strings.TrimPrefix(o.Key, prefix))
		}
		if page.NextContinuationToken == "" {
			break
		}
		req.ContinuationToken = page.NextContinuationToken
	}
	want = append(want, "sub\x01/x")
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("List(%q) in pages of 3 = %q, want %q", prefix, all, want)
	}
}

// TestListSkipsUndecodableKeys checks that a key that does not decode is
// left out with a warning, and the rest of the listing stands.
func TestListSkipsUndecodableKeys(t *testing.T) {
	f := startFaultRig(t)
	var logs rig.SyncBuffer
	b, prefix := f.bucket(t, s3bucket.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	f.r.Proxy.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if rig.Operation(r) != rig.OpListObjectsV2 {
			return false
		}
		entry := func(key string) string {
			return "<Contents><Key>" + key + "</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>" +
				"<ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>"
		}
		body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>` + f.ws.Bucket + `</Name>` +
			`<Prefix>` + url.QueryEscape(prefix) + `</Prefix><KeyCount>5</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>%2F</Delimiter>` +
			`<IsTruncated>false</IsTruncated><EncodingType>url</EncodingType>` +
			entry(prefix+"bad%zz") + entry(prefix+"good%01") + entry(prefix+"latin1%E9") + entry("elsewhere/x") +
			`<CommonPrefixes><Prefix>` + prefix + `dir%2B/</Prefix></CommonPrefixes>` +
			`<CommonPrefixes><Prefix>` + prefix + `dir%/</Prefix></CommonPrefixes>` +
			`</ListBucketResult>`
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, body)
		return true
	})
	page, err := b.List(testCtx(t), &bucket.ListRequest{Prefix: prefix, Delimiter: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 1 || page.Objects[0].Key != prefix+"good\x01" {
		t.Errorf("List objects = %+v, want only %q", page.Objects, prefix+"good\x01")
	}
	if want := []string{prefix + "dir+/"}; !slices.Equal(page.CommonPrefixes, want) {
		t.Errorf("List prefixes = %q, want %q", page.CommonPrefixes, want)
	}
	for _, key := range []string{"bad%zz", "latin1%E9", "elsewhere/x", "dir%/"} {
		if !strings.Contains(logs.String(), key) {
			t.Errorf("no warning about %q in the log:\n%s", key, logs.String())
		}
	}
}

// TestCABundle checks that AWS_CA_BUNDLE still reaches both HTTP clients
// (the one for copies waits longer for headers), past the timeouts'
// wrapping of the transport.
func TestCABundle(t *testing.T) {
	var copies atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodHead:
			w.Header().Set("Content-Length", "3")
			w.Header().Set("ETag", `"etag"`)
			w.Header().Set("Last-Modified", "Tue, 02 Jan 2024 03:04:05 GMT")
		case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
			copies.Add(1)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<CopyObjectResult><ETag>"etag"</ETag><LastModified>2024-01-02T03:04:05.000Z</LastModified></CopyObjectResult>`)
		default:
			http.Error(w, "unexpected", http.StatusNotImplemented)
		}
	}))
	// The handshakes refused on purpose below are no news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	newBucket := func() bucket.Bucket {
		client, err := s3bucket.New(ctx, s3bucket.Options{
			Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
			Region:      rig.Region, Endpoint: srv.URL, HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return client.Bucket("bucket")
	}

	t.Setenv("AWS_CA_BUNDLE", "")
	if _, err := newBucket().Stat(ctx, "key"); err == nil {
		t.Fatal("Stat over TLS signed by an unknown CA succeeded")
	}

	t.Setenv("AWS_CA_BUNDLE", caFile)
	b := newBucket()
	if info, err := b.Stat(ctx, "key"); err != nil || info.Size != 3 {
		t.Errorf("Stat with AWS_CA_BUNDLE: %+v, %v", info, err)
	}
	if _, err := b.Copy(ctx, "key", "copy", 3, time.Time{}); err != nil {
		t.Errorf("Copy with AWS_CA_BUNDLE: %v", err)
	}
	if n := copies.Load(); n != 1 {
		t.Errorf("server saw %d copies, want 1", n)
	}
}

// TestTLSHandshakeTimeout checks that a server that accepts connections
// but never completes the TLS handshake costs each attempt the handshake
// timeout, and the request its attempts.
func TestTLSHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	const handshake = 300 * time.Millisecond
	client, err := s3bucket.New(context.Background(), s3bucket.Options{
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		Region:      rig.Region, Endpoint: "https://" + ln.Addr().String(), TLSHandshakeTimeout: handshake,
	})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = client.Bucket("bucket").Stat(testCtx(t), "key")
	took := time.Since(began)
	wantTransient(t, "Stat on a server that never shakes hands", err)
	if took < 5*handshake || took > 5*handshake+750*time.Millisecond+5*time.Second {
		t.Errorf("Stat gave up after %v, want about %v", took, 5*handshake)
	}
	mu.Lock()
	if len(conns) != 5 {
		t.Errorf("%d connections, want one for each of 5 attempts", len(conns))
	}
	mu.Unlock()
}
