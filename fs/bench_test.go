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

	"github.com/s3mount/s3mount/fs"
	"github.com/s3mount/s3mount/internal/rig"
)

// BenchmarkRead compares reading one object through the mount with reading
// it through the SDK directly, over the same proxy and MinIO, in one run, so
// that the ratios mean something on a noisy machine.
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
	// The readahead sweep shows what the kernel's readahead does to a
	// sequential read; the mount sets 1 MiB by default.
	for _, ra := range []int{128 << 10, 1 << 20, 4 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("mount-sequential-readahead-%dKiB", ra>>10), func(b *testing.B) {
			if err := fs.SetReadAhead(filepath.Dir(filepath.Dir(filepath.Dir(path))), ra); err != nil {
				b.Skip(err)
			}
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
	}
	b.Run("mount-random-4KiB", func(b *testing.B) {
		if err := fs.SetReadAhead(filepath.Dir(filepath.Dir(filepath.Dir(path))), 1<<20); err != nil {
			b.Fatal(err)
		}
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
