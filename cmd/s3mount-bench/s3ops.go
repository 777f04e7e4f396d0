package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3mount/s3mount/internal/rig"
)

// newClient returns an S3 client for endpoint configured like
// rig.NewS3Client, with an HTTP transport that keeps enough idle
// connections for 64 parallel requests and never goes through $HTTP_PROXY.
func newClient(endpoint, accessKeyID, secretAccessKey, sessionToken string) *s3.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.Proxy = nil
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 64
	})
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     rig.Region,
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, sessionToken),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 hc,
		DisableLogOutputChecksumValidationSkipped: true,
	})
}

// parallel runs f(0..n-1) on at most width goroutines and returns the first
// error; after an error it starts no new calls.
func parallel(ctx context.Context, n, width int, f func(ctx context.Context, i int) error) error {
	outer := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex // mu guards first.
		first error
		wg    sync.WaitGroup
	)
	next := make(chan int)
	for range min(width, n) {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return outer.Err()
}

// part is one ranged piece of one object.
type part struct {
	key      string
	off, len int64
}

// splitParts cuts each of keys, all of size size, into parts of partSize.
func splitParts(keys []string, size, partSize int64) []part {
	var ps []part
	for _, k := range keys {
		for off := int64(0); off < size; off += partSize {
			ps = append(ps, part{k, off, min(partSize, size-off)})
		}
	}
	return ps
}

// parallelGet downloads keys, each of size size, into memory with ranged
// GETs of partSize, width of them at a time: the SDK's ceiling for reads.
func parallelGet(ctx context.Context, c *s3.Client, bucket string, keys []string, size, partSize int64, width int) error {
	ps := splitParts(keys, size, partSize)
	bufs := make(chan []byte, width)
	for range width {
		bufs <- make([]byte, partSize)
	}
	return parallel(ctx, len(ps), width, func(ctx context.Context, i int) error {
		p := ps[i]
		buf := <-bufs
		defer func() { bufs <- buf }()
		rng := fmt.Sprintf("bytes=%d-%d", p.off, p.off+p.len-1)
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &p.key, Range: &rng})
		if err != nil {
			return fmt.Errorf("GET %s %s: %w", p.key, rng, err)
		}
		defer out.Body.Close()
		if _, err := io.ReadFull(out.Body, buf[:p.len]); err != nil {
			return fmt.Errorf("GET %s %s: %w", p.key, rng, err)
		}
		return nil
	})
}

// multipartUpload uploads size bytes to key as a multipart upload of
// partSize parts, width at a time; fill writes the bytes at offset off into
// buf. It is the SDK's ceiling for writes, and seeds large objects.
func multipartUpload(ctx context.Context, c *s3.Client, bucket, key string, size, partSize int64, width int, fill func(off int64, buf []byte)) (err error) {
	mu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return fmt.Errorf("create multipart upload %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			_, _ = c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId})
		}
	}()
	ps := splitParts([]string{key}, size, partSize)
	done := make([]types.CompletedPart, len(ps))
	bufs := make(chan []byte, width)
	for range width {
		bufs <- make([]byte, partSize)
	}
	err = parallel(ctx, len(ps), width, func(ctx context.Context, i int) error {
		p := ps[i]
		buf := <-bufs
		defer func() { bufs <- buf }()
		b := buf[:p.len]
		fill(p.off, b)
		n := int32(i + 1)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &bucket, Key: &key, UploadId: mu.UploadId, PartNumber: &n,
			Body: bytes.NewReader(b), ContentLength: aws.Int64(p.len),
		})
		if err != nil {
			return fmt.Errorf("upload part %d of %s: %w", n, key, err)
		}
		done[i] = types.CompletedPart{ETag: out.ETag, PartNumber: &n}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &bucket, Key: &key, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload %s: %w", key, err)
	}
	return nil
}

// putObject uploads body to key in one PUT.
func putObject(ctx context.Context, c *s3.Client, bucket, key string, body []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return fmt.Errorf("PUT %s: %w", key, err)
	}
	return nil
}

// listCount lists prefix with ListObjectsV2, 1,000 keys a page, the way a
// directory listing does (delimiter "/"), and returns how many objects and
// common prefixes it saw.
func listCount(ctx context.Context, c *s3.Client, bucket, prefix string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{
		Bucket: &bucket, Prefix: &prefix, Delimiter: aws.String("/"), MaxKeys: aws.Int32(1000),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("list %s: %w", prefix, err)
		}
		n += len(out.Contents) + len(out.CommonPrefixes)
	}
	return n, nil
}

// deletePrefix deletes every object under prefix.
func deletePrefix(ctx context.Context, c *s3.Client, bucket, prefix string) error {
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if len(out.Contents) == 0 {
			continue
		}
		var ids []types.ObjectIdentifier
		for _, o := range out.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}}); err != nil {
			return fmt.Errorf("delete under %s: %w", prefix, err)
		}
	}
	return nil
}

// objectSize returns the size of key, or an error if it does not exist.
func objectSize(ctx context.Context, c *s3.Client, bucket, key string) (int64, error) {
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}

// fillRandom fills buf with pseudo-random bytes determined by name and off:
// the same bytes on every call with the same arguments.
func fillRandom(name string, off int64, buf []byte) {
	h := fnv.New64a()
	io.WriteString(h, name)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], h.Sum64())
	binary.LittleEndian.PutUint64(seed[8:], uint64(off))
	g := rand.NewChaCha8(seed)
	_, _ = g.Read(buf) // ChaCha8.Read never fails.
}
