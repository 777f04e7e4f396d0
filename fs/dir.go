package fs

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3mount/s3mount/internal/bucket"
)

// synthDir is the mount root, a bucket directory, or a prefix segment above
// an authorized path. It lists only what leads to authorized paths, and
// cannot be changed.
type synthDir struct {
	fusefs.Inode
	readOnlyDir
	fsys *FS
	// loc is "" for the root, "bucket", or "bucket/seg/...".
	loc string
}

var (
	_ fusefs.NodeLookuper  = (*synthDir)(nil)
	_ fusefs.NodeReaddirer = (*synthDir)(nil)
	_ fusefs.NodeGetattrer = (*synthDir)(nil)
	_ fusefs.NodeStatfser  = (*synthDir)(nil)
)

func (d *synthDir) ino() uint64 {
	if d.loc == "" {
		return 1
	}
	return inodeNumber("synthetic", "", d.loc)
}

// Getattr implements fusefs.NodeGetattrer.
func (d *synthDir) Getattr(_ context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.dirAttr(&out.Attr, d.ino(), false)
	return 0
}

// Statfs implements fusefs.NodeStatfser.
func (d *synthDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// Lookup implements fusefs.NodeLookuper.
func (d *synthDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	loc, kind, root := d.fsys.tree.Load().child(d.loc, name)
	switch kind {
	case kindSynthetic:
		child := &synthDir{fsys: d.fsys, loc: loc}
		d.fsys.dirAttr(&out.Attr, child.ino(), false)
		return d.NewInode(ctx, child, fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: child.ino()}), 0
	case kindRoot:
		prefix := ""
		if root.Prefix != "" {
			prefix = root.Prefix + "/"
		}
		return newDirInode(ctx, &d.Inode, d.fsys, root.Bucket, prefix, out), 0
	}
	return nil, syscall.ENOENT
}

// Readdir implements fusefs.NodeReaddirer.
func (d *synthDir) Readdir(context.Context) (fusefs.DirStream, syscall.Errno) {
	t := d.fsys.tree.Load()
	entries := dotEntries(&d.Inode, d.ino())
	for _, name := range t.children[d.loc] {
		loc, kind, root := t.child(d.loc, name)
		ino := inodeNumber("synthetic", "", loc)
		if kind == kindRoot {
			ino = dirIno(root.Bucket, rootPrefix(root))
		}
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: ino})
	}
	return fusefs.NewListDirStream(entries), 0
}

// dotEntries returns the "." and ".." entries of a directory listing.
func dotEntries(self *fusefs.Inode, ino uint64) []fuse.DirEntry {
	parentIno := uint64(1)
	if _, parent := self.Parent(); parent != nil {
		parentIno = parent.StableAttr().Ino
	}
	return []fuse.DirEntry{
		{Name: ".", Mode: syscall.S_IFDIR, Ino: ino},
		{Name: "..", Mode: syscall.S_IFDIR, Ino: parentIno},
	}
}

func rootPrefix(r Root) string {
	if r.Prefix == "" {
		return ""
	}
	return r.Prefix + "/"
}

// dirIno is the inode number of the directory at prefix ("" or ending in "/").
func dirIno(bucketName, prefix string) uint64 {
	return inodeNumber("object", bucketName, prefix)
}

// fileIno is the inode number of the file at key.
func fileIno(bucketName, key string) uint64 {
	return inodeNumber("object", bucketName, key)
}

// dirEntry is one name in a listed directory.
type dirEntry struct {
	dir  bool
	info bucket.ObjectInfo // files only
}

// dirListing is a directory's listing at one moment.
type dirListing struct {
	at      time.Time
	entries map[string]dirEntry
	names   []string // in S3 key order
}

// dirNode is a directory inside an authorized path: the path itself, a
// common prefix, or a marker object. Its bucket and prefix come from its
// place in the tree, so a rename moves it without any bookkeeping.
type dirNode struct {
	fusefs.Inode
	fsys *FS

	mu sync.Mutex // guards listing
	// listing is the latest listing, or nil.
	listing *dirListing
}

var (
	_ fusefs.NodeLookuper  = (*dirNode)(nil)
	_ fusefs.NodeReaddirer = (*dirNode)(nil)
	_ fusefs.NodeGetattrer = (*dirNode)(nil)
	_ fusefs.NodeStatfser  = (*dirNode)(nil)
)

// location returns the bucket and the key prefix of the directory's
// contents ("" for a whole bucket, otherwise ending in "/"), and false if
// the directory is no longer in the tree.
func (d *dirNode) location() (string, string, bool) {
	b, key, ok := d.fsys.location(&d.Inode)
	if !ok || b == "" {
		return "", "", false
	}
	if key != "" {
		key += "/"
	}
	return b, key, true
}

