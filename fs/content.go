package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s3mount/s3mount/internal/bucket"
)

// fileContent is the one state of a file that is open for writing or holds
// changes not yet in S3. Its node owns it, and every handle, getattr, lookup
// and listing of the file sees it, as every descriptor of a local file sees
// one page cache.
//
// The content lives in a staging file, which holds the whole file once
// loaded: at once for new and truncated files, otherwise on the first write
// or truncate, from the version that was opened. Reads through any handle
// are served from it once it is loaded. When a file is written in order past
// a part's end, that part is uploaded in the background as part of a
// multipart upload (parts.go); a later write into a part already sent marks
// it stale, and the commit sends it again. So nothing partial is ever
// visible at the key: the object changes only when the content is
// committed.
//
// A commit (commit) stores the whole content at the node's key as one
// PutObject, or completes the multipart upload, sending the parts not yet
// sent. It happens when the last writer closes the file, on fsync, on a
// flush by the process that opened the handle when no other writer has the
// file open, and when the mount stops. A commit that fails leaves the
// content dirty, and the next commit point tries again.
//
// Unlinking the file, or renaming another over it, detaches the content: it
// is never uploaded, an upload under way is cancelled and undone, and the
// handles keep reading and writing it until they close, as on a local disk.
type fileContent struct {
	fsys *FS
	node *fileNode

	// ctx lives as long as the content; background part uploads run
	// under it, and dropping or detaching the content cancels them.
	ctx    context.Context
	cancel context.CancelFunc

	// detaching is set before an unlink or a rename waits for mu.
	detaching atomic.Bool

	// attrSize and attrMtime mirror size and the mtime to show (Unix
	// nanoseconds, 0 for the base version's), so that getattr never waits
	// for a commit.
	attrSize, attrMtime atomic.Int64

	// mu serializes changes and commits, and is held across their network
	// calls (loads and uploads), so that operations on one file run in
	// order. Reads of the staging file take it shared.
	mu sync.RWMutex
	// staging holds the content. GUARDED_BY(mu)
	staging *os.File
	// loaded is set once staging holds the whole content. GUARDED_BY(mu)
	loaded bool
	// base is the version of the object the content started from, or
	// was last committed as. GUARDED_BY(mu)
	base bucket.ObjectInfo
	// size is the content's size. GUARDED_BY(mu)
	size int64
	// dirty is set while staging holds data not yet in S3. GUARDED_BY(mu)
	dirty bool
	// mtime is the modification time to store, set by utimes; zero means
	// the time of the commit. mtimeSet says it is not yet in S3.
	// GUARDED_BY(mu)
	mtime    time.Time
	mtimeSet bool
	// detached is set once the file was unlinked or replaced: nothing is
	// uploaded for it any more. GUARDED_BY(mu)
	detached bool
	// broken is the error that lost data (the staging disk failed); every
	// later write and commit returns it. GUARDED_BY(mu)
	broken error
	// up is the multipart upload under way, or nil. GUARDED_BY(mu)
	up *partUpload
	// upFailed is set when a write could not start the multipart upload;
	// writes do not try again before the next commit. GUARDED_BY(mu)
	upFailed bool
}

