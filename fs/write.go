package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3mount/s3mount/internal/bucket"
)

// Upload tuning. Parts start at minPartSize and double until the file fits
// in S3's 10,000 parts: 8 MiB parts cover 78 GiB, 16 MiB parts 156 GiB.
const (
	minPartSize = 8 << 20
	maxParts    = 10000
	partWorkers = 4
)

// partSize returns the part size for an upload of size bytes.
func partSize(size int64) int64 {
	p := int64(minPartSize)
	for (size+p-1)/p > maxParts {
		p *= 2
	}
	return p
}

// writeHandle is a file opened for writing. Its content lives in a staging
// file; it reaches S3 as one PutObject, or a multipart upload for files over
// one part, when the file is flushed (every close), fsynced or released.
//
// Two handles writing the same file each upload their own content: the last
// to close wins.
type writeHandle struct {
	node *fileNode
	fsys *FS

	mu sync.Mutex // guards everything below; held across loads and uploads
	// staging holds the file's content once loaded.
	staging *os.File
	// loaded is set once staging holds the whole content: at once for new
	// and truncated files, otherwise on the first read, write or truncate.
	loaded bool
	// base is the version of the object that was opened.
	base bucket.ObjectInfo
	size int64
	// dirty is set while staging holds changes not yet in S3.
	dirty bool
	// mtime is the modification time to store, set by utimes; zero means
	// the time of the commit.
	mtime time.Time
	// stream, while set, holds a new file being written sequentially: its
	// content is the parts sent so far and the one being filled, not the
	// staging file.
	stream *streamUpload
	// broken is the error that lost the handle's data; every later write
	// and commit returns it.
	broken error
}

var (
	_ fusefs.FileReader    = (*writeHandle)(nil)
	_ fusefs.FileWriter    = (*writeHandle)(nil)
	_ fusefs.FileFlusher   = (*writeHandle)(nil)
	_ fusefs.FileFsyncer   = (*writeHandle)(nil)
	_ fusefs.FileReleaser  = (*writeHandle)(nil)
	_ fusefs.FileGetattrer = (*writeHandle)(nil)
)

// newWriteHandle opens node for writing. A truncated handle starts empty and
// dirty, so that even an empty file is stored on close.
func (f *FS) newWriteHandle(n *fileNode, bucketName, key string, base bucket.ObjectInfo, truncate bool) (*writeHandle, error) {
	staging, err := os.CreateTemp(f.stagingDir, "w-")
	if err != nil {
		return nil, fmt.Errorf("creating a staging file in %s: %w", f.stagingDir, err)
	}
	h := &writeHandle{node: n, fsys: f, staging: staging, base: base, size: base.Size}
	if truncate {
		h.loaded, h.size, h.dirty = true, 0, true
		h.stream = newStreamUpload(f, f.opts.Bucket(bucketName), key)
	}
	n.mu.Lock()
	n.writers = append(n.writers, h)
	n.mu.Unlock()
	f.handlesMu.Lock()
	f.handles[h] = struct{}{}
	f.handlesMu.Unlock()
	return h, nil
}

// pending reports whether the handle holds changes not yet in S3.
func (h *writeHandle) pending() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dirty || h.stream != nil
}

// attrInfo returns the metadata getattr reports while the handle is open.
func (h *writeHandle) attrInfo() bucket.ObjectInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	info := h.base
	info.Size = h.size
	if !h.mtime.IsZero() {
		info.Mtime = h.mtime
	} else if h.dirty {
		info.Mtime = time.Now()
	}
	return info
}

// load copies the object into the staging file, once. h.mu must be held.
func (h *writeHandle) load(ctx context.Context) error {
	if h.loaded {
		return nil
	}
	if h.base.Size > 0 {
		b, key, ok := h.node.location()
		if !ok {
			return syscall.ENOENT
		}
		r, err := h.fsys.opts.Bucket(b).Read(ctx, key, 0, -1, h.base.ETag)
		if err != nil {
			return err
		}
		n, err := io.Copy(h.staging, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("loading s3://%s/%s into the staging file: %w", b, key, err)
		}
		if n != h.base.Size {
			return fmt.Errorf("loading s3://%s/%s: got %d bytes, want %d: %w", b, key, n, h.base.Size, bucket.ErrStale)
		}
	}
	h.loaded = true
	return nil
}

