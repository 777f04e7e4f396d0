package reader_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/internal/reader"
	"github.com/s3mount/s3mount/internal/rig"
	"github.com/s3mount/s3mount/internal/s3bucket"
)

// TestFaultsThroughMinIO reads objects from a real MinIO, through the rig's
// proxy, while it injects faults into the GETs: connection resets, bodies
// that end early, 503 SlowDown, 500s, and bodies that stall. Every read
// must come back byte-exact, sequential or random, one reader or several.
func TestFaultsThroughMinIO(t *testing.T) {
	r := rig.StartForTest(t, rig.Options{Lifetime: time.Hour})
	c, err := r.MAAP.Mint(context.Background(), r.Paths, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client, err := s3bucket.New(context.Background(), s3bucket.Options{
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		Region:      rig.Region, Endpoint: r.Proxy.URL,
		HeaderTimeout: time.Second, IdleTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ws := r.Paths[0]
	b := client.Bucket(ws.Bucket)
	var key [32]byte
	data := make([]byte, 24<<20+777)
	_, _ = rand.NewChaCha8(key).Read(data)
	objKey := ws.Prefix + "/reader/faults.bin"
	if _, err := r.MinIO.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(ws.Bucket), Key: aws.String(objKey), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	info, err := b.Stat(context.Background(), objKey)
	if err != nil {
		t.Fatal(err)
	}
	obj := reader.Object{Bucket: b, Key: objKey, ETag: info.ETag, Size: info.Size}
	gets := rig.MatchOp(rig.OpGetObject)

	for _, tc := range []struct {
		name  string
		fault rig.Fault
	}{
		{"reset", rig.Fault{Kind: rig.FaultReset, Match: gets, Rate: 0.1, Seed: 1, After: 200 << 10}},
		{"short body", rig.Fault{Kind: rig.FaultShortBody, Match: gets, Rate: 0.1, Seed: 2, After: 300 << 10}},
		{"slow down", rig.Fault{Kind: rig.FaultSlowDown, Match: gets, Rate: 0.1, Seed: 3}},
		{"internal error", rig.Fault{Kind: rig.FaultInternalError, Match: gets, Rate: 0.1, Seed: 4}},
		{"stalled body", rig.Fault{Kind: rig.FaultStallBody, Match: gets, Times: 2, After: 100 << 10, Delay: 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := r.Proxy.Inject(tc.fault)
			defer h.Remove()
			e := reader.New(reader.Config{Budget: reader.NewBudget(64 << 20)})
			defer e.Close()

			// Two sequential readers at once, in 1 MiB reads.
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					rd := e.NewReader()
					defer rd.Close()
					got := make([]byte, 0, len(data))
					buf := make([]byte, 1<<20)
					for off := int64(0); ; {
						k, err := rd.ReadAt(context.Background(), obj, buf, off)
						got = append(got, buf[:k]...)
						off += int64(k)
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Errorf("sequential read at %d: %v", off, err)
							return
						}
					}
					if !bytes.Equal(got, data) {
						t.Error("a sequential read differs from the object")
					}
				})
			}
			wg.Wait()

			// Random reads of 64 KiB.
			rd := e.NewReader()
			defer rd.Close()
			rng := rand.New(rand.NewPCG(9, 9))
			buf := make([]byte, 64<<10)
			for range 40 {
				off := rng.Int64N(int64(len(data)) - int64(len(buf)))
				if _, err := rd.ReadAt(context.Background(), obj, buf, off); err != nil {
					t.Fatalf("random read at %d: %v", off, err)
				}
				if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
					t.Fatalf("random read at %d differs", off)
				}
			}
			if h.Count() == 0 {
				t.Error("the fault hit no request: nothing was tested")
			}
		})
	}
}
