package fs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/reader"
)

// fileNode is one file. Its bucket and key are its own, not derived from
// its place in the tree: a rename sets them before go-fuse moves the node,
// so that a commit racing the rename never stores at the old key.
type fileNode struct {
	fusefs.Inode
	fsys *FS

	mu sync.Mutex // guards the fields below
	// bucket and objKey are where the file is stored; gone is set once it
	// was unlinked or replaced, and then it is stored nowhere.
	bucket, objKey string
	gone           bool
	// info is the latest known version in S3, and infoAt when it was read
	// (zero forces the next getattr or open to ask S3).
	info   bucket.ObjectInfo
	infoAt time.Time
	// cachedETag is the ETag of the content the kernel may hold in its page
	// cache, from the last open or commit.
	cachedETag string
	// content is the file's state while it is open for writing or holds
	// unsaved changes, or nil.
	content *fileContent
	// handles are the open handles; writers counts those that may write.
	handles map[*fileHandle]struct{}
	writers int
}

var (
	_ fusefs.NodeGetattrer   = (*fileNode)(nil)
	_ fusefs.NodeOpener      = (*fileNode)(nil)
	_ fusefs.NodeSetattrer   = (*fileNode)(nil)
	_ fusefs.NodeAccesser    = (*fileNode)(nil)
	_ fusefs.NodeStatfser    = (*fileNode)(nil)
	_ fusefs.NodeSetxattrer  = (*fileNode)(nil)
	_ fusefs.NodeOnForgetter = (*fileNode)(nil)
)

func (f *FS) newFileNode(bucketName, key string, info bucket.ObjectInfo) *fileNode {
	return &fileNode{fsys: f, bucket: bucketName, objKey: key, info: info, infoAt: time.Now(), handles: map[*fileHandle]struct{}{}}
}

// key returns the file's bucket and key, and false if it was unlinked.
func (n *fileNode) key() (string, string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bucket, n.objKey, !n.gone
}

// OnForget implements fusefs.NodeOnForgetter: the kernel dropped the node,
// and its inode number is free again.
func (n *fileNode) OnForget() { n.fsys.inodes.release(n.StableAttr().Ino) }

// setKey records that the file is now stored at key.
func (n *fileNode) setKey(bucketName, key string) {
	n.mu.Lock()
	n.bucket, n.objKey = bucketName, key
	n.mu.Unlock()
	n.fsys.inodes.move(n.StableAttr().Ino, "object", bucketName, key)
}

// detach records that the file was unlinked or replaced: its content is
// never uploaded, and its inode number no longer stands for its old name.
func (n *fileNode) detach(ctx context.Context) {
	n.mu.Lock()
	n.gone = true
	c := n.content
	n.mu.Unlock()
	n.fsys.inodes.detach(n.StableAttr().Ino)
	if c != nil {
		c.detach(ctx)
	}
}

// liveContent returns the file's content state, or nil.
func (n *fileNode) liveContent() *fileContent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.content
}

// refresh records metadata from a listing or a HEAD, unless the file holds
// unsaved state, which S3 never overrides. A listing carries no mtime: the
// one known for the same ETag is kept.
func (n *fileNode) refresh(info bucket.ObjectInfo) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.content != nil {
		return
	}
	if info.Mtime.IsZero() && info.ETag == n.info.ETag {
		info.Mtime = n.info.Mtime
	}
	n.info, n.infoAt = info, time.Now()
}

// invalidate forgets the metadata, so that the next getattr or open asks
// S3, and has the kernel drop its cached attributes and pages: the object
// changed or disappeared behind the mount's back.
func (n *fileNode) invalidate() {
	n.mu.Lock()
	n.infoAt = time.Time{}
	n.cachedETag = ""
	n.mu.Unlock()
	// Not from inside this request: the kernel may hold locks that the
	// invalidation needs.
	go n.NotifyContent(0, 0)
}

// currentInfo returns the metadata, refreshed from S3 if older than the
// metadata TTL.
func (n *fileNode) currentInfo(ctx context.Context) (bucket.ObjectInfo, error) {
	n.mu.Lock()
	info, fresh := n.info, time.Since(n.infoAt) < n.fsys.opts.MetadataTTL
	b, key, gone := n.bucket, n.objKey, n.gone
	n.mu.Unlock()
	if fresh || gone {
		return info, nil
	}
	info, err := n.fsys.statObject(ctx, n.fsys.opts.Bucket(b), key) // coalesced; notes the mtime
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	n.mu.Lock()
	if n.content == nil {
		n.info, n.infoAt = info, time.Now()
	}
	n.mu.Unlock()
	return info, nil
}

