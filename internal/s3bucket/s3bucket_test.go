package s3bucket_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/creds"
	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/bucket/buckettest"
	"github.com/s3mount/s3mount/internal/rig"
	"github.com/s3mount/s3mount/internal/s3bucket"
)

func newClient(t *testing.T, r *rig.Rig, c rig.Credentials) *s3bucket.Client {
	t.Helper()
	client, err := s3bucket.New(context.Background(), s3bucket.Options{
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		Region:      rig.Region,
		Endpoint:    r.Proxy.URL,
	})
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

// lyingSource hands out credentials that the proxy expires after a second
// while claiming they last an hour, so that only a renewal on rejection
// keeps requests working.
type lyingSource struct {
	r       *rig.Rig
	fetches atomic.Int32
}

func (s *lyingSource) Name() string { return "test" }

func (s *lyingSource) Fetch(ctx context.Context) (creds.Grant, error) {
	s.fetches.Add(1)
	c, err := s.r.MAAP.Mint(ctx, s.r.Paths, time.Second)
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
		time.Sleep(1100 * time.Millisecond) // the current key is now expired at the proxy
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
