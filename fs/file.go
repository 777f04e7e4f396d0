package fs

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3mount/s3mount/internal/bucket"
)

// fileNode is one object. Its bucket and key come from its place in the
// tree.
type fileNode struct {
	fusefs.Inode
	fsys *FS

	mu sync.Mutex // guards info, infoAt, cachedETag and writers
	// info is the object's latest known metadata.
	info bucket.ObjectInfo
	// infoAt is when info was read from S3.
	infoAt time.Time
	// cachedETag is the ETag of the content the kernel may hold in its page
	// cache, from the last open or commit.
	cachedETag string
	// writers are the open write handles, newest last.
	writers []*writeHandle
}

var (
	_ fusefs.NodeGetattrer  = (*fileNode)(nil)
	_ fusefs.NodeOpener     = (*fileNode)(nil)
	_ fusefs.NodeSetattrer  = (*fileNode)(nil)
	_ fusefs.NodeAccesser   = (*fileNode)(nil)
	_ fusefs.NodeStatfser   = (*fileNode)(nil)
	_ fusefs.NodeSetxattrer = (*fileNode)(nil)
)

// location returns the object's bucket and key, and false if the file was
// unlinked.
func (n *fileNode) location() (string, string, bool) {
	b, key, ok := n.fsys.location(&n.Inode)
	return b, key, ok && b != "" && key != ""
}

// setInfo records fresh metadata.
func (n *fileNode) setInfo(info bucket.ObjectInfo) {
	n.mu.Lock()
	n.info, n.infoAt = info, time.Now()
	n.mu.Unlock()
}

// mergeInfo records metadata from a listing, which carries no mtime: the
// mtime known for the same ETag is kept. It returns the merged metadata.
func (n *fileNode) mergeInfo(listed bucket.ObjectInfo) bucket.ObjectInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	if listed.Mtime.IsZero() && listed.ETag == n.info.ETag {
		listed.Mtime = n.info.Mtime
	}
	n.info, n.infoAt = listed, time.Now()
	return listed
}

// currentInfo returns the metadata, refreshed from S3 if older than the
// metadata TTL.
func (n *fileNode) currentInfo(ctx context.Context) (bucket.ObjectInfo, error) {
	n.mu.Lock()
	info, fresh := n.info, time.Since(n.infoAt) < n.fsys.opts.MetadataTTL
	n.mu.Unlock()
	if fresh {
		return info, nil
	}
	b, key, ok := n.location()
	if !ok {
		return info, nil // unlinked: nothing to refresh from
	}
	info, err := n.fsys.opts.Bucket(b).Stat(ctx, key)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	n.fsys.noteMtime(b, info)
	n.setInfo(info)
	return info, nil
}

// pendingWriter returns the newest open write handle with changes not yet
// in S3, or nil. A handle that was flushed but not yet released (the kernel
// releases asynchronously after close) holds nothing pending.
func (n *fileNode) pendingWriter() *writeHandle {
	n.mu.Lock()
	writers := slices.Clone(n.writers)
	n.mu.Unlock()
	for _, w := range slices.Backward(writers) {
		if w.pending() {
			return w
		}
	}
	return nil
}

// attrInfo returns what getattr reports: a pending writer's size and mtime
// win over the object's.
func (n *fileNode) attrInfo(ctx context.Context) (bucket.ObjectInfo, error) {
	if w := n.pendingWriter(); w != nil {
		return w.attrInfo(), nil
	}
	return n.currentInfo(ctx)
}

// Getattr implements fusefs.NodeGetattrer.
func (n *fileNode) Getattr(ctx context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	info, err := n.attrInfo(ctx)
	if err != nil {
		return n.fsys.errno("getattr", err)
	}
	b, key, _ := n.location()
	n.fsys.fileAttr(&out.Attr, n.StableAttr().Ino, info, n.fsys.writable(b, key))
	return 0
}

// Statfs implements fusefs.NodeStatfser.
func (n *fileNode) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// Setxattr implements fusefs.NodeSetxattrer.
func (n *fileNode) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	b, key, _ := n.location()
	if !n.fsys.writable(b, key) {
		return syscall.EROFS
	}
	return syscall.ENOTSUP
}