// newDirInode returns the inode for the directory at prefix, a child of
// parent, and fills out.
func newDirInode(ctx context.Context, parent *fusefs.Inode, fsys *FS, bucketName, prefix string, out *fuse.EntryOut) *fusefs.Inode {
	node := &dirNode{fsys: fsys}
	ino := dirIno(bucketName, prefix)
	fsys.dirAttr(&out.Attr, ino, fsys.writable(bucketName, prefix))
	if mt, ok := fsys.dirTimes.Get(bucketName + "/" + prefix); ok {
		out.SetTimes(nil, &mt, nil)
	}
	return parent.NewInode(ctx, node, fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino})
}

// Getattr implements fusefs.NodeGetattrer.
func (d *dirNode) Getattr(_ context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	b, prefix, ok := d.location()
	if !ok {
		return syscall.ENOENT
	}
	d.fsys.dirAttr(&out.Attr, d.StableAttr().Ino, d.fsys.writable(b, prefix))
	if mt, ok := d.fsys.dirTimes.Get(b + "/" + prefix); ok {
		out.SetTimes(nil, &mt, nil)
	}
	return 0
}

// Statfs implements fusefs.NodeStatfser.
func (d *dirNode) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// freshListing returns the listing if it is younger than the metadata TTL.
func (d *dirNode) freshListing() *dirListing {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listing != nil && time.Since(d.listing.at) < d.fsys.opts.MetadataTTL {
		return d.listing
	}
	return nil
}

// Lookup implements fusefs.NodeLookuper.
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if len(name) > maxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	if !validName(name) {
		return nil, syscall.ENOENT
	}
	b, prefix, ok := d.location()
	if !ok {
		return nil, syscall.ENOENT
	}
	if !d.fsys.authorized(b, prefix+name) {
		return nil, syscall.EACCES
	}
	var e dirEntry
	if l := d.freshListing(); l != nil {
		var ok bool
		if e, ok = l.entries[name]; !ok {
			return nil, syscall.ENOENT
		}
	} else {
		var found bool
		var err error
		e, found, err = d.fsys.lookupKey(ctx, d.fsys.opts.Bucket(b), prefix, name)
		if err != nil {
			return nil, d.fsys.errno("lookup", err)
		}
		if !found {
			return nil, syscall.ENOENT
		}
	}
	return d.newChild(ctx, b, prefix, name, e, out), 0
}

// newChild returns the inode for a listed or looked-up entry, and fills out.
func (d *dirNode) newChild(ctx context.Context, b, prefix, name string, e dirEntry, out *fuse.EntryOut) *fusefs.Inode {
	if e.dir {
		return newDirInode(ctx, &d.Inode, d.fsys, b, prefix+name+"/", out)
	}
	key := prefix + name
	ino := fileIno(b, key)
	node := &fileNode{fsys: d.fsys, info: e.info, infoAt: time.Now()}
	ch := d.NewInode(ctx, node, fusefs.StableAttr{Mode: syscall.S_IFREG, Ino: ino})
	info := e.info
	if existing, ok := ch.Operations().(*fileNode); ok && existing != node {
		info = existing.mergeInfo(e.info)
	}
	d.fsys.fileAttr(&out.Attr, ino, info, d.fsys.writable(b, key))
	return ch
}

// Readdir implements fusefs.NodeReaddirer.
func (d *dirNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	b, prefix, ok := d.location()
	if !ok {
		return nil, syscall.ENOENT
	}
	if !d.fsys.authorized(b, prefix) {
		return nil, syscall.EACCES
	}
	l := d.freshListing()
	if l == nil {
		var err error
		if l, err = d.fsys.listDir(ctx, d.fsys.opts.Bucket(b), prefix); err != nil {
			return nil, d.fsys.errno("readdir", err)
		}
		d.mu.Lock()
		d.listing = l
		d.mu.Unlock()
	}
	entries := append(make([]fuse.DirEntry, 0, len(l.names)+2), dotEntries(&d.Inode, d.StableAttr().Ino)...)
	for _, name := range l.names {
		if e := l.entries[name]; e.dir {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: dirIno(b, prefix+name+"/")})
		} else {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: fileIno(b, prefix+name)})
		}
	}
	return fusefs.NewListDirStream(entries), 0
}