// newContent returns the content of n starting from the version base.
func (f *FS) newContent(n *fileNode, base bucket.ObjectInfo) (*fileContent, error) {
	b, key, _ := n.key()
	name := url.PathEscape(b + "/" + key)
	if len(name) > 150 {
		name = name[:150]
	}
	// Named after the object, so that what a crashed mount leaves can be
	// told apart.
	staging, err := os.CreateTemp(f.stagingDir, "w-"+name+"-*")
	if err != nil {
		return nil, fmt.Errorf("creating a staging file in %s: %w", f.stagingDir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &fileContent{fsys: f, node: n, ctx: ctx, cancel: cancel, staging: staging, base: base, size: base.Size, loaded: base.Size == 0}
	c.attrSize.Store(base.Size)
	f.contentsMu.Lock()
	f.contents[c] = struct{}{}
	f.contentsMu.Unlock()
	return c, nil
}

// close frees the content: its background uploads, its staging file, and
// its place in the mount's list. An unfinished multipart upload is aborted.
// The caller has made sure nothing uses it any more.
func (c *fileContent) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropUpload()
	c.cancel()
	c.staging.Close()
	os.Remove(c.staging.Name())
	c.fsys.contentsMu.Lock()
	delete(c.fsys.contents, c)
	c.fsys.contentsMu.Unlock()
}

// stat returns what getattr shows: the live size, and the mtime to show
// (zero for the base version's).
func (c *fileContent) stat() (int64, time.Time) {
	size := c.attrSize.Load()
	if ns := c.attrMtime.Load(); ns != 0 {
		return size, time.Unix(0, ns)
	}
	return size, time.Time{}
}

// setSize records a new size. c.mu must be held.
func (c *fileContent) setSize(size int64) {
	c.size = size
	c.attrSize.Store(size)
}

// touch records a change of data at now, unless utimes set the mtime.
// c.mu must be held.
func (c *fileContent) touch() {
	c.dirty = true
	if !c.mtimeSet {
		c.attrMtime.Store(time.Now().UnixNano())
	}
}

// load copies the base version into the staging file, once. c.mu must be
// held.
func (c *fileContent) load(ctx context.Context) error {
	if c.loaded {
		return nil
	}
	if c.base.Size > 0 {
		b, key, ok := c.node.key()
		if !ok {
			return syscall.ENOENT
		}
		r, err := c.fsys.opts.Bucket(b).Read(ctx, key, 0, -1, c.base.ETag)
		if err != nil {
			if errors.Is(err, bucket.ErrNotFound) {
				err = errors.Join(bucket.ErrStale, err)
			}
			if errors.Is(err, bucket.ErrStale) {
				c.node.invalidate()
			}
			return err
		}
		n, err := io.Copy(io.NewOffsetWriter(c.staging, 0), r)
		r.Close()
		if err != nil {
			return fmt.Errorf("loading s3://%s/%s into the staging file: %w", b, key, err)
		}
		if n != c.base.Size {
			return fmt.Errorf("loading s3://%s/%s: got %d bytes, want %d: %w", b, key, n, c.base.Size, bucket.ErrStale)
		}
	}
	c.loaded = true
	return nil
}

// readable reports whether reads are served from the staging file, and if
// so holds c.mu shared: the caller calls readAt, then c.mu.RUnlock.
func (c *fileContent) readable() bool {
	c.mu.RLock()
	if c.loaded || c.dirty {
		return true
	}
	c.mu.RUnlock()
	return false
}

// readAt reads the content at off. c.mu must be held (shared).
func (c *fileContent) readAt(dest []byte, off int64) ([]byte, error) {
	if off >= c.size {
		return nil, nil
	}
	n, err := c.staging.ReadAt(dest[:min(int64(len(dest)), c.size-off)], off)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return dest[:n], nil
}

// write writes data at off, or at the end when appending.
func (c *fileContent) write(ctx context.Context, data []byte, off int64, appending bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return 0, c.broken
	}
	if err := c.load(ctx); err != nil {
		return 0, err
	}
	if appending {
		off = c.size
	}
	sequential := off == c.size
	n, err := c.staging.WriteAt(data, off)
	if err != nil {
		// The staged content is incomplete: uploading it would store a
		// file the program never wrote. The object stays as it was.
		errno := c.fsys.localErrno("write staging file", err)
		c.broken = fmt.Errorf("the staging file could not be written (%w); the file was not changed in S3", errno)
		c.dirty = false
		c.dropUpload()
		return 0, errno
	}
	end := off + int64(n)
	if c.up != nil {
		c.up.changed(off, end)
	}
	c.setSize(max(c.size, end))
	c.touch()
	if sequential {
		c.sendFullParts(ctx, end)
	}
	return n, nil
}

// truncate sets the content's size.
func (c *fileContent) truncate(ctx context.Context, size int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	if size == 0 && !c.loaded {
		c.loaded = true // nothing of the old content is needed
	} else if err := c.load(ctx); err != nil {
		return err
	}
	if size == c.size && (c.dirty || size == 0 && c.base.ETag != "" && c.base.Size == 0) {
		return nil
	}
	if err := c.staging.Truncate(size); err != nil {
		return c.fsys.localErrno("truncate staging file", err)
	}
	if c.up != nil {
		c.up.changed(min(size, c.size), max(size, c.size))
		c.up.truncated(size)
	}
	c.setSize(size)
	c.touch()
	return nil
}