// attrInfo returns what getattr reports, and whether it is live state that
// the kernel must not cache: the content's size and mtime while the file
// holds content, S3's otherwise.
func (n *fileNode) attrInfo(ctx context.Context) (bucket.ObjectInfo, bool, error) {
	n.mu.Lock()
	c, info := n.content, n.info
	n.mu.Unlock()
	if c == nil {
		info, err := n.currentInfo(ctx)
		return info, false, err
	}
	size, mtime := c.stat()
	info.Size = size
	if !mtime.IsZero() {
		info.Mtime = mtime
	}
	return info, true, nil
}

// liveAttrTimeout is the attribute timeout of a file that holds content: as
// good as none, so that stat and tail -f see it grow.
const liveAttrTimeout = time.Nanosecond

// fillAttr fills the attributes of the node for getattr and lookups.
func (n *fileNode) fillAttr(ctx context.Context, out *fuse.Attr) (live bool, errno syscall.Errno) {
	info, live, err := n.attrInfo(ctx)
	if err != nil {
		if errors.Is(err, bucket.ErrNotFound) {
			n.invalidate()
		}
		return false, n.fsys.errno("getattr", err)
	}
	b, key, _ := n.key()
	n.fsys.fileAttr(out, n.StableAttr().Ino, info, n.fsys.writable(b, key))
	return live, 0
}

// Getattr implements fusefs.NodeGetattrer.
func (n *fileNode) Getattr(ctx context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	live, errno := n.fillAttr(ctx, &out.Attr)
	if live {
		out.SetTimeout(liveAttrTimeout)
	}
	return errno
}

// Statfs implements fusefs.NodeStatfser.
func (n *fileNode) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// Setxattr implements fusefs.NodeSetxattrer.
func (n *fileNode) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	b, key, _ := n.key()
	if !n.fsys.writable(b, key) {
		return syscall.EROFS
	}
	return syscall.ENOTSUP
}

// Access implements fusefs.NodeAccesser.
func (n *fileNode) Access(_ context.Context, mask uint32) syscall.Errno {
	b, key, _ := n.key()
	if mask&2 != 0 && !n.fsys.writable(b, key) { // W_OK
		return syscall.EROFS
	}
	return 0
}

// openWriter returns the file's content, creating it from the current
// version, and counts one more writer. Every writer is ended with
// closeWriter.
func (n *fileNode) openWriter(ctx context.Context) (*fileContent, error) {
	c, _, err := n.openWriterLive(ctx)
	return c, err
}

// openWriterLive is openWriter that also tells whether the content was
// live before: held by another open, so that the kernel's cached pages of
// the file are its bytes (see Open).
func (n *fileNode) openWriterLive(ctx context.Context) (*fileContent, bool, error) {
	n.mu.Lock()
	if c := n.content; c != nil {
		n.writers++
		n.mu.Unlock()
		return c, true, nil
	}
	n.mu.Unlock()
	info, err := n.currentInfo(ctx)
	if errors.Is(err, bucket.ErrNotFound) {
		// Gone from S3 behind the mount's back: write it anew.
		b, key, _ := n.key()
		info, err = bucket.ObjectInfo{Key: key, LastModified: time.Now().UTC()}, nil
		n.fsys.log.Info("file was removed from S3 by another client; writing it anew", "object", "s3://"+b+"/"+key)
	}
	if err != nil {
		return nil, false, err
	}
	c, err := n.fsys.newContent(n, info)
	if err != nil {
		return nil, false, err
	}
	n.mu.Lock()
	if n.content != nil {
		// Another open made it first.
		existing := n.content
		n.writers++
		n.mu.Unlock()
		c.close()
		return existing, true, nil
	}
	n.content = c
	n.writers++
	n.mu.Unlock()
	return c, false, nil
}

