package fs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/fs"
	"github.com/s3mount/s3mount/internal/rig"
)

// benchListObjects is how many objects BenchmarkListing lists.
const benchListObjects = 10000

// BenchmarkListing compares `ls -l` of a directory of 10,000 objects
// through the mount, on a fresh mount (cold) and again on the same mount
// (warm), with a paginated ListObjectsV2 of the same prefix through the SDK,
// over the same proxy and MinIO, and with `ls -l` of as many files on a
// local disk, in one run. It reports the LIST and HEAD requests each
// `ls -l` sent, and medians.
//
//	go test -run '^$' -bench BenchmarkListing -benchtime 11x ./fs
func BenchmarkListing(b *testing.B) {
	r := getSharedRig(b)
	prefix := "jdoe/bench-listing/"
	seedListing(b, r, wsBucket, prefix, benchListObjects)
	b.Cleanup(func() { clearPrefix(b, r, wsBucket, prefix) })
	lists := r.Proxy.Inject(rig.Fault{Kind: rig.FaultLatency, Match: rig.MatchAll(rig.MatchOp(rig.OpListObjectsV2), matchUnder(prefix))})
	heads := r.Proxy.Inject(rig.Fault{Kind: rig.FaultLatency, Match: rig.MatchAll(rig.MatchOp(rig.OpHeadObject), matchUnder(prefix))})
	b.Cleanup(func() { lists.Remove(); heads.Remove() })
	report := func(b *testing.B, lists0, heads0 int) {
		b.ReportMetric(float64(lists.Count()-lists0)/float64(b.N), "lists/op")
		b.ReportMetric(float64(heads.Count()-heads0)/float64(b.N), "heads/op")
	}

	creds, err := r.MAAP.Mint(context.Background(), r.Paths, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	client := rig.NewS3Client(r.Proxy.URL, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	sdkList := func(b *testing.B) time.Duration {
		began := time.Now()
		n := 0
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(wsBucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			n += len(page.Contents) + len(page.CommonPrefixes)
		}
		if n != benchListObjects {
			b.Fatalf("listed %d objects, want %d", n, benchListObjects)
		}
		return time.Since(began)
	}
	sdkList(b) // warm MinIO up

	b.Run("sdk-list", func(b *testing.B) {
		l0, h0 := lists.Count(), heads.Count()
		for b.Loop() {
			sdkList(b)
		}
		report(b, l0, h0)
	})
	// Each cold `ls -l` runs right after a raw listing of the same prefix,
	// so that the two are compared under the same load; the medians of
	// both and of their ratio are reported, which a noisy machine moves
	// less than the means.
	b.Run("ls-l-cold", func(b *testing.B) {
		var sdk, cold, ratios []float64
		var nLists, nHeads int
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dir, stop := benchMount(b, r)
			s := sdkList(b)
			l0, h0 := lists.Count(), heads.Count()
			began := time.Now()
			b.StartTimer()
			lsL(b, filepath.Join(dir, wsBucket, prefix))
			b.StopTimer()
			c := time.Since(began)
			nLists, nHeads = nLists+lists.Count()-l0, nHeads+heads.Count()-h0
			sdk, cold, ratios = append(sdk, float64(s)), append(cold, float64(c)), append(ratios, float64(c)/float64(s))
			stop()
			b.StartTimer()
		}
		b.ReportMetric(float64(nLists)/float64(b.N), "lists/op")
		b.ReportMetric(float64(nHeads)/float64(b.N), "heads/op")
		b.ReportMetric(median(sdk), "sdk-list-median-ns")
		b.ReportMetric(median(cold), "cold-median-ns")
		b.ReportMetric(median(ratios), "cold/sdk-median")
	})
	// The floor: `ls -l` of as many empty files on a local disk.
	b.Run("ls-l-local", func(b *testing.B) {
		dir := b.TempDir()
		for i := range benchListObjects {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%05d.dat", i)), nil, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		var local []float64
		for b.Loop() {
			began := time.Now()
			lsL(b, dir)
			local = append(local, float64(time.Since(began)))
		}
		b.ReportMetric(median(local), "local-median-ns")
	})
	b.Run("ls-l-warm", func(b *testing.B) {
		dir, stop := benchMount(b, r)
		defer stop()
		path := filepath.Join(dir, wsBucket, prefix)
		lsL(b, path)
		var warm []float64
		l0, h0 := lists.Count(), heads.Count()
		for b.Loop() {
			began := time.Now()
			lsL(b, path)
			warm = append(warm, float64(time.Since(began)))
		}
		report(b, l0, h0)
		b.ReportMetric(median(warm), "warm-median-ns")
	})
}

// median returns the median of xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// lsL runs `ls -l` on dir and checks that it listed every object.
func lsL(b *testing.B, dir string) {
	b.Helper()
	out, err := exec.Command("ls", "-l", dir).Output()
	if err != nil {
		b.Fatalf("ls -l %s: %v", dir, err)
	}
	if n := strings.Count(string(out), "\n") - 1; n != benchListObjects {
		b.Fatalf("ls -l listed %d files, want %d", n, benchListObjects)
	}
}

// benchMount mounts the rig's paths on a fresh filesystem, and returns the
// mount and a function that unmounts it.
func benchMount(b *testing.B, r *rig.Rig) (string, func()) {
	b.Helper()
	fsys, _ := newRigFS(b, r, rigFSOptions{TTL: time.Minute})
	dir, err := os.MkdirTemp("", "s3mount-bench-")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := fsys.Mount(dir, fs.MountOptions{})
	if err != nil {
		os.Remove(dir)
		b.Fatal(err)
	}
	return dir, func() {
		for i := 0; srv.Unmount() != nil; i++ {
			if i == 50 {
				b.Fatalf("unmount %s failed", dir)
			}
			time.Sleep(100 * time.Millisecond)
		}
		srv.Wait()
		fsys.Close()
		os.Remove(dir)
	}
}

// seedListing puts n small objects under prefix through MinIO directly,
// unless they are there already.
func seedListing(b *testing.B, r *rig.Rig, bucketName, prefix string, n int) {
	b.Helper()
	if len(s3Keys(b, r, bucketName, prefix)) == n {
		return
	}
	c := r.MinIO.Client()
	work := make(chan int)
	var wg sync.WaitGroup
	var failed sync.Once
	for range 32 {
		wg.Go(func() {
			for i := range work {
				key := fmt.Sprintf("%sfile-%05d.dat", prefix, i)
				if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key),
					Body: strings.NewReader(key)}); err != nil {
					failed.Do(func() { b.Errorf("PutObject %s: %v", key, err) })
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}