// setMtime records the modification time to store, unless the stored
// version already has it.
func (c *fileContent) setMtime(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty && !c.mtimeSet && c.base.Mtime.Equal(bucket.ParseMtime(bucket.FormatMtime(t))) {
		return
	}
	c.mtime, c.mtimeSet = t, true
	c.attrMtime.Store(t.UnixNano())
}

// hasUserMtime reports whether utimes set an mtime not yet stored.
func (c *fileContent) hasUserMtime() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mtimeSet
}

// pending reports whether the content holds anything not yet in S3.
func (c *fileContent) pending() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return !c.detached && (c.dirty || c.mtimeSet)
}

// commit stores the content at the node's key if it changed, and returns
// the upload's error. Cancelling ctx stops the upload, and the content stays
// dirty for the next commit point. Commits for close and fsync are not
// cancelled by the FUSE interrupt: Go programs get signals for their own
// scheduling all the time, a close cannot be retried, and every S3 request
// is bounded anyway (s3bucket's timeouts).
func (c *fileContent) commit(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commitLocked(ctx)
}

// commitLocked is commit with c.mu held.
func (c *fileContent) commitLocked(ctx context.Context) error {
	c.upFailed = false
	if c.detached {
		return nil // unlinked: nothing of it is stored
	}
	if c.broken != nil {
		return c.broken
	}
	if !c.dirty && !c.mtimeSet {
		return nil
	}
	b, key, ok := c.node.key()
	if !ok {
		return nil
	}
	if !c.fsys.writable(b, key) {
		return fmt.Errorf("s3://%s/%s is no longer writable: %w", b, key, bucket.ErrPermission)
	}
	bk := c.fsys.opts.Bucket(b)
	if !c.dirty {
		// Only the mtime changed: copy the object onto itself.
		info, err := bk.Copy(ctx, key, key, c.base.Size, c.mtime)
		if err != nil {
			return err
		}
		c.mtimeSet = false
		c.committed(info)
		return nil
	}
	mtime := c.mtime
	if !c.mtimeSet {
		mtime = time.Now()
	}
	var info bucket.ObjectInfo
	var err error
	if c.size <= minPartSize {
		c.dropUpload()
		info, err = bk.Put(ctx, key, io.NewSectionReader(c.staging, 0, c.size), c.size, mtime)
	} else {
		info, err = c.completeUpload(ctx, bk, key, mtime)
	}
	if err != nil {
		return err
	}
	info.Key, info.Size = key, c.size
	if info.Mtime.IsZero() {
		info.Mtime = bucket.ParseMtime(bucket.FormatMtime(mtime))
	}
	if info.LastModified.IsZero() {
		info.LastModified = time.Now().UTC()
	}
	c.dirty, c.mtimeSet = false, false
	c.committed(info)
	return nil
}

// committed records a stored version. c.mu must be held.
func (c *fileContent) committed(info bucket.ObjectInfo) {
	c.base = info
	c.node.committed(info)
}

// keepUnsaved moves content that could not be uploaded into the mount's
// unsaved directory, and returns where it was kept. The content then reads
// as the version in S3 again. c.mu must be held.
func (c *fileContent) keepUnsaved() (string, error) {
	c.dropUpload()
	b, key, _ := c.node.key()
	path, err := c.fsys.keepFile(c.staging, b, key, c.size)
	if err != nil {
		return "", err
	}
	fresh, ferr := os.CreateTemp(c.fsys.stagingDir, "w-")
	if ferr == nil {
		c.staging.Close()
		c.staging = fresh
	}
	c.dirty, c.mtimeSet, c.loaded = false, false, c.base.Size == 0
	c.setSize(c.base.Size)
	c.attrMtime.Store(0)
	return path, nil
}

// detach marks the content as no longer belonging to any key: nothing is
// uploaded from now on, and a background multipart upload is aborted. A
// commit under way is waited for, not cancelled: a cancelled PutObject may
// still land at the server after the caller's DeleteObject, so the unlink
// deletes what the commit stored instead.
func (c *fileContent) detach(ctx context.Context) {
	c.detaching.Store(true)
	c.mu.Lock()
	if c.broken == nil {
		// Its handles keep working, as on a local disk: they need the
		// bytes that are about to be deleted.
		if err := c.load(ctx); err != nil {
			c.broken = fmt.Errorf("the file was removed before its content could be read: %w", err)
		}
	}
	c.detached = true
	c.dropUpload()
	c.mu.Unlock()
}
