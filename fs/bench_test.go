package fs_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/internal/rig"
)

// BenchmarkRead compares reading one object through a mount in this process
// with reading it through the SDK directly, over the same proxy and MinIO,
// in one run, so that the ratios mean something on a noisy machine.
//
// The benchmark harness is `make bench` (cmd/s3mount-bench), which mounts
// the s3mount binary as a separate process and compares it with the peers.
// This benchmark is for profiling the FUSE layer and what lies beneath it,
// since the mount runs in the test process:
//
//	S3MOUNT_REQUIRE_RIG=1 go test -run '^$' -bench BenchmarkRead -benchtime 5x -cpuprofile cpu.out ./fs
//	go tool pprof -top fs.test cpu.out
func BenchmarkRead(b *testing.B) {
	size := int64(256 << 20)
	r := getSharedRig(b)
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	const bucketName, key = "maap-ops-workspace", "jdoe/bench/object.bin"
	putObject(b, r, bucketName, key, data)
	creds, err := r.MAAP.Mint(context.Background(), r.Paths, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	client := rig.NewS3Client(r.Proxy.URL, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	path := filepath.Join(mountRig(b, r, time.Minute).dir, bucketName, key)

	b.Run("sdk-single-get", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key)})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, out.Body)
			out.Body.Close()
		}
	})
	b.Run("sdk-parallel-8MiB-parts", func(b *testing.B) {
		b.SetBytes(size)
		const part = 8 << 20
		for b.Loop() {
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			for off := int64(0); off < size; off += part {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					rng := fmt.Sprintf("bytes=%d-%d", off, min(off+part, size)-1)
					out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key), Range: &rng})
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, out.Body)
					out.Body.Close()
				})
			}
			wg.Wait()
		}
	})
	b.Run("mount-sequential", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			dropPageCache(f)
			for {
				if _, err := f.Read(buf); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			f.Close()
		}
	})
	b.Run("mount-random-4KiB", func(b *testing.B) {
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 4096)
		rng := rand.New(rand.NewPCG(1, 1))
		b.SetBytes(4096)
		for b.Loop() {
			if _, err := f.ReadAt(buf, rng.Int64N(size-4096)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sdk-random-4KiB", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 1))
		b.SetBytes(4096)
		for b.Loop() {
			off := rng.Int64N(size - 4096)
			r := fmt.Sprintf("bytes=%d-%d", off, off+4095)
			out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key), Range: &r})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, out.Body)
			out.Body.Close()
		}
	})
}

// dropPageCache asks the kernel to forget the file's cached pages, so a
// read measures the filesystem and not memory.
func dropPageCache(f *os.File) {
	const fadvDontNeed = 4
	syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0)
}
