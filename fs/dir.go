package fs

import (
	"context"
	"errors"
	"slices"
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
		return newDirInode(ctx, &d.Inode, name, d.fsys, root.Bucket, prefix, out), 0
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
			ino = d.fsys.inodes.peek("object", root.Bucket, rootPrefix(root))
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

// dirEntry is one name in a listed directory.
type dirEntry struct {
	dir  bool
	info bucket.ObjectInfo // files only
}

// dirListing is a directory's listing at one moment.
type dirListing struct {
	at      time.Time
	entries map[string]dirEntry
	names   []string // in S3 key order, then names added here
}

// dirChange is a change this mount made to a directory: the new entry, or
// nil for a removal.
type dirChange struct {
	seq uint64
	e   *dirEntry
}

// dirNode is a directory inside an authorized path: the path itself, a
// common prefix, or a marker object. Its bucket and prefix come from its
// place in the tree, so a rename moves it without any bookkeeping.
type dirNode struct {
	fusefs.Inode
	fsys *FS

	mu sync.Mutex // guards the fields below, and the listing's maps and slices
	// listing is the latest listing, or nil.
	listing *dirListing
	// seq counts the changes made here; fetching counts listings being
	// fetched, and changes holds the changes made while one was, by
	// name, so that a listing that started before a change does not undo
	// it when it is stored.
	seq      uint64
	fetching int
	changes  map[string]dirChange
}

var (
	_ fusefs.NodeLookuper    = (*dirNode)(nil)
	_ fusefs.NodeReaddirer   = (*dirNode)(nil)
	_ fusefs.NodeGetattrer   = (*dirNode)(nil)
	_ fusefs.NodeStatfser    = (*dirNode)(nil)
	_ fusefs.NodeOnForgetter = (*dirNode)(nil)
)

// OnForget implements fusefs.NodeOnForgetter.
func (d *dirNode) OnForget() { d.fsys.inodes.release(d.StableAttr().Ino) }

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
// parent, and fills out. An existing node for it is reused.
func newDirInode(ctx context.Context, parent *fusefs.Inode, name string, fsys *FS, bucketName, prefix string, out *fuse.EntryOut) *fusefs.Inode {
	var ch *fusefs.Inode
	if existing := parent.GetChild(name); existing != nil {
		if _, ok := existing.Operations().(*dirNode); ok {
			ch = existing
		}
	}
	if ch == nil {
		ino := fsys.inodes.assign("object", bucketName, prefix)
		ch = parent.NewInode(ctx, &dirNode{fsys: fsys}, fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino})
	}
	fsys.dirAttr(&out.Attr, ch.StableAttr().Ino, fsys.writable(bucketName, prefix))
	if mt, ok := fsys.dirTimes.Get(bucketName + "/" + prefix); ok {
		out.SetTimes(nil, &mt, nil)
	}
	return ch
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

// listed returns the entry for name in the listing, if the listing is
// younger than the metadata TTL (fresh), and whether it is there.
func (d *dirNode) listed(name string) (e dirEntry, found, fresh bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listing == nil || time.Since(d.listing.at) >= d.fsys.opts.MetadataTTL {
		return dirEntry{}, false, false
	}
	e, found = d.listing.entries[name]
	return e, found, true
}

// liveFile returns the child file called name if it holds content (open
// for writing or unsaved): such a file exists whatever S3 says.
func (d *dirNode) liveFile(name string) *fileNode {
	ch := d.GetChild(name)
	if ch == nil {
		return nil
	}
	if fn, ok := ch.Operations().(*fileNode); ok && fn.liveContent() != nil {
		return fn
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
	if fn := d.liveFile(name); fn != nil {
		if live, errno := fn.fillAttr(ctx, &out.Attr); errno != 0 {
			return nil, errno
		} else if live {
			out.SetAttrTimeout(liveAttrTimeout)
		}
		return &fn.Inode, 0
	}
	e, found, fresh := d.listed(name)
	if fresh && !found {
		return nil, syscall.ENOENT
	}
	if !fresh {
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
// An existing node for the same name and kind is reused, and takes the new
// metadata unless it holds unsaved state.
func (d *dirNode) newChild(ctx context.Context, b, prefix, name string, e dirEntry, out *fuse.EntryOut) *fusefs.Inode {
	if e.dir {
		return newDirInode(ctx, &d.Inode, name, d.fsys, b, prefix+name+"/", out)
	}
	key := prefix + name
	var fn *fileNode
	if existing := d.GetChild(name); existing != nil {
		fn, _ = existing.Operations().(*fileNode)
	}
	if fn != nil {
		fn.refresh(e.info)
	} else {
		fn = d.fsys.newFileNode(b, key, e.info)
		ino := d.fsys.inodes.assign("object", b, key)
		d.NewInode(ctx, fn, fusefs.StableAttr{Mode: syscall.S_IFREG, Ino: ino})
	}
	live, errno := fn.fillAttr(ctx, &out.Attr)
	if errno != 0 {
		d.fsys.fileAttr(&out.Attr, fn.StableAttr().Ino, e.info, d.fsys.writable(b, key))
	}
	if live {
		// A file that holds content shows it, and is not cached.
		out.SetAttrTimeout(liveAttrTimeout)
	}
	return &fn.Inode
}

// Readdir implements fusefs.NodeReaddirer. Files that hold content are
// listed whether or not S3 has them yet.
func (d *dirNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	b, prefix, ok := d.location()
	if !ok {
		return nil, syscall.ENOENT
	}
	if !d.fsys.authorized(b, prefix) {
		return nil, syscall.EACCES
	}
	if _, _, fresh := d.listed(""); !fresh {
		if errno := d.fetchListing(ctx, b, prefix); errno != 0 {
			return nil, errno
		}
	}
	// Names this mount has nodes for show those nodes' numbers, which a
	// rename may have carried from another name; files that hold content
	// are listed even before S3 has them.
	nodes, live := map[string]uint64{}, map[string]uint64{}
	for name, ch := range d.Children() {
		switch node := ch.Operations().(type) {
		case *fileNode:
			nodes[name+"\x00f"] = ch.StableAttr().Ino
			if node.liveContent() != nil {
				live[name] = ch.StableAttr().Ino
			}
		case *dirNode:
			nodes[name+"\x00d"] = ch.StableAttr().Ino
		}
	}
	ino := func(name, kind, key string) uint64 {
		if n, ok := nodes[name+"\x00"+kind]; ok {
			return n
		}
		return d.fsys.inodes.peek("object", b, key)
	}
	d.mu.Lock()
	l := d.listing
	entries := append(make([]fuse.DirEntry, 0, len(l.names)+2), dotEntries(&d.Inode, d.StableAttr().Ino)...)
	for _, name := range l.names {
		e := l.entries[name]
		if n, ok := live[name]; ok {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: n})
			delete(live, name)
		} else if e.dir {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: ino(name, "d", prefix+name+"/")})
		} else {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: ino(name, "f", prefix+name)})
		}
	}
	d.mu.Unlock()
	for name, n := range live {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: n})
	}
	return fusefs.NewListDirStream(entries), 0
}

