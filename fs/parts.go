package fs

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/s3mount/s3mount/internal/bucket"
)

// Upload tuning. Part n (from 1) of an upload is partSizeOf(n) bytes: 8 MiB
// for the first 1000 parts, then doubling every 1000 parts, so that 10,000
// parts hold about 8 TiB. Every upload uses the same schedule, so a part's
// place in a file never depends on the file's final size, and parts can be
// sent while the file is still being written.
const (
	minPartSize = 8 << 20
	maxParts    = 10000
	partWorkers = 4
)

// partSizeOf returns the size of part n (from 1).
func partSizeOf(n int32) int64 {
	shift := min((n-1)/1000, 9)
	return int64(minPartSize) << shift
}

// partStart returns the offset of part n (from 1).
func partStart(n int32) int64 {
	var off int64
	for group := int32(0); group*1000 < n-1; group++ {
		count := min(1000, n-1-group*1000)
		off += int64(count) * partSizeOf(group*1000+1)
	}
	return off
}

// partAt returns the number of the part that holds offset off.
func partAt(off int64) int32 {
	n := int32(1)
	for group := int32(0); group < 9; group++ {
		span := 1000 * partSizeOf(group*1000+1)
		if off < span {
			return n + int32(off/partSizeOf(group*1000+1))
		}
		off -= span
		n += 1000
	}
	return n + int32(off/partSizeOf(n))
}

// partCount returns how many parts a file of size bytes has (at least 1).
func partCount(size int64) int32 {
	if size <= 0 {
		return 1
	}
	return partAt(size - 1)
}

// partUpload is a multipart upload of a file's content. While the file is
// written in order, each part is sent in the background as soon as the
// writer has moved past its end, at most partWorkers at a time; the parts
// are read from the staging file, so no memory holds them. A write into a
// part already sent, or being sent, makes it stale, and the commit sends it
// again, as S3 lets a part number be uploaded more than once. Parts past a
// truncated end are left out of the completed object.
type partUpload struct {
	fsys    *FS
	b       bucket.Bucket
	key, id string
	staging *os.File
	// withMtime is set when the upload was started with the mtime to
	// store; one started in the background carries none.
	withMtime bool

	// ctx ends with the upload; background sends run under it.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex // guards the fields below
	cond *sync.Cond // signalled when inflight drops
	// parts holds the state of every part sent or being sent.
	parts map[int32]*partState
	// inflight counts background sends under way.
	inflight int
	// next is the lowest part not yet sent in order, and through the end
	// of what the writer has written in order: parts that end by then may
	// be sent.
	next    int32
	through int64
}

// partState is one part of a partUpload.
type partState struct {
	// gen counts changes to the part's bytes; sent is the gen that was
	// last uploaded whole, or -1.
	gen, sent int
	etag      string
	size      int64
}

func newPartUpload(c *fileContent, b bucket.Bucket, key, id string) *partUpload {
	ctx, cancel := context.WithCancel(c.ctx)
	u := &partUpload{fsys: c.fsys, b: b, key: key, id: id, staging: c.staging, ctx: ctx, cancel: cancel, parts: map[int32]*partState{}, next: 1}
	u.cond = sync.NewCond(&u.mu)
	return u
}

// sendFullParts starts sending the parts that a write in order up to end has
// filled, starting the multipart upload if the file has outgrown one part.
// A failure here is not the writer's: the commit sends whatever is missing
// and reports its own errors. c.mu must be held.
func (c *fileContent) sendFullParts(ctx context.Context, end int64) {
	if end < partStart(2) {
		return // a file within one part becomes a single PutObject
	}
	if c.up == nil {
		b, key, ok := c.node.key()
		if !ok || c.detached || c.upFailed {
			return
		}
		bk := c.fsys.opts.Bucket(b)
		id, err := bk.CreateMultipart(ctx, key, time.Time{})
		if err != nil {
			// Not again before the commit, which tries itself: each try
			// can cost the writer a whole retry budget.
			c.upFailed = true
			c.fsys.log.Debug("could not start a multipart upload; the commit will", "object", "s3://"+b+"/"+key, "error", err.Error())
			return
		}
		c.up = newPartUpload(c, bk, key, id)
	}
	c.up.mu.Lock()
	defer c.up.mu.Unlock()
	c.up.through = max(c.up.through, end)
	c.up.kick()
}