// Access implements fusefs.NodeAccesser.
func (n *fileNode) Access(_ context.Context, mask uint32) syscall.Errno {
	b, key, _ := n.location()
	if mask&2 != 0 && !n.fsys.writable(b, key) { // W_OK
		return syscall.EROFS
	}
	return 0
}

// Open implements fusefs.NodeOpener. Reads pin the object's current ETag;
// writes go to a staging file and reach S3 on flush, fsync or release.
func (n *fileNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	b, key, ok := n.location()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		if !n.fsys.writable(b, key) {
			return nil, 0, syscall.EROFS
		}
		info, err := n.currentInfo(ctx)
		if err != nil {
			return nil, 0, n.fsys.errno("open", err)
		}
		h, err := n.fsys.newWriteHandle(n, b, key, info, flags&syscall.O_TRUNC != 0)
		if err != nil {
			return nil, 0, n.fsys.errno("open", err)
		}
		return h, 0, 0
	}
	info, err := n.currentInfo(ctx)
	if err != nil {
		return nil, 0, n.fsys.errno("open", err)
	}
	n.mu.Lock()
	keep := n.cachedETag != "" && n.cachedETag == info.ETag
	n.cachedETag = info.ETag
	n.mu.Unlock()
	var fuseFlags uint32
	if keep {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	return newReadHandle(n, b, key, info), fuseFlags, 0
}

// Read tuning. A stream's ranged GET starts at startWindow bytes and doubles
// on every sequential continuation up to maxWindow. Reads a little ahead of
// the stream skip forward in it; reads a little behind are served from the
// bytes it just returned, which absorbs the kernel's out-of-order readahead.
const (
	startWindow  = 1 << 20
	maxWindow    = 64 << 20
	seekForward  = 4 << 20
	keepBehind   = 2 << 20
	readAttempts = 3
)

// readHandle reads one version of an object through a stream of ranged GETs.
type readHandle struct {
	node *fileNode
	b    bucket.Bucket
	key  string
	info bucket.ObjectInfo // the version being read

	// ctx lives as long as the handle; streams are opened under it, not
	// under a FUSE request's context, because they outlive one request.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex // guards everything below; held across network calls
	// body is the open GET's body, or nil.
	body io.ReadCloser
	// cancelBody aborts the open GET.
	cancelBody context.CancelFunc
	// pos is the offset of the next byte body yields, and end the offset
	// just past its range.
	pos, end int64
	// window is the length of the last GET range.
	window int64
	// behind holds the bytes just before pos that the stream returned.
	behind []byte
}

var (
	_ fusefs.FileReader   = (*readHandle)(nil)
	_ fusefs.FileReleaser = (*readHandle)(nil)
)

func newReadHandle(n *fileNode, bucketName, key string, info bucket.ObjectInfo) *readHandle {
	ctx, cancel := context.WithCancel(context.Background())
	return &readHandle{node: n, b: n.fsys.opts.Bucket(bucketName), key: key, info: info, ctx: ctx, cancel: cancel}
}

// Read implements fusefs.FileReader. It always fills dest unless the object
// ends first: the kernel takes a short read for the end of the file.
func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if bk, key, ok := h.node.location(); ok && !h.node.fsys.authorized(bk, key) {
		return nil, syscall.EACCES // the platform no longer authorizes the path
	}
	if off >= h.info.Size || off < 0 {
		return fuse.ReadResultData(nil), 0
	}
	n := int(min(int64(len(dest)), h.info.Size-off))
	h.mu.Lock()
	defer h.mu.Unlock()
	filled := h.fromBehind(dest[:n], off)
	failures := 0
	for filled < n {
		cur := off + int64(filled)
		if err := h.seek(ctx, cur, int64(n-filled)); err != nil {
			return nil, h.node.fsys.errno("read", err)
		}
		k, err := h.readStream(ctx, dest[filled:n])
		filled += k
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) && h.pos == h.end:
			h.closeStream() // range done; the next one continues it
		case ctx.Err() != nil:
			h.closeStream()
			return nil, syscall.EINTR
		default:
			// The connection dropped or the body ended early: resume
			// from where it stopped.
			h.closeStream()
			failures++
			if failures >= readAttempts {
				h.node.fsys.log.Error("read failed", "object", "s3://"+h.b.Name()+"/"+h.key, "offset", cur, "error", err.Error())
				return nil, syscall.EIO
			}
			h.node.fsys.log.Debug("read stream broke; resuming", "object", "s3://"+h.b.Name()+"/"+h.key, "offset", h.pos, "error", err.Error())
		}
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// fromBehind copies into p the part of it, from off, that the stream just
// returned, and returns how much it copied.
func (h *readHandle) fromBehind(p []byte, off int64) int {
	start := h.pos - int64(len(h.behind))
	if h.body == nil || off < start || off >= h.pos {
		return 0
	}
	return copy(p, h.behind[off-start:])
}

