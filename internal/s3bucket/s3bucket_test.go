package s3bucket_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/bucket/buckettest"
	"github.com/s3mount/s3mount/internal/rig"
	"github.com/s3mount/s3mount/internal/s3bucket"
)

func startRig(t *testing.T) *rig.Rig {
	t.Helper()
	if _, err := rig.FindMinIO(); err != nil {
		if os.Getenv("S3MOUNT_REQUIRE_RIG") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	r, err := rig.Start(context.Background(), rig.Options{Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

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
	r := startRig(t)
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
	r := startRig(t)
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