// closeWriter ends a writer counted by openWriter. The last writer commits
// the content; if that fails, the content is kept in the unsaved directory
// and the error returned. Content that nothing needs any more is freed.
func (n *fileNode) closeWriter(ctx context.Context, c *fileContent) error {
	n.mu.Lock()
	n.writers--
	last := n.writers == 0
	n.mu.Unlock()
	var err error
	if last {
		if err = c.commit(context.WithoutCancel(ctx)); err != nil {
			c.mu.Lock()
			n.mu.Lock()
			reopened := n.writers > 0 // its close will try again
			n.mu.Unlock()
			if !reopened && (c.dirty || c.mtimeSet) {
				b, key, _ := n.key()
				if path, kerr := c.keepUnsaved(); kerr == nil {
					n.fsys.log.Error("upload failed; the file's content is kept locally", "object", "s3://"+b+"/"+key, "kept_at", path, "error", err.Error())
				} else {
					n.fsys.log.Error("upload failed, and the content could not be kept locally either; it is lost",
						"object", "s3://"+b+"/"+key, "error", err.Error(), "keep_error", kerr.Error())
				}
			}
			c.mu.Unlock()
		}
	}
	n.maybeDropContent(c)
	return err
}

// maybeDropContent frees the content once no writer has the file open and
// nothing in it is unsaved; a detached content lives until its last handle
// closes, since only it holds the file's bytes.
func (n *fileNode) maybeDropContent(c *fileContent) {
	n.mu.Lock()
	idle := n.content == c && n.writers == 0
	opens := len(n.handles)
	n.mu.Unlock()
	if !idle {
		return
	}
	if c.detaching.Load() {
		if opens > 0 {
			return
		}
	} else if c.pending() {
		return
	}
	n.mu.Lock()
	if n.content != c || n.writers != 0 || (c.detaching.Load() && len(n.handles) > 0) {
		n.mu.Unlock()
		return
	}
	n.content = nil
	n.mu.Unlock()
	c.close()
}

// Open implements fusefs.NodeOpener. Every handle of a file shares the
// node's content while it has one; otherwise reads pin the object's
// current ETag.
//
// An open of a file whose content is live (held by another open) keeps the
// kernel's cached pages (FOPEN_KEEP_CACHE). They hold the content's bytes:
// every change to live content comes through this kernel, whose writes
// copy into the pages before they are sent. Dropping them would be wrong,
// not just slow: a write on its way to the mount has its bytes only in
// those pages, and a read of the dropped page may reach the mount first,
// so that the page comes back without the write, and the file's end shows
// NUL bytes once the write lands.
func (n *fileNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	b, key, ok := n.key()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
	if write && !n.fsys.writable(b, key) {
		return nil, 0, syscall.EROFS
	}
	h := n.fsys.newHandle(ctx, n, flags)
	var fuseFlags uint32
	if write {
		c, live, err := n.openWriterLive(ctx)
		if err != nil {
			return nil, 0, n.fsys.errno("open", err)
		}
		if flags&syscall.O_TRUNC != 0 {
			if err := c.truncate(ctx, 0); err != nil {
				n.closeWriter(ctx, c)
				return nil, 0, n.fsys.errno("open", err)
			}
		}
		if live && flags&syscall.O_TRUNC == 0 {
			fuseFlags |= fuse.FOPEN_KEEP_CACHE
		}
		h.content = c
		n.addHandle(h)
		return h, fuseFlags, 0
	}
	if n.liveContent() != nil {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	} else {
		info, err := n.currentInfo(ctx)
		if err != nil {
			if errors.Is(err, bucket.ErrNotFound) {
				n.invalidate()
			}
			return nil, 0, n.fsys.errno("open", err)
		}
		n.mu.Lock()
		if n.cachedETag != "" && n.cachedETag == info.ETag {
			fuseFlags |= fuse.FOPEN_KEEP_CACHE
		}
		n.cachedETag = info.ETag
		n.mu.Unlock()
	}
	n.addHandle(h)
	return h, fuseFlags, 0
}

// addHandle registers an open handle, pinned to the current version.
func (n *fileNode) addHandle(h *fileHandle) {
	n.mu.Lock()
	info := n.info
	h.pinned.Store(&info)
	n.handles[h] = struct{}{}
	n.mu.Unlock()
}

// setVersion records a version this mount stored or moved the file to: the
// node, its open handles and the kernel's cache bookkeeping all see it at
// once.
func (n *fileNode) setVersion(info bucket.ObjectInfo) {
	b, _, _ := n.key()
	n.fsys.noteMtime(b, info)
	n.mu.Lock()
	n.info, n.infoAt, n.cachedETag = info, time.Now(), info.ETag
	for h := range n.handles {
		h.pinned.Store(&info)
	}
	n.mu.Unlock()
}

