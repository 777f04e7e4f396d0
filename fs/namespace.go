package fs

import (
	"bytes"
	"context"
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

// Create implements fusefs.NodeCreater. The new file is listed, and seen
// by every lookup, from now on; it is stored at its commit, so that even an
// empty file exists after close.
func (d *dirNode) Create(ctx context.Context, name string, flags, _ uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	b, prefix, errno := d.changeTarget(name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	key := prefix + name
	var fn *fileNode
	if existing := d.GetChild(name); existing != nil {
		if fn, _ = existing.Operations().(*fileNode); fn == nil {
			return nil, nil, 0, syscall.EISDIR
		}
	}
	now := time.Now()
	info := bucket.ObjectInfo{Key: key, LastModified: now.UTC(), Mtime: now}
	if fn == nil {
		fn = d.fsys.newFileNode(b, key, info)
		d.NewInode(ctx, fn, fusefs.StableAttr{Mode: syscall.S_IFREG, Ino: d.fsys.inodes.assign("object", b, key)})
	}
	c, err := fn.openWriter(ctx)
	if err != nil {
		return nil, nil, 0, d.fsys.errno("create", err)
	}
	if err := c.truncate(ctx, 0); err != nil {
		fn.closeWriter(ctx, c)
		return nil, nil, 0, d.fsys.errno("create", err)
	}
	h := d.fsys.newHandle(ctx, fn, flags|syscall.O_TRUNC)
	h.content = c
	fn.addHandle(h)
	d.fsys.fileAttr(&out.Attr, fn.StableAttr().Ino, info, true)
	out.SetAttrTimeout(liveAttrTimeout)
	d.updateListing(name, &dirEntry{info: info})
	return &fn.Inode, h, 0, 0
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
	return newDirInode(ctx, &d.Inode, name, d.fsys, b, marker, out), 0
}

// childFile returns the child file called name, if this mount has a node
// for it.
func (d *dirNode) childFile(name string) *fileNode {
	if ch := d.GetChild(name); ch != nil {
		fn, _ := ch.Operations().(*fileNode)
		return fn
	}
	return nil
}

// Unlink implements fusefs.NodeUnlinker. A file still open is detached
// first: an upload under way stops, nothing of it is stored, and its handles
// keep working until they close.
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	b, prefix, errno := d.changeTarget(name)
	if errno != 0 {
		return errno
	}
	if fn := d.childFile(name); fn != nil {
		fn.detach(ctx)
	}
	if err := d.fsys.opts.Bucket(b).Delete(ctx, prefix+name); err != nil {
		return d.fsys.errno("unlink", err)
	}
	d.updateListing(name, nil)
	return 0
}

// Rmdir implements fusefs.NodeRmdirer. A directory is empty when nothing
// but its own marker is under its prefix, and no file in it is open for
// writing or unsaved; implicit directories have no marker to delete.
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	b, prefix, errno := d.changeTarget(name)
	if errno != 0 {
		return errno
	}
	if ch := d.GetChild(name); ch != nil {
		for _, grandchild := range ch.Children() {
			if fn, ok := grandchild.Operations().(*fileNode); ok && fn.liveContent() != nil {
				return syscall.ENOTEMPTY
			}
		}
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
	if ch := d.GetChild(name); ch != nil {
		d.fsys.inodes.detach(ch.StableAttr().Ino)
	}
	d.updateListing(name, nil)
	return 0
}

// Rename implements fusefs.NodeRenamer: server-side copies, then deletes.
// Renames between authorized paths, and of directories holding more than
// Options.RenameLimit objects, fail with EXDEV, so that mv copies and
// deletes by itself. Open files follow the rename: their unsaved content is
// stored at the new name when it is committed. Renames run one at a time.
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
	d.fsys.renameMu.Lock()
	defer d.fsys.renameMu.Unlock()
	bk := d.fsys.opts.Bucket(b)
	var fn *fileNode
	if child := d.GetChild(name); child != nil {
		switch node := child.Operations().(type) {
		case *dirNode:
			return d.renameDir(ctx, bk, src+"/", dst+"/", child, nd, name, newName, flags)
		case *fileNode:
			fn = node
		}
	}
	var info bucket.ObjectInfo
	if fn == nil {
		e, found, err := d.fsys.lookupKey(ctx, bk, prefix, name)
		if err != nil {
			return d.fsys.errno("rename", err)
		}
		if !found {
			return syscall.ENOENT
		}
		if e.dir {
			return d.renameDir(ctx, bk, src+"/", dst+"/", nil, nd, name, newName, flags)
		}
		info = e.info
	}
	return d.renameFile(ctx, bk, src, dst, fn, info, nd, name, newName, flags)
}

// unix_RENAME_EXCHANGE and unix_RENAME_NOREPLACE are renameat2's flags.
const (
	unix_RENAME_NOREPLACE = 1
	unix_RENAME_EXCHANGE  = 2
)