// listDir lists the directory at prefix in full, one page after another.
func (f *FS) listDir(ctx context.Context, b bucket.Bucket, prefix string) (*dirListing, error) {
	l := &dirListing{entries: map[string]dirEntry{}}
	req := &bucket.ListRequest{Prefix: prefix, Delimiter: "/"}
	for {
		page, err := b.List(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, cp := range page.CommonPrefixes {
			f.addEntry(l, b.Name(), prefix, cp, dirEntry{dir: true})
		}
		for _, o := range page.Objects {
			f.addEntry(l, b.Name(), prefix, o.Key, dirEntry{info: f.withMtime(b.Name(), o)})
		}
		if page.NextContinuationToken == "" {
			break
		}
		req.ContinuationToken = page.NextContinuationToken
	}
	l.at = time.Now()
	return l, nil
}

// addEntry adds a listed key to l. Directories win over objects of the same
// name.
func (f *FS) addEntry(l *dirListing, bucketName, prefix, key string, e dirEntry) {
	name, isDir, ok := childName(prefix, key)
	if !ok {
		if key != prefix {
			f.logOnce("key cannot be shown as a file name; skipping it", bucketName, key)
		}
		return
	}
	e.dir = e.dir || isDir
	old, seen := l.entries[name]
	switch {
	case !seen:
		l.names = append(l.names, name)
		l.entries[name] = e
	case old.dir && !e.dir:
		f.logOnce("object is hidden by a directory of the same name", bucketName, key)
	case !old.dir && e.dir:
		f.logOnce("object is hidden by a directory of the same name", bucketName, prefix+name)
		l.entries[name] = e
	}
}

// lookupKey finds name in the directory at prefix without listing it: a
// HeadObject for the file and a one-key ListObjectsV2 for the directory, at
// the same time.
func (f *FS) lookupKey(ctx context.Context, b bucket.Bucket, prefix, name string) (dirEntry, bool, error) {
	key := prefix + name
	var (
		wg   sync.WaitGroup
		info bucket.ObjectInfo
		herr error
	)
	wg.Go(func() {
		info, herr = b.Stat(ctx, key)
		f.noteMtime(b.Name(), info)
	})
	page, lerr := b.List(ctx, &bucket.ListRequest{Prefix: key + "/", MaxKeys: 1})
	wg.Wait()
	if lerr != nil {
		return dirEntry{}, false, lerr
	}
	if len(page.Objects) > 0 || len(page.CommonPrefixes) > 0 {
		if herr == nil {
			f.logOnce("object is hidden by a directory of the same name", b.Name(), key)
		}
		return dirEntry{dir: true}, true, nil
	}
	if errors.Is(herr, bucket.ErrNotFound) {
		return dirEntry{}, false, nil
	}
	if herr != nil {
		return dirEntry{}, false, herr
	}
	return dirEntry{info: info}, true, nil
}

// readOnlyDir answers every change to a synthetic directory with EROFS.
type readOnlyDir struct{}

var (
	_ fusefs.NodeMkdirer    = (*readOnlyDir)(nil)
	_ fusefs.NodeCreater    = (*readOnlyDir)(nil)
	_ fusefs.NodeUnlinker   = (*readOnlyDir)(nil)
	_ fusefs.NodeRmdirer    = (*readOnlyDir)(nil)
	_ fusefs.NodeRenamer    = (*readOnlyDir)(nil)
	_ fusefs.NodeSymlinker  = (*readOnlyDir)(nil)
	_ fusefs.NodeLinker     = (*readOnlyDir)(nil)
	_ fusefs.NodeMknoder    = (*readOnlyDir)(nil)
	_ fusefs.NodeSetattrer  = (*readOnlyDir)(nil)
	_ fusefs.NodeSetxattrer = (*readOnlyDir)(nil)
	_ fusefs.NodeAccesser   = (*readOnlyDir)(nil)
)

func (readOnlyDir) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyDir) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (readOnlyDir) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }

func (readOnlyDir) Rmdir(context.Context, string) syscall.Errno { return syscall.EROFS }

func (readOnlyDir) Rename(context.Context, string, fusefs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}

func (readOnlyDir) Symlink(context.Context, string, string, *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyDir) Link(context.Context, fusefs.InodeEmbedder, string, *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyDir) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyDir) Setattr(context.Context, fusefs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (readOnlyDir) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.EROFS
}

// Access implements fusefs.NodeAccesser: asking for write access fails
// with EROFS, as access(2) does on a read-only mount.
func (readOnlyDir) Access(_ context.Context, mask uint32) syscall.Errno {
	if mask&2 != 0 { // W_OK
		return syscall.EROFS
	}
	return 0
}