// committed records a version stored by this mount: setVersion, and the
// parent's listing.
func (n *fileNode) committed(info bucket.ObjectInfo) {
	n.setVersion(info)
	name, parent := n.Parent()
	if parent == nil {
		return
	}
	if d, ok := parent.Operations().(*dirNode); ok {
		d.updateListing(name, &dirEntry{info: info})
	}
}

// withWriter runs op on the file's content as a writer of its own, as
// truncate(2) without an open file does, and commits as closeWriter does.
func (n *fileNode) withWriter(ctx context.Context, op func(*fileContent) error) error {
	c, err := n.openWriter(ctx)
	if err != nil {
		return err
	}
	err = op(c)
	return errors.Join(err, n.closeWriter(ctx, c))
}

// Setattr implements fusefs.NodeSetattrer. Size changes truncate the
// content; mtime is stored in the object's metadata; mode and ownership are
// accepted and not stored, so that cp -p, rsync -a and tar work.
func (n *fileNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	b, key, ok := n.key()
	if !ok {
		return syscall.ENOENT
	}
	if !n.fsys.writable(b, key) {
		return syscall.EROFS
	}
	_, sizeSet := in.GetSize()
	_, mtimeSet := in.GetMTime()
	if !sizeSet && !mtimeSet {
		return n.Getattr(ctx, fh, out) // chmod, chown, atime: nothing to store
	}
	apply := func(c *fileContent) error {
		if size, ok := in.GetSize(); ok {
			if err := c.truncate(ctx, int64(size)); err != nil {
				return err
			}
		}
		if mtime, ok := in.GetMTime(); ok {
			c.setMtime(mtime)
		}
		return nil
	}
	// Through the handle given, or as a writer of its own, so that a
	// release racing this cannot free the content before it is stored.
	var err error
	if h, ok := fh.(*fileHandle); ok && h.content != nil {
		err = apply(h.content)
	} else {
		err = n.withWriter(ctx, apply)
	}
	if err != nil {
		return n.fsys.errno("setattr", err)
	}
	return n.Getattr(ctx, fh, out)
}

// fileHandle is one open file. While the file has content (it is open for
// writing or holds unsaved changes), every handle reads and writes that
// content. Otherwise reads come from S3 through the mount's read engine
// (package reader), for the version pinned at open, which follows this
// mount's own commits and renames of the file, and fails with ESTALE if
// another client changes it.
type fileHandle struct {
	node *fileNode
	// content is set for handles that may write; such a handle keeps the
	// content alive until it is released.
	content *fileContent
	// appending is O_APPEND: writes go to the end of the content.
	appending bool
	// truncated is set when the open emptied the file (O_TRUNC or a
	// create); wrote once anything was written through the handle.
	truncated bool
	wrote     atomic.Bool
	// tgid is the process that opened the handle.
	tgid int

	// pinned is the version reads from S3 return.
	pinned atomic.Pointer[bucket.ObjectInfo]

	// rd reads from S3, and keeps the handle's access pattern.
	rd *reader.Reader
}

var (
	_ fusefs.FileReader   = (*fileHandle)(nil)
	_ fusefs.FileWriter   = (*fileHandle)(nil)
	_ fusefs.FileFlusher  = (*fileHandle)(nil)
	_ fusefs.FileFsyncer  = (*fileHandle)(nil)
	_ fusefs.FileReleaser = (*fileHandle)(nil)
)

func (f *FS) newHandle(ctx context.Context, n *fileNode, flags uint32) *fileHandle {
	return &fileHandle{node: n, appending: flags&syscall.O_APPEND != 0, truncated: flags&syscall.O_TRUNC != 0,
		tgid: callerTgid(ctx), rd: f.reads.NewReader()}
}

// callerTgid returns the process (thread group) that made the request, or
// 0 if unknown. FUSE names the calling thread.
func callerTgid(ctx context.Context) int {
	caller, ok := fuse.FromContext(ctx)
	if !ok {
		return 0
	}
	return tgidOf(int(caller.Pid))
}

// tgidOf returns the thread group of thread tid, from /proc.
func tgidOf(tid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return tid
	}
	_, rest, ok := strings.Cut(string(data), "\nTgid:")
	if !ok {
		return tid
	}
	line, _, _ := strings.Cut(rest, "\n")
	if n, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
		return n
	}
	return tid
}