// renameFile renames the file src, whose node is fn if this mount has one
// (otherwise info describes it), to dst. d.fsys.renameMu is held.
func (d *dirNode) renameFile(ctx context.Context, bk bucket.Bucket, src, dst string, fn *fileNode, info bucket.ObjectInfo, nd *dirNode, name, newName string, flags uint32) syscall.Errno {
	target := nd.childFile(newName)
	if flags&unix_RENAME_NOREPLACE != 0 {
		if target != nil && target.liveContent() != nil {
			return syscall.EEXIST
		}
		if _, err := bk.Stat(ctx, dst); err == nil {
			return syscall.EEXIST
		}
	}
	var c *fileContent
	if fn != nil {
		if c = fn.liveContent(); c != nil {
			c.mu.Lock()
			defer c.mu.Unlock()
		}
	}
	if target != nil && target != fn {
		target.detach(ctx) // replaced: its unsaved content goes with it
	}
	if c != nil && (c.dirty || c.detached) {
		// Unsaved data follows the file and is stored at dst when it is
		// committed; the old version at src goes now.
		c.dropUpload()
		if c.base.ETag != "" {
			if err := bk.Delete(ctx, src); err != nil {
				return d.fsys.errno("rename", err)
			}
		}
		fn.setKey(bk.Name(), dst)
		size, mtime := c.stat()
		live := c.base
		live.Key, live.Size = dst, size
		if !mtime.IsZero() {
			live.Mtime = mtime
		}
		d.updateListing(name, nil)
		nd.updateListing(newName, &dirEntry{info: live})
		return 0
	}
	var mtime time.Time
	if c != nil {
		info = c.base
		if c.mtimeSet {
			mtime = c.mtime
		}
	} else if fn != nil {
		var err error
		if info, err = fn.currentInfo(ctx); err != nil {
			return d.fsys.errno("rename", err)
		}
	}
	moved, err := bk.Copy(ctx, src, dst, info.Size, mtime)
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
	if fn != nil {
		fn.setKey(bk.Name(), dst)
		if c != nil {
			c.base, c.mtimeSet = moved, false
		}
		fn.setVersion(moved)
	}
	d.updateListing(name, nil)
	nd.updateListing(newName, &dirEntry{info: moved})
	return 0
}

// renameDir renames the directory src to dst (both ending in "/"); child
// is its node, if this mount has one. d.fsys.renameMu is held.
func (d *dirNode) renameDir(ctx context.Context, bk bucket.Bucket, src, dst string, child *fusefs.Inode, nd *dirNode, name, newName string, flags uint32) syscall.Errno {
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
	// The nodes this mount has below the directory follow it. Files that
	// hold content are held still meanwhile, so that no commit stores at
	// an old key.
	var files []movedFile
	var dirs []movedDir
	if child != nil {
		collectMoved(child, src, &files, &dirs)
	}
	for _, m := range files {
		if m.c != nil {
			m.c.mu.Lock()
			defer m.c.mu.Unlock()
			m.c.dropUpload()
		}
	}
	moved := map[string]bucket.ObjectInfo{}
	for _, o := range objects {
		info, err := bk.Copy(ctx, o.Key, dst+strings.TrimPrefix(o.Key, src), o.Size, time.Time{})
		if err != nil {
			return d.fsys.errno("rename", err)
		}
		moved[o.Key] = info
	}
	for _, o := range objects {
		if err := bk.Delete(ctx, o.Key); err != nil {
			return d.fsys.errno("rename", err)
		}
	}
	for _, m := range files {
		m.n.setKey(bk.Name(), dst+strings.TrimPrefix(m.key, src))
		if info, ok := moved[m.key]; ok {
			if m.c != nil && !m.c.dirty {
				m.c.base = info
			}
			m.n.setVersion(info)
		}
	}
	for _, m := range dirs {
		d.fsys.inodes.move(m.ino, "object", bk.Name(), dst+strings.TrimPrefix(m.prefix, src))
	}
	d.updateListing(name, nil)
	nd.updateListing(newName, &dirEntry{dir: true})
	return 0
}

// movedFile and movedDir are nodes below a directory being renamed, with
// their keys before the rename.
type movedFile struct {
	n   *fileNode
	c   *fileContent
	key string
}

type movedDir struct {
	ino    uint64
	prefix string
}

// collectMoved gathers the nodes below the directory node dir, whose prefix
// is prefix, and the directory itself.
func collectMoved(dir *fusefs.Inode, prefix string, files *[]movedFile, dirs *[]movedDir) {
	*dirs = append(*dirs, movedDir{ino: dir.StableAttr().Ino, prefix: prefix})
	for name, ch := range dir.Children() {
		switch node := ch.Operations().(type) {
		case *fileNode:
			if _, key, ok := node.key(); ok {
				*files = append(*files, movedFile{n: node, c: node.liveContent(), key: key})
			}
		case *dirNode:
			collectMoved(ch, prefix+name+"/", files, dirs)
		}
	}
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