// changed marks the parts that hold [off, end) as changed. The caller holds
// the content's mu, so no commit is reading the part table.
func (u *partUpload) changed(off, end int64) {
	if end <= off {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for n := partAt(off); n <= partAt(end-1); n++ {
		if p, ok := u.parts[n]; ok {
			p.gen++
		}
	}
}

// truncated records that the file now ends at size: only parts that end
// by then may be sent in the background until the writer passes them again.
func (u *partUpload) truncated(size int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.through = min(u.through, size)
	u.next = min(u.next, partAt(max(size-1, 0)))
}

// part returns the state of part n, creating it. u.mu must be held.
func (u *partUpload) part(n int32) *partState {
	p, ok := u.parts[n]
	if !ok {
		p = &partState{sent: -1}
		u.parts[n] = p
	}
	return p
}

// kick starts background sends of the parts the writer has filled, up to
// partWorkers at a time. u.mu must be held.
func (u *partUpload) kick() {
	for u.inflight < partWorkers && u.next <= maxParts && partStart(u.next)+partSizeOf(u.next) <= u.through {
		n := u.next
		u.next++
		gen := u.part(n).gen
		u.inflight++
		go func() {
			err := u.send(u.ctx, n, gen)
			u.mu.Lock()
			defer u.mu.Unlock()
			u.inflight--
			u.cond.Broadcast()
			if err == nil {
				u.kick()
			} else if u.ctx.Err() == nil {
				u.fsys.log.Debug("background part upload failed; the commit sends it again", "object", "s3://"+u.b.Name()+"/"+u.key, "part", n, "error", err.Error())
			}
		}()
	}
}

// send uploads part n as it stands in the staging file, and records it as
// sent if its bytes did not change meanwhile (gen is the part's gen when the
// send was decided). It waits for one of the mount's upload slots first.
func (u *partUpload) send(ctx context.Context, n int32, gen int) error {
	select {
	case u.fsys.uploadSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-u.fsys.uploadSlots }()
	off, size := partStart(n), partSizeOf(n)
	if st, err := u.staging.Stat(); err == nil {
		size = min(size, st.Size()-off)
	}
	if size <= 0 {
		return fmt.Errorf("part %d lies past the end of the file", n)
	}
	etag, err := u.b.UploadPart(ctx, u.key, u.id, n, io.NewSectionReader(u.staging, off, size), size)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if p := u.part(n); p.gen == gen {
		p.sent, p.etag, p.size = gen, etag, size
	}
	return nil
}

// wait waits until no background send is under way.
func (u *partUpload) wait() {
	u.mu.Lock()
	for u.inflight > 0 {
		u.cond.Wait()
	}
	u.mu.Unlock()
}

// stale returns the parts of a file of size bytes that must be sent before
// the upload can complete: those never sent whole, or changed since.
func (u *partUpload) stale(size int64) []int32 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var todo []int32
	for n := int32(1); n <= partCount(size); n++ {
		want := min(partSizeOf(n), size-partStart(n))
		if p, ok := u.parts[n]; !ok || p.sent != p.gen || p.size != want {
			todo = append(todo, n)
		}
	}
	return todo
}

// completed returns the list of parts of a file of size bytes.
func (u *partUpload) completed(size int64) []bucket.CompletedPart {
	u.mu.Lock()
	defer u.mu.Unlock()
	parts := make([]bucket.CompletedPart, 0, partCount(size))
	for n := int32(1); n <= partCount(size); n++ {
		parts = append(parts, bucket.CompletedPart{Number: n, ETag: u.parts[n].etag})
	}
	return parts
}

// completeUpload stores the content at key as a multipart upload: it waits
// for the background sends, sends the parts still missing or stale, and
// completes the upload. On failure the upload is aborted, so no parts are
// left behind. c.mu must be held.
func (c *fileContent) completeUpload(ctx context.Context, bk bucket.Bucket, key string, mtime time.Time) (bucket.ObjectInfo, error) {
	if c.up != nil && (c.up.key != key || c.up.b.Name() != bk.Name()) {
		c.dropUpload()
	}
	if c.up == nil {
		id, err := bk.CreateMultipart(ctx, key, mtime)
		if err != nil {
			return bucket.ObjectInfo{}, err
		}
		c.up = newPartUpload(c, bk, key, id)
		c.up.withMtime = true
	}
	u := c.up
	u.wait()
	todo := u.stale(c.size)
	err := forEachPart(ctx, todo, func(ctx context.Context, n int32) error {
		u.mu.Lock()
		gen := u.part(n).gen
		u.mu.Unlock()
		return u.send(ctx, n, gen)
	})
	var info bucket.ObjectInfo
	if err == nil {
		info, err = bk.CompleteMultipart(ctx, key, u.id, u.completed(c.size))
	}
	if err != nil {
		c.dropUpload()
		return bucket.ObjectInfo{}, err
	}
	u.cancel()
	c.up = nil
	if u.withMtime {
		return info, nil
	}
	if c.mtimeSet {
		// The upload started before utimes set the mtime, and carries none.
		return bk.Copy(ctx, key, key, c.size, c.mtime)
	}
	// The object's own time is its mtime; ask S3 for it, so that this
	// mount shows what a fresh one will.
	if st, serr := bk.Stat(ctx, key); serr == nil && st.ETag == info.ETag {
		return st, nil
	}
	return info, nil
}

// forEachPart runs send for each part, partWorkers at a time, and returns
// the first error; the first failure cancels the rest.
func forEachPart(ctx context.Context, parts []int32, send func(context.Context, int32) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int32)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(partWorkers, len(parts)) {
		wg.Go(func() {
			for n := range next {
				if err := send(ctx, n); err != nil {
					once.Do(func() { firstErr = err })
					cancel()
					return
				}
			}
		})
	}
feed:
	for _, n := range parts {
		select {
		case next <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// dropUpload stops and aborts the multipart upload, if any, so that no
// parts are left behind. c.mu must be held.
func (c *fileContent) dropUpload() {
	u := c.up
	if u == nil {
		return
	}
	c.up = nil
	u.cancel()
	u.wait()
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	if err := u.b.AbortMultipart(ctx, u.key, u.id); err != nil {
		c.fsys.log.Error("could not abort an unfinished upload; its parts may remain until the bucket's lifecycle rules remove them",
			"object", "s3://"+u.b.Name()+"/"+u.key, "error", err.Error())
	}
}

// abortTimeout bounds the AbortMultipartUpload of an upload given up.
const abortTimeout = 30 * time.Second