// Getattr implements fusefs.FileGetattrer.
func (h *writeHandle) Getattr(_ context.Context, out *fuse.AttrOut) syscall.Errno {
	b, key, _ := h.node.location()
	h.fsys.fileAttr(&out.Attr, h.node.StableAttr().Ino, h.attrInfo(), h.fsys.writable(b, key))
	return 0
}

// Read implements fusefs.FileReader: a file open for writing reads its
// staged content.
func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.endStream(ctx); err != nil {
		return nil, h.fsys.errno("read", err)
	}
	if err := h.load(ctx); err != nil {
		return nil, h.fsys.errno("read", err)
	}
	if off >= h.size {
		return fuse.ReadResultData(nil), 0
	}
	n, err := h.staging.ReadAt(dest[:min(int64(len(dest)), h.size-off)], off)
	if err != nil && err != io.EOF {
		return nil, h.fsys.localErrno("read staging file", err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Write implements fusefs.FileWriter.
func (h *writeHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broken != nil {
		return 0, h.fsys.errno("write", h.broken)
	}
	if h.stream != nil && off == h.size {
		if err := h.stream.write(ctx, data); err != nil {
			h.breakStream(err)
			return 0, h.fsys.errno("write", err)
		}
		h.size += int64(len(data))
		h.dirty = true
		return uint32(len(data)), 0
	}
	if err := h.endStream(ctx); err != nil {
		return 0, h.fsys.errno("write", err)
	}
	if err := h.load(ctx); err != nil {
		return 0, h.fsys.errno("write", err)
	}
	n, err := h.staging.WriteAt(data, off)
	if err != nil {
		// The staged content is incomplete: uploading it would store a
		// file the program never wrote. The object stays as it was.
		errno := h.fsys.localErrno("write staging file", err)
		h.broken = fmt.Errorf("the staging file could not be written (%w); the file was not changed in S3", errno)
		h.dirty = false
		return 0, errno
	}
	h.size = max(h.size, off+int64(n))
	h.dirty = true
	return uint32(n), 0
}

// truncate sets the file's size.
func (h *writeHandle) truncate(ctx context.Context, size int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stream != nil && size == h.size {
		return nil
	}
	if err := h.endStream(ctx); err != nil {
		return err
	}
	if size == 0 {
		h.loaded = true // nothing of the old content is needed
	}
	if err := h.load(ctx); err != nil {
		return err
	}
	if err := h.staging.Truncate(size); err != nil {
		return err
	}
	h.size, h.dirty = size, true
	return nil
}

// setMtime records the modification time to store.
func (h *writeHandle) setMtime(t time.Time) {
	h.mu.Lock()
	h.mtime, h.dirty = t, true
	h.mu.Unlock()
}

// Flush implements fusefs.FileFlusher. It runs on every close of a file
// descriptor, so that close reports a failed upload.
//
// A flush before anything was written to a new or truncated file does not
// store it: shells and dd open with O_TRUNC, duplicate the descriptor and
// close the original before writing, and storing an empty object then
// would throw away the old content before the new is there. Release stores
// the file if it stays empty.
func (h *writeHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	untouched := h.stream != nil && h.size == 0 && h.stream.id == "" && h.mtime.IsZero()
	h.mu.Unlock()
	if untouched {
		return 0
	}
	return h.commitErrno(ctx)
}

// Fsync implements fusefs.FileFsyncer.
func (h *writeHandle) Fsync(ctx context.Context, _ uint32) syscall.Errno {
	return h.commitErrno(ctx)
}

func (h *writeHandle) commitErrno(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.commit(ctx); err != nil {
		return h.fsys.errno("upload", err)
	}
	return 0
}

// Release implements fusefs.FileReleaser. If the content still could not be
// uploaded, it is kept in the staging directory and the log says where.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Commit before leaving the node's writers: until then, a setattr or
	// rename finds this handle and waits for it, rather than finding
	// neither the handle nor the object.
	err := h.commit(ctx)
	n := h.node
	n.mu.Lock()
	n.writers = slices.DeleteFunc(n.writers, func(w *writeHandle) bool { return w == h })
	n.mu.Unlock()
	h.fsys.handlesMu.Lock()
	delete(h.fsys.handles, h)
	h.fsys.handlesMu.Unlock()
	name := h.staging.Name()
	h.staging.Close()
	if err != nil && h.broken == nil && h.loaded && h.size > 0 {
		b, key, _ := n.location()
		kept := filepath.Join(h.fsys.stagingRoot, "unsaved-"+strconv.FormatInt(time.Now().UnixNano(), 10))
		rerr := os.Rename(name, kept)
		if rerr == nil {
			h.fsys.log.Error("upload failed; the file's content is kept locally", "object", "s3://"+b+"/"+key, "kept_at", kept, "error", err.Error())
			return h.fsys.errno("upload", err)
		}
		h.fsys.log.Error("upload failed, and the content could not be kept locally either; it is lost",
			"object", "s3://"+b+"/"+key, "error", err.Error(), "keep_error", rerr.Error())
	}
	os.Remove(name)
	if err != nil {
		return h.fsys.errno("upload", err)
	}
	return 0
}

// commit uploads the staged content if it changed. h.mu must be held. The
// upload is not cancelled by an interrupt: close waits for it, so that a
// successful close always means the bytes are in S3.
func (h *writeHandle) commit(ctx context.Context) error {
	if h.broken != nil {
		return h.broken
	}
	if h.stream != nil {
		return h.endStream(ctx)
	}
	if !h.dirty {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	b, key, ok := h.node.location()
	if !ok {
		h.dirty = false // unlinked while open: its content goes with it
		return nil
	}
	if !h.fsys.writable(b, key) {
		return fmt.Errorf("s3://%s/%s is no longer writable: %w", b, key, bucket.ErrPermission)
	}
	if err := h.load(ctx); err != nil {
		return err
	}
	mtime := h.mtime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	bk := h.fsys.opts.Bucket(b)
	var info bucket.ObjectInfo
	var err error
	if h.size <= minPartSize {
		info, err = bk.Put(ctx, key, io.NewSectionReader(h.staging, 0, h.size), h.size, mtime)
	} else {
		info, err = uploadParts(ctx, bk, key, h.staging, h.size, mtime)
	}
	if err != nil {
		return err
	}
	info.Key, info.Size = key, h.size
	info.Mtime = bucket.ParseMtime(bucket.FormatMtime(mtime))
	if info.LastModified.IsZero() {
		info.LastModified = time.Now().UTC()
	}
	h.dirty, h.base = false, info
	h.node.committed(info)
	return nil
}

// endStream completes a streamed upload, if one is under way, and leaves the
// handle working on the stored object through the staging file. A failed
// upload loses what was streamed: the handle is broken and says so. h.mu
// must be held.
func (h *writeHandle) endStream(ctx context.Context) error {
	s := h.stream
	if s == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	h.stream = nil
	mtime := h.mtime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	if s.id == "" {
		s.mtime = mtime // a single PutObject stores it directly
	}
	info, err := s.finish(ctx)
	if err != nil {
		h.breakStream(err)
		return err
	}
	if s.id != "" && !h.mtime.IsZero() {
		// The multipart upload started before the mtime was set.
		if info, err = s.b.Copy(ctx, s.key, s.key, h.size, h.mtime); err != nil {
			h.fsys.log.Warn("stored the file but not its modification time", "object", "s3://"+s.b.Name()+"/"+s.key, "error", err.Error())
		}
	}
	info.Key, info.Size = s.key, h.size
	if info.Mtime.IsZero() {
		info.Mtime = bucket.ParseMtime(bucket.FormatMtime(mtime))
	}
	if info.LastModified.IsZero() {
		info.LastModified = time.Now().UTC()
	}
	// The staging file is empty: later reads and writes load the object.
	h.dirty, h.base, h.loaded = false, info, info.Size == 0
	h.node.committed(info)
	return nil
}

// breakStream records that a streamed upload failed and its data is lost.
func (h *writeHandle) breakStream(err error) {
	if h.stream != nil {
		h.stream.abort()
		h.stream = nil
	}
	h.broken = err
	h.dirty = false
	h.fsys.log.Error("upload failed; the data written to this file is lost and the file was not changed in S3", "error", err.Error())
}

// uploadParts uploads size bytes of src as a multipart upload, partWorkers
// parts at a time, reading each part from src where it lies. On any failure
// it aborts the upload, so that no parts are left behind.
func uploadParts(ctx context.Context, b bucket.Bucket, key string, src io.ReaderAt, size int64, mtime time.Time) (bucket.ObjectInfo, error) {
	id, err := b.CreateMultipart(ctx, key, mtime)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	ps := partSize(size)
	count := int((size + ps - 1) / ps)
	parts := make([]bucket.CompletedPart, count)
	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(partWorkers, count) {
		wg.Go(func() {
			for i := range next {
				off := int64(i) * ps
				n := min(ps, size-off)
				etag, err := b.UploadPart(upCtx, key, id, int32(i+1), io.NewSectionReader(src, off, n), n)
				if err != nil {
					// The first failure is the cause; the parts it
					// cancels fail with context.Canceled.
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
				parts[i] = bucket.CompletedPart{Number: int32(i + 1), ETag: etag}
			}
		})
	}
feed:
	for i := range count {
		select {
		case next <- i:
		case <-upCtx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	err = firstErr
	var info bucket.ObjectInfo
	if err == nil {
		info, err = b.CompleteMultipart(ctx, key, id, parts)
	}
	if err != nil {
		if aerr := b.AbortMultipart(context.WithoutCancel(ctx), key, id); aerr != nil {
			err = errors.Join(err, fmt.Errorf("aborting the upload (its parts may remain until the bucket's lifecycle rules remove them): %w", aerr))
		}
		return bucket.ObjectInfo{}, err
	}
	return info, nil
}

// committed records a successful upload: the node, the kernel's cache
// bookkeeping and the parent's listing all see the new version at once.
func (n *fileNode) committed(info bucket.ObjectInfo) {
	if b, _, ok := n.location(); ok {
		n.fsys.noteMtime(b, info)
	}
	n.mu.Lock()
	n.info, n.infoAt, n.cachedETag = info, time.Now(), info.ETag
	n.mu.Unlock()
	name, parent := n.Parent()
	if parent == nil {
		return
	}
	if d, ok := parent.Operations().(*dirNode); ok {
		d.updateListing(name, &dirEntry{info: info})
	}
}

// Setattr implements fusefs.NodeSetattrer. Size changes truncate through a
// write handle; mtime is stored in the object's metadata; mode and
// ownership are accepted and not stored, so that cp -p, rsync -a and tar
// work.
func (n *fileNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	b, key, ok := n.location()
	if !ok {
		return syscall.ENOENT
	}
	if !n.fsys.writable(b, key) {
		return syscall.EROFS
	}
	h, _ := fh.(*writeHandle)
	if h == nil {
		h = n.pendingWriter()
	}
	if size, ok := in.GetSize(); ok {
		if errno := n.setSize(ctx, h, int64(size)); errno != 0 {
			return errno
		}
	}
	if mtime, ok := in.GetMTime(); ok {
		if h != nil {
			h.setMtime(mtime)
		} else if errno := n.setMtime(ctx, b, key, mtime); errno != 0 {
			return errno
		}
	}
	return n.Getattr(ctx, fh, out)
}

// setSize truncates through h, or through a handle of its own.
func (n *fileNode) setSize(ctx context.Context, h *writeHandle, size int64) syscall.Errno {
	if h != nil {
		if err := h.truncate(ctx, size); err != nil {
			return n.fsys.errno("truncate", err)
		}
		return 0
	}
	info, err := n.currentInfo(ctx)
	if err != nil {
		return n.fsys.errno("truncate", err)
	}
	if info.Size == size {
		return 0
	}
	b, key, ok := n.location()
	if !ok {
		return syscall.ENOENT
	}
	h, err = n.fsys.newWriteHandle(n, b, key, info, false)
	if err != nil {
		return n.fsys.errno("truncate", err)
	}
	if err := h.truncate(ctx, size); err != nil {
		h.Release(ctx)
		return n.fsys.errno("truncate", err)
	}
	return h.Release(ctx)
}

// setMtime stores mtime in the object's metadata by copying the object
// onto itself.
func (n *fileNode) setMtime(ctx context.Context, b, key string, mtime time.Time) syscall.Errno {
	info, err := n.currentInfo(ctx)
	if err != nil {
		return n.fsys.errno("utimes", err)
	}
	if !info.Mtime.IsZero() && info.Mtime.Equal(bucket.ParseMtime(bucket.FormatMtime(mtime))) {
		return 0
	}
	info, err = n.fsys.opts.Bucket(b).Copy(ctx, key, key, info.Size, mtime)
	if err != nil {
		return n.fsys.errno("utimes", err)
	}
	n.committed(info)
	return 0
}
