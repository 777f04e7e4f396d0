package fs

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3mount/s3mount/internal/bucket"
)

var (
	_ fusefs.NodeCreater   = (*dirNode)(nil)
	_ fusefs.NodeMkdirer   = (*dirNode)(nil)
	_ fusefs.NodeUnlinker  = (*dirNode)(nil)
	_ fusefs.NodeRmdirer   = (*dirNode)(nil)
	_ fusefs.NodeRenamer   = (*dirNode)(nil)
	_ fusefs.NodeSetattrer = (*dirNode)(nil)
	_ fusefs.NodeAccesser  = (*dirNode)(nil)
)

// changeTarget checks that name may be created or changed in d, and returns
// d's bucket and prefix.
func (d *dirNode) changeTarget(name string) (string, string, syscall.Errno) {
	b, prefix, ok := d.location()
	if !ok {
		return "", "", syscall.ENOENT
	}
	if len(name) > maxNameLen {
		return "", "", syscall.ENAMETOOLONG
	}
	if !validName(name) {
		return "", "", syscall.EINVAL
	}
	if !d.fsys.writable(b, prefix+name) {
		return "", "", syscall.EROFS
	}
	return b, prefix, 0
}

// updateListing records a change to the directory in its cached listing, if
// it has one: e is the new entry, or nil for a removal.
func (d *dirNode) updateListing(name string, e *dirEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.listing
	if l == nil {
		return
	}
	_, had := l.entries[name]
	if e == nil {
		if had {
			delete(l.entries, name)
			l.names = slices.DeleteFunc(l.names, func(n string) bool { return n == name })
		}
		return
	}
	l.entries[name] = *e
	if !had {
		l.names = append(l.names, name)
	}
}

// Access implements fusefs.NodeAccesser.
func (d *dirNode) Access(_ context.Context, mask uint32) syscall.Errno {
	b, prefix, _ := d.location()
	if mask&2 != 0 && !d.fsys.writable(b, prefix) { // W_OK
		return syscall.EROFS
	}
	return 0
}

// Setattr implements fusefs.NodeSetattrer. Directories have no attributes
// of their own in S3; changes are accepted so that cp -a, rsync -a and tar
// work.
func (d *dirNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	b, prefix, ok := d.location()
	if !ok {
		return syscall.ENOENT
	}
	if !d.fsys.writable(b, prefix) {
		return syscall.EROFS
	}
	if mtime, ok := in.GetMTime(); ok {
		d.fsys.dirTimes.Add(b+"/"+prefix, mtime)
	}
	return d.Getattr(ctx, fh, out)
}

// Create implements fusefs.NodeCreater. The object is stored when the file
// is first flushed, so that even an empty file exists after close.
func (d *dirNode) Create(ctx context.Context, name string, _, _ uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	b, prefix, errno := d.changeTarget(name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	key := prefix + name
	info := bucket.ObjectInfo{Key: key, LastModified: time.Now().UTC(), Mtime: time.Now()}
	node := &fileNode{fsys: d.fsys, info: info, infoAt: time.Now()}
	ino := fileIno(b, key)
	ch := d.NewInode(ctx, node, fusefs.StableAttr{Mode: syscall.S_IFREG, Ino: ino})
	fn, ok := ch.Operations().(*fileNode)
	if !ok {
		return nil, nil, 0, syscall.EISDIR
	}
	fn.setInfo(info)
	h, err := d.fsys.newWriteHandle(fn, b, key, info, true)
	if err != nil {
		return nil, nil, 0, d.fsys.errno("create", err)
	}
	d.fsys.fileAttr(&out.Attr, ino, info, true)
	d.updateListing(name, &dirEntry{info: info})
	return ch, h, 0, 0
}

// Mkdir implements fusefs.NodeMkdirer with a "name/" marker object.
func (d *dirNode) Mkdir(ctx context.Context, name string, _ uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	b, prefix, errno := d.changeTarget(name)
	if errno != 0 {
		return nil, errno
	}
	marker := prefix + name + "/"
	if _, err := d.fsys.opts.Bucket(b).Put(ctx, marker, bytes.NewReader(nil), 0, time.Time{}); err != nil {
		return nil, d.fsys.errno("mkdir", err)
	}
	d.updateListing(name, &dirEntry{dir: true})
	return newDirInode(ctx, &d.Inode, d.fsys, b, marker, out), 0
}

// Unlink implements fusefs.NodeUnlinker.
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	b, prefix, errno := d.changeTarget(name)
	if errno != 0 {
		return errno
	}
	if err := d.fsys.opts.Bucket(b).Delete(ctx, prefix+name); err != nil {
		return d.fsys.errno("unlink", err)
	}
	d.updateListing(name, nil)
	return 0
}