// fetchListing lists the directory from S3 and stores the listing, with
// the changes made here since the listing started applied over it.
func (d *dirNode) fetchListing(ctx context.Context, b, prefix string) syscall.Errno {
	d.mu.Lock()
	start := d.seq
	d.fetching++
	d.mu.Unlock()
	l, err := d.fsys.listDir(ctx, d.fsys.opts.Bucket(b), prefix)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fetching--
	if err != nil {
		if d.fetching == 0 && d.listing == nil {
			d.changes = nil
		}
		return d.fsys.errno("readdir", err)
	}
	for name, ch := range d.changes {
		if ch.seq > start {
			l.apply(name, ch.e)
		}
	}
	if d.listing == nil || !d.listing.at.After(l.at) {
		d.listing = l
	}
	if d.fetching == 0 {
		d.changes = nil
	}
	return 0
}

// apply records a change in the listing.
func (l *dirListing) apply(name string, e *dirEntry) {
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

// updateListing records a change to the directory made here: e is the new
// entry, or nil for a removal. A listing being fetched gets it too.
func (d *dirNode) updateListing(name string, e *dirEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	if d.fetching > 0 {
		if d.changes == nil {
			d.changes = map[string]dirChange{}
		}
		d.changes[name] = dirChange{seq: d.seq, e: e}
	}
	if d.listing != nil {
		d.listing.apply(name, e)
	}
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
