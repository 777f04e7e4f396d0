package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/s3mount/s3mount/internal/bucket"
)

// streamPartSize is the size of part n (from 1) of a streamed upload, whose
// final size is unknown: 8 MiB for the first 1000 parts, then doubling every
// 1000 parts, so that 10,000 parts hold about 8 TiB and a file over 80 GiB
// always fits.
func streamPartSize(n int32) int64 {
	shift := min((n-1)/1000, 9)
	return int64(minPartSize) << shift
}

// memoryBudget bounds the bytes that streamed uploads hold in memory across
// the whole mount. Writers wait for room; they never fail for want of it.
type memoryBudget struct {
	mu    sync.Mutex // guards avail
	cond  *sync.Cond // signalled when avail grows
	avail int64
	total int64
}

func newMemoryBudget(total int64) *memoryBudget {
	b := &memoryBudget{avail: total, total: total}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits until n bytes are free and takes them. A request larger
// than the whole budget waits for all of it.
func (b *memoryBudget) acquire(n int64) int64 {
	n = min(n, b.total)
	b.mu.Lock()
	for b.avail < n {
		b.cond.Wait()
	}
	b.avail -= n
	b.mu.Unlock()
	return n
}

func (b *memoryBudget) release(n int64) {
	b.mu.Lock()
	b.avail += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// streamUpload sends a file that is written sequentially from its start as
// a multipart upload while the data arrives: memory holds the part being
// filled and at most partWorkers parts in flight, and nothing is staged on
// disk. Files that end within one part become a single PutObject.
type streamUpload struct {
	fsys  *FS
	b     bucket.Bucket
	key   string
	mtime time.Time // stored at CreateMultipart

	// The fields below belong to the owning writeHandle and are guarded by
	// its mu.
	id      string // multipart upload ID, "" until the first part is sent
	buf     []byte // the part being filled
	held    int64  // budget bytes held for buf
	next    int32  // number of the next part to send
	workers chan struct{}
	wg      sync.WaitGroup

	mu    sync.Mutex // guards parts and err, written by part uploads
	parts []bucket.CompletedPart
	err   error
}

func newStreamUpload(f *FS, b bucket.Bucket, key string) *streamUpload {
	return &streamUpload{fsys: f, b: b, key: key, next: 1, workers: make(chan struct{}, partWorkers)}
}

// failed returns the error of a part upload that failed, if any.
func (s *streamUpload) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// write appends data, sending each part as it fills.
func (s *streamUpload) write(ctx context.Context, data []byte) error {
	for len(data) > 0 {
		if err := s.failed(); err != nil {
			return err
		}
		if s.buf == nil {
			size := streamPartSize(s.next)
			s.held = s.fsys.budget.acquire(size)
			s.buf = make([]byte, 0, size)
		}
		n := min(len(data), cap(s.buf)-len(s.buf))
		s.buf = append(s.buf, data[:n]...)
		data = data[n:]
		if len(s.buf) == cap(s.buf) {
			if err := s.send(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// send uploads the filled part in the background, starting the multipart
// upload first if needed.
func (s *streamUpload) send(ctx context.Context) error {
	if s.id == "" {
		id, err := s.b.CreateMultipart(ctx, s.key, s.mtime)
		if err != nil {
			return err
		}
		s.id = id
	}
	buf, held, number := s.buf, s.held, s.next
	s.buf, s.held = nil, 0
	s.next++
	// The part outlives the FUSE request that filled it, whose context
	// go-fuse reuses for later requests.
	ctx = context.WithoutCancel(ctx)
	s.workers <- struct{}{}
	s.wg.Go(func() {
		defer func() { <-s.workers }()
		defer s.fsys.budget.release(held)
		etag, err := s.b.UploadPart(ctx, s.key, s.id, number, bytes.NewReader(buf), int64(len(buf)))
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.err = errors.Join(s.err, err)
			return
		}
		for int(number) > len(s.parts) {
			s.parts = append(s.parts, bucket.CompletedPart{})
		}
		s.parts[number-1] = bucket.CompletedPart{Number: number, ETag: etag}
	})
	return nil
}

// finish sends what is left and completes the upload, or stores a file of
// at most one part with PutObject. On failure it aborts the upload, so no
// parts are left behind.
func (s *streamUpload) finish(ctx context.Context) (bucket.ObjectInfo, error) {
	if s.id == "" {
		data := s.buf
		s.release()
		return s.b.Put(ctx, s.key, bytes.NewReader(data), int64(len(data)), s.mtime)
	}
	var err error
	if len(s.buf) > 0 {
		err = s.send(ctx)
	}
	s.wg.Wait()
	if err == nil {
		err = s.failed()
	}
	var info bucket.ObjectInfo
	if err == nil {
		info, err = s.b.CompleteMultipart(ctx, s.key, s.id, s.parts)
	}
	if err != nil {
		s.abort()
		return bucket.ObjectInfo{}, err
	}
	return info, nil
}

// abort discards the upload and its parts, and frees the memory.
func (s *streamUpload) abort() {
	s.wg.Wait()
	s.release()
	if s.id != "" {
		if err := s.b.AbortMultipart(context.Background(), s.key, s.id); err != nil {
			s.fsys.log.Error("could not abort a failed upload; its parts may remain until the bucket's lifecycle rules remove them",
				"object", fmt.Sprintf("s3://%s/%s", s.b.Name(), s.key), "error", err.Error())
		}
	}
}

func (s *streamUpload) release() {
	s.buf = nil
	if s.held > 0 {
		s.fsys.budget.release(s.held)
		s.held = 0
	}
}