// Read implements fusefs.FileReader. It always fills dest unless the file
// ends first: the kernel takes a short read for the end of the file.
func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := h.node
	if bk, key, ok := n.key(); ok && !n.fsys.authorized(bk, key) {
		return nil, syscall.EACCES // the platform no longer authorizes the path
	}
	if c := n.liveContent(); c != nil && c.readable() {
		data, err := c.readAt(dest, off)
		c.mu.RUnlock()
		if err != nil {
			return nil, n.fsys.localErrno("read staging file", err)
		}
		return fuse.ReadResultData(data), 0
	}
	info := *h.pinned.Load()
	if off >= info.Size || off < 0 {
		return fuse.ReadResultData(nil), 0
	}
	bk, key, _ := n.key()
	obj := reader.Object{Bucket: n.fsys.opts.Bucket(bk), Key: key, ETag: info.ETag, Size: info.Size}
	k, err := h.rd.ReadAt(ctx, obj, dest, off)
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return fuse.ReadResultData(dest[:k]), 0
	case ctx.Err() != nil:
		return nil, syscall.EINTR
	case errors.Is(err, bucket.ErrNotFound) || errors.Is(err, bucket.ErrStale):
		n.invalidate() // the next getattr and open ask S3
		return nil, n.fsys.errno("read", errors.Join(bucket.ErrStale, err))
	}
	return nil, n.fsys.errno("read", err)
}

// Write implements fusefs.FileWriter.
func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.content == nil {
		return 0, syscall.EBADF
	}
	h.wrote.Store(true)
	n, err := h.content.write(ctx, data, off, h.appending)
	if err != nil {
		return 0, h.node.fsys.errno("write", err)
	}
	return uint32(n), 0
}

// Flush implements fusefs.FileFlusher. It runs on every close of a file
// descriptor, and commits the file, so that close reports a failed upload,
// when the process that opened the handle closes it and no other handle
// may still write the file. A child process closing a descriptor it
// inherited, or one writer of several closing, commits nothing: the last
// close does.
//
// A flush before anything was written to a new or truncated file does not
// store it either: shells and dd open with O_TRUNC, duplicate the
// descriptor and close the original before writing, and storing an empty
// object then would throw away the old content before the new is there.
// Release stores the file if it stays empty.
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno {
	c := h.content
	if c == nil {
		return 0
	}
	if h.truncated && !h.wrote.Load() && !c.hasUserMtime() {
		return 0
	}
	tgid := callerTgid(ctx)
	if tgid != 0 && h.tgid != 0 && tgid != h.tgid {
		return 0
	}
	n := h.node
	n.mu.Lock()
	others := n.writers > 1
	n.mu.Unlock()
	if others || n.fsys.holdsAnother(tgid, n) {
		return 0
	}
	if err := c.commit(context.WithoutCancel(ctx)); err != nil {
		return n.fsys.errno("upload", err)
	}
	return 0
}

// holdsAnother reports whether process tgid still has a descriptor open on
// the file n, so that the close being flushed is not its last: shells
// duplicate and close descriptors around every redirection (echo >&3 in a
// block appending to a file). It reads the process's descriptors from
// /proc, which asks nothing of this filesystem.
func (f *FS) holdsAnother(tgid int, n *fileNode) bool {
	b, key, ok := n.key()
	if tgid == 0 || f.mountDir == "" || !ok {
		return false
	}
	path := filepath.Join(f.mountDir, b, key)
	dir := "/proc/" + strconv.Itoa(tgid) + "/fd"
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(dir + "/" + fd.Name()); err == nil && target == path {
			return true
		}
	}
	return false
}

// Fsync implements fusefs.FileFsyncer: it stores the file as it stands, even
// in the middle of writing it; writing may go on, and the next commit
// stores the file again.
func (h *fileHandle) Fsync(ctx context.Context, _ uint32) syscall.Errno {
	c := h.content
	if c == nil {
		c = h.node.liveContent()
	}
	if c == nil {
		return 0
	}
	if err := c.commit(context.WithoutCancel(ctx)); err != nil {
		return h.node.fsys.errno("upload", err)
	}
	return 0
}

// Release implements fusefs.FileReleaser. The last writer to close commits
// the file; if that fails, the content is kept in the unsaved directory and
// the log says where.
func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	h.rd.Close()
	n := h.node
	n.mu.Lock()
	delete(n.handles, h)
	n.mu.Unlock()
	if h.content == nil {
		if c := n.liveContent(); c != nil {
			n.maybeDropContent(c) // the last reader of a detached file
		}
		return 0
	}
	if err := n.closeWriter(ctx, h.content); err != nil {
		return n.fsys.errno("upload", err)
	}
	return 0
}