// Rmdir implements fusefs.NodeRmdirer. A directory is empty when nothing
// but its own marker is under its prefix; implicit directories have no
// marker to delete.
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	b, prefix, errno := d.changeTarget(name)
	if errno != 0 {
		return errno
	}
	dirPrefix := prefix + name + "/"
	bk := d.fsys.opts.Bucket(b)
	page, err := bk.List(ctx, &bucket.ListRequest{Prefix: dirPrefix, MaxKeys: 2})
	if err != nil {
		return d.fsys.errno("rmdir", err)
	}
	for _, o := range page.Objects {
		if o.Key != dirPrefix {
			return syscall.ENOTEMPTY
		}
	}
	if len(page.Objects) > 0 {
		if err := bk.Delete(ctx, dirPrefix); err != nil {
			return d.fsys.errno("rmdir", err)
		}
	}
	d.updateListing(name, nil)
	return 0
}

// Rename implements fusefs.NodeRenamer: server-side copies, then deletes.
// Renames between authorized paths, and of directories holding more than
// Options.RenameLimit objects, fail with EXDEV, so that mv copies and
// deletes by itself.
func (d *dirNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	nd, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EXDEV
	}
	b, prefix, errno := d.changeTarget(name)
	if errno != 0 {
		return errno
	}
	nb, nprefix, errno := nd.changeTarget(newName)
	if errno != 0 {
		return errno
	}
	if flags&unix_RENAME_EXCHANGE != 0 {
		return syscall.EINVAL
	}
	src, dst := prefix+name, nprefix+newName
	srcRoot, _ := d.fsys.access(b, src)
	dstRoot, _ := d.fsys.access(nb, dst)
	if b != nb || srcRoot != dstRoot {
		return syscall.EXDEV
	}
	bk := d.fsys.opts.Bucket(b)
	child := d.GetChild(name)
	if child == nil {
		e, found, err := d.fsys.lookupKey(ctx, bk, prefix, name)
		if err != nil {
			return d.fsys.errno("rename", err)
		}
		if !found {
			return syscall.ENOENT
		}
		if e.dir {
			return d.renameDir(ctx, bk, src+"/", dst+"/", nd, name, newName, flags)
		}
		return d.renameFile(ctx, bk, src, dst, e.info, nd, name, newName, flags)
	}
	switch node := child.Operations().(type) {
	case *dirNode:
		return d.renameDir(ctx, bk, src+"/", dst+"/", nd, name, newName, flags)
	case *fileNode:
		// Pending writes go first, so the copy has them.
		if w := node.pendingWriter(); w != nil {
			if errno := w.commitErrno(ctx); errno != 0 {
				return errno
			}
		}
		info, err := node.attrInfo(ctx)
		if err != nil {
			return d.fsys.errno("rename", err)
		}
		return d.renameFile(ctx, bk, src, dst, info, nd, name, newName, flags)
	}
	return syscall.EINVAL
}

// unix_RENAME_EXCHANGE and unix_RENAME_NOREPLACE are renameat2's flags.
const (
	unix_RENAME_NOREPLACE = 1
	unix_RENAME_EXCHANGE  = 2
)