// seek makes the stream yield cur next, skipping forward in it or opening a
// new GET. need is how many bytes the current read still wants.
func (h *readHandle) seek(ctx context.Context, cur, need int64) error {
	if h.body != nil && cur >= h.pos && cur < h.end && cur-h.pos <= seekForward {
		if cur > h.pos {
			if _, err := h.readStream(ctx, make([]byte, cur-h.pos)); err != nil {
				h.closeStream()
			}
		}
		if h.body != nil && h.pos == cur {
			return nil
		}
	}
	// Reads that land near the end of the last range continue a sequential
	// scan, even when the kernel's concurrent readahead reorders them.
	sequential := h.end > 0 && cur >= h.end-keepBehind && cur <= h.end+seekForward
	h.closeStream()
	if sequential {
		h.window = min(2*h.window, maxWindow)
	} else {
		h.window = startWindow
	}
	length := min(max(need, h.window), h.info.Size-cur)
	getCtx, cancel := context.WithCancel(h.ctx)
	stop := context.AfterFunc(ctx, cancel)
	body, err := h.b.Read(getCtx, h.key, cur, length, h.info.ETag)
	stop()
	if err != nil {
		cancel()
		if errors.Is(err, bucket.ErrNotFound) {
			err = errors.Join(bucket.ErrStale, err)
		}
		if errors.Is(err, bucket.ErrStale) {
			h.node.setInfo(bucket.ObjectInfo{}) // make the next lookup ask S3
		}
		return err
	}
	h.body, h.cancelBody, h.pos, h.end = body, cancel, cur, cur+length
	h.behind = h.behind[:0]
	return nil
}

// readStream fills p from the stream, keeping what it read in behind. A FUSE
// interrupt (ctx) aborts the GET.
func (h *readHandle) readStream(ctx context.Context, p []byte) (int, error) {
	stop := context.AfterFunc(ctx, h.cancelBody)
	k, err := io.ReadFull(h.body, p)
	stop()
	h.pos += int64(k)
	h.remember(p[:k])
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	if errors.Is(err, io.EOF) && h.pos != h.end {
		err = io.ErrUnexpectedEOF // the body ended before its range did
	}
	return k, err
}

// remember appends p to behind, keeping at most keepBehind bytes.
func (h *readHandle) remember(p []byte) {
	if len(p) >= keepBehind {
		h.behind = append(h.behind[:0], p[len(p)-keepBehind:]...)
		return
	}
	if len(h.behind)+len(p) > keepBehind {
		drop := len(h.behind) + len(p) - keepBehind
		h.behind = append(h.behind[:0], h.behind[drop:]...)
	}
	h.behind = append(h.behind, p...)
}

// closeStream abandons the open GET, if any.
func (h *readHandle) closeStream() {
	if h.body == nil {
		return
	}
	h.cancelBody()
	h.body.Close()
	h.body, h.cancelBody = nil, nil
	h.behind = h.behind[:0]
}

// Release implements fusefs.FileReleaser.
func (h *readHandle) Release(context.Context) syscall.Errno {
	h.mu.Lock()
	h.closeStream()
	h.mu.Unlock()
	h.cancel()
	return 0
}