func (d *dirNode) renameFile(ctx context.Context, bk bucket.Bucket, src, dst string, info bucket.ObjectInfo, nd *dirNode, name, newName string, flags uint32) syscall.Errno {
	if flags&unix_RENAME_NOREPLACE != 0 {
		if _, err := bk.Stat(ctx, dst); err == nil {
			return syscall.EEXIST
		}
	}
	moved, err := bk.Copy(ctx, src, dst, info.Size, time.Time{})
	if err != nil {
		return d.fsys.errno("rename", err)
	}
	if err := bk.Delete(ctx, src); err != nil {
		return d.fsys.errno("rename", err)
	}
	if moved.Mtime.IsZero() {
		moved.Mtime = info.Mtime
	}
	d.fsys.noteMtime(bk.Name(), moved)
	d.updateListing(name, nil)
	nd.updateListing(newName, &dirEntry{info: moved})
	if ch := d.GetChild(name); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok {
			fn.setInfo(moved)
		}
	}
	return 0
}

func (d *dirNode) renameDir(ctx context.Context, bk bucket.Bucket, src, dst string, nd *dirNode, name, newName string, flags uint32) syscall.Errno {
	if strings.HasPrefix(dst, src) {
		return syscall.EINVAL // into itself
	}
	existing, err := bk.List(ctx, &bucket.ListRequest{Prefix: dst, MaxKeys: 2})
	if err != nil {
		return d.fsys.errno("rename", err)
	}
	for _, o := range existing.Objects {
		if flags&unix_RENAME_NOREPLACE != 0 {
			return syscall.EEXIST
		}
		if o.Key != dst {
			return syscall.ENOTEMPTY
		}
	}
	limit := d.fsys.opts.RenameLimit
	var objects []bucket.ObjectInfo
	req := &bucket.ListRequest{Prefix: src}
	for {
		page, err := bk.List(ctx, req)
		if err != nil {
			return d.fsys.errno("rename", err)
		}
		objects = append(objects, page.Objects...)
		if len(objects) > limit {
			d.fsys.log.Info("directory too large to rename in place; mv copies it instead", "prefix", src, "limit", limit)
			return syscall.EXDEV
		}
		if page.NextContinuationToken == "" {
			break
		}
		req.ContinuationToken = page.NextContinuationToken
	}
	for _, o := range objects {
		if _, err := bk.Copy(ctx, o.Key, dst+strings.TrimPrefix(o.Key, src), o.Size, time.Time{}); err != nil {
			return d.fsys.errno("rename", err)
		}
	}
	for _, o := range objects {
		if err := bk.Delete(ctx, o.Key); err != nil {
			return d.fsys.errno("rename", err)
		}
	}
	d.updateListing(name, nil)
	nd.updateListing(newName, &dirEntry{dir: true})
	return 0
}

var (
	_ fusefs.NodeSymlinker  = (*dirNode)(nil)
	_ fusefs.NodeLinker     = (*dirNode)(nil)
	_ fusefs.NodeMknoder    = (*dirNode)(nil)
	_ fusefs.NodeSetxattrer = (*dirNode)(nil)
)

// unsupported answers changes S3 has no place for (symlinks, hard links,
// device nodes, extended attributes): EROFS on read-only paths, ENOTSUP
// elsewhere.
func (d *dirNode) unsupported(name string) syscall.Errno {
	if _, _, errno := d.changeTarget(name); errno != 0 {
		return errno
	}
	return syscall.ENOTSUP
}

// Symlink implements fusefs.NodeSymlinker.
func (d *dirNode) Symlink(_ context.Context, _, name string, _ *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, d.unsupported(name)
}

// Link implements fusefs.NodeLinker.
func (d *dirNode) Link(_ context.Context, _ fusefs.InodeEmbedder, name string, _ *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, d.unsupported(name)
}

// Mknod implements fusefs.NodeMknoder.
func (d *dirNode) Mknod(_ context.Context, name string, _, _ uint32, _ *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, d.unsupported(name)
}

// Setxattr implements fusefs.NodeSetxattrer.
func (d *dirNode) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	b, prefix, _ := d.location()
	if !d.fsys.writable(b, prefix) {
		return syscall.EROFS
	}
	return syscall.ENOTSUP
}
