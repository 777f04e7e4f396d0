package fs

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sync/singleflight"

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

// dirListing is a directory's listing at one moment. It lives in
// FS.listings; its maps and slices are guarded by its directory's mu.
type dirListing struct {
	at      time.Time
	entries map[string]dirEntry
	names   []string // in S3 key order, then names added here
	// counted is how many entries FS.listings counts for it.
	counted atomic.Int64
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
//
// Its listing is kept in FS.listings. The kernel may keep its entries too
// (FOPEN_CACHE_DIR), while they match the listing; see kernelDirCache.
type dirNode struct {
	fusefs.Inode
	fsys *FS

	// listFlight makes the listings of the directory wanted at the same
	// time one request. It is safe for concurrent use.
	listFlight singleflight.Group

	mu sync.Mutex // guards the fields below, and the listing's maps and slices
	// seq counts the changes made here; fetching counts listings being
	// fetched, and changes holds the changes made while one was, by
	// name, so that a listing that started before a change does not undo
	// it when it is stored.
	seq      uint64
	fetching int
	changes  map[string]dirChange
	// kernel is what the kernel may hold in its cache of the entries.
	kernel kernelDirCache
}

var (
	_ fusefs.NodeLookuper       = (*dirNode)(nil)
	_ fusefs.NodeOpendirHandler = (*dirNode)(nil)
	_ fusefs.NodeGetattrer      = (*dirNode)(nil)
	_ fusefs.NodeStatfser       = (*dirNode)(nil)
	_ fusefs.NodeOnForgetter    = (*dirNode)(nil)
	_ fusefs.FileReaddirenter   = (*dirHandle)(nil)
	_ fusefs.FileSeekdirer      = (*dirHandle)(nil)
	_ fusefs.FileReleasedirer   = (*dirHandle)(nil)
)

// OnForget implements fusefs.NodeOnForgetter.
func (d *dirNode) OnForget() {
	d.fsys.inodes.release(d.StableAttr().Ino)
	d.fsys.listings.remove(d)
}

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

// freshListing returns the listing if it is younger than the metadata TTL,
// or nil. d.mu must be held.
func (d *dirNode) freshListing() *dirListing {
	l := d.fsys.listings.get(d)
	if l == nil || d.fsys.now().Sub(l.at) >= d.fsys.opts.MetadataTTL {
		return nil
	}
	return l
}

// listed looks name up in the listing. answered is true when the listing
// answers for it: it has the name and is younger than the metadata TTL, or
// lacks it and is younger than the negative TTL. found says which; e is the
// entry found.
func (d *dirNode) listed(name string) (e dirEntry, found, answered bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.freshListing()
	if l == nil {
		return dirEntry{}, false, false
	}
	if e, found = l.entries[name]; found {
		return e, true, true
	}
	return dirEntry{}, false, d.fsys.now().Sub(l.at) < d.fsys.opts.NegativeTTL
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

// Lookup implements fusefs.NodeLookuper. A fresh listing answers without
// a request: for the names it has for the metadata TTL, for the others for
// the negative TTL. Otherwise S3 is asked, and a name found that the
// listing lacks joins it.
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
	e, found, answered := d.listed(name)
	if answered && !found {
		return nil, syscall.ENOENT
	}
	if !answered {
		d.mu.Lock()
		start := d.seq
		d.mu.Unlock()
		var err error
		e, found, err = d.fsys.lookupKey(ctx, d.fsys.opts.Bucket(b), prefix, name)
		if err != nil {
			return nil, d.fsys.errno("lookup", err)
		}
		if !found {
			return nil, syscall.ENOENT
		}
		d.learned(name, e, start)
	}
	return d.newChild(ctx, b, prefix, name, e, out), 0
}

// learned adds an entry that a lookup found to a fresh listing that lacks
// it, unless the directory changed here since the lookup started.
func (d *dirNode) learned(name string, e dirEntry, start uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.freshListing()
	if l == nil || d.seq != start {
		return
	}
	if _, had := l.entries[name]; !had {
		d.fsys.listings.grew(d, l, l.apply(name, &e))
	}
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

// OpendirHandle implements fusefs.NodeOpendirHandler. The handle reads
// the entries as they are at the open (and again after a rewind), from
// the listing, which is fetched first if it is older than the metadata
// TTL. The kernel is let keep the entries while they are unchanged.
func (d *dirNode) OpendirHandle(ctx context.Context, _ uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	snap, errno := d.entries(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	h := &dirHandle{d: d, snap: snap}
	d.mu.Lock()
	cached, clear := d.kernel.open(snap.sum)
	d.mu.Unlock()
	if clear {
		// The kernel holds other entries: have it drop them now, before
		// this open returns, so that no reader sees them. The kernel
		// holds no lock of this directory during an open.
		ok := d.NotifyContent(0, 0) == 0
		d.mu.Lock()
		cached = d.kernel.cleared(snap.sum, ok)
		d.mu.Unlock()
	}
	if !cached {
		return h, 0, 0
	}
	h.cached = true
	return h, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// dirSnapshot is a directory's entries at one moment.
type dirSnapshot struct {
	entries []fuse.DirEntry
	// sum is sumEntries(entries).
	sum uint64
	// seq and listing are the directory's change count and listing the
	// entries were taken from.
	seq     uint64
	listing *dirListing
}

// changed reports whether the directory changed since s was taken: a
// change here, or another listing.
func (d *dirNode) changed(s dirSnapshot) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seq != s.seq || d.freshListing() != s.listing
}

// entries returns the directory's entries, with "." and "..". Files that
// hold content are listed whether or not S3 has them yet.
func (d *dirNode) entries(ctx context.Context) (dirSnapshot, syscall.Errno) {
	b, prefix, ok := d.location()
	if !ok {
		return dirSnapshot{}, syscall.ENOENT
	}
	if !d.fsys.authorized(b, prefix) {
		return dirSnapshot{}, syscall.EACCES
	}
	d.mu.Lock()
	l := d.freshListing()
	d.mu.Unlock()
	if l == nil {
		var errno syscall.Errno
		if l, errno = d.fetchListing(ctx, b, prefix); errno != 0 {
			return dirSnapshot{}, errno
		}
	}
	// Names this mount has nodes for show those nodes' numbers, which a
	// rename may have carried from another name; files that hold content
	// are listed even before S3 has them.
	children := d.Children()
	live := map[string]uint64{}
	for name, ch := range children {
		if n, ok := ch.Operations().(*fileNode); ok && n.liveContent() != nil {
			live[name] = ch.StableAttr().Ino
		}
	}
	ino := func(name string, dir bool, key string) uint64 {
		if ch := children[name]; ch != nil {
			switch ch.Operations().(type) {
			case *fileNode:
				if !dir {
					return ch.StableAttr().Ino
				}
			case *dirNode:
				if dir {
					return ch.StableAttr().Ino
				}
			}
		}
		return d.fsys.inodes.peek("object", b, key)
	}
	dots := dotEntries(&d.Inode, d.StableAttr().Ino)
	d.mu.Lock() // the listing's names and entries change under it
	entries := append(make([]fuse.DirEntry, 0, len(l.names)+2), dots...)
	seq := d.seq
	for _, name := range l.names {
		e := l.entries[name]
		if n, ok := live[name]; ok {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: n})
			delete(live, name)
		} else if e.dir {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: ino(name, true, prefix+name+"/")})
		} else {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: ino(name, false, prefix+name)})
		}
	}
	d.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(live)) {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: live[name]})
	}
	return dirSnapshot{entries: entries, sum: sumEntries(entries), seq: seq, listing: l}, 0
}

// sumEntries returns a hash (FNV-1a) of the entries, never 0.
func sumEntries(entries []fuse.DirEntry) uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64, n int) {
		for range n {
			h = (h ^ v&0xff) * 1099511628211
			v >>= 8
		}
	}
	for _, e := range entries {
		mix(e.Ino, 8)
		mix(uint64(e.Mode), 4)
		for i := 0; i < len(e.Name); i++ {
			mix(uint64(e.Name[i]), 1)
		}
		mix(0, 1)
	}
	return max(h, 1)
}

// kernelDirCache tracks what the kernel may hold in its cache of a
// directory's entries, so that it is used only while it matches the
// entries this mount would list.
//
// The kernel keeps the entries read through a handle opened with
// FOPEN_CACHE_DIR, and serves later opens with the same flag from them
// (go-fuse adds FOPEN_KEEP_CACHE to it, so they never drop it). It drops
// them itself when the directory's mtime or change count moves, which its
// own create, unlink, mkdir, rmdir and rename do; but a listing refreshed
// from S3 changes nothing it sees. So an open whose entries differ from
// those the cache may hold empties the cache first, with a notification,
// or, while handles that may still fill it are open, reads without it.
type kernelDirCache struct {
	// sum is the sum of the entries the cache may hold, or 0 if it holds
	// none.
	sum uint64
	// mixed is set when a handle may have filled it with other entries
	// (after a rewind).
	mixed bool
	// fillers counts the open handles opened with FOPEN_CACHE_DIR.
	fillers int
	// clearing is set while an open has the kernel drop the cache.
	clearing bool
}

// open decides whether a handle opened on entries that sum to sum may use
// the cache (cached), or must first have the kernel drop it (clear), after
// which it calls cleared.
func (k *kernelDirCache) open(sum uint64) (cached, clear bool) {
	switch {
	case k.clearing:
		return false, false
	case k.sum == 0 || (k.sum == sum && !k.mixed):
		k.sum = sum
		k.fillers++
		return true, false
	case k.fillers > 0:
		return false, false
	}
	k.clearing = true
	return false, true
}

// cleared records the end of the drop open asked for: ok if the kernel
// dropped the cache, and the handle then fills it.
func (k *kernelDirCache) cleared(sum uint64, ok bool) bool {
	k.clearing = false
	if !ok {
		return false
	}
	k.sum, k.mixed = sum, false
	k.fillers++
	return true
}

// dirHandle is an open directory: the entries at the open, or at the first
// read if the directory changed since, or at the last rewind. go-fuse calls
// one handle's methods one at a time.
type dirHandle struct {
	d *dirNode
	// cached is set if the kernel may fill its cache from the handle.
	cached bool
	snap   dirSnapshot
	// read is set once the handle was read from or rewound.
	read bool
	next int
}

// Readdirent implements fusefs.FileReaddirenter.
func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !h.read {
		// The kernel may have read nothing through the handle until now,
		// serving it from its cache until a change here made it drop
		// that: a rewind that go-fuse does not pass on.
		h.read = true
		if h.d.changed(h.snap) {
			if errno := h.retake(ctx); errno != 0 {
				return nil, errno
			}
		}
	}
	if h.next >= len(h.snap.entries) {
		return nil, 0
	}
	e := h.snap.entries[h.next]
	h.next++
	e.Off = uint64(h.next)
	return &e, 0
}

// retake takes the entries anew.
func (h *dirHandle) retake(ctx context.Context) syscall.Errno {
	snap, errno := h.d.entries(ctx)
	if errno != 0 {
		return errno
	}
	if h.cached && snap.sum != h.snap.sum {
		h.d.mu.Lock()
		h.d.kernel.mixed = true
		h.d.mu.Unlock()
	}
	h.snap, h.next = snap, 0
	return 0
}

// Seekdir implements fusefs.FileSeekdirer. A rewind (offset 0) takes the
// entries anew, as rewinddir(3) promises.
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	// A read from another offset goes on from the entries taken, whose
	// offsets the kernel holds.
	h.read = true
	if off == 0 {
		return h.retake(ctx)
	}
	if off > uint64(len(h.snap.entries)) {
		return syscall.EINVAL
	}
	h.next = int(off)
	return 0
}

// Releasedir implements fusefs.FileReleasedirer.
func (h *dirHandle) Releasedir(context.Context, uint32) {
	if h.cached {
		h.d.mu.Lock()
		h.d.kernel.fillers--
		h.d.mu.Unlock()
	}
}

// fetchListing lists the directory from S3, stores the listing, with the
// changes made here since the listing started applied over it, and
// returns it. Listings of the directory wanted at the same time are one
// request.
func (d *dirNode) fetchListing(ctx context.Context, b, prefix string) (*dirListing, syscall.Errno) {
	v, err := coalesce(ctx, &d.listFlight, "", func(ctx context.Context) (any, error) {
		return d.fetch(ctx, b, prefix)
	})
	if err != nil {
		return nil, d.fsys.errno("readdir", err)
	}
	return v.(*dirListing), 0
}

// fetch does fetchListing's work, and brings the files this mount has
// nodes for up to date with the listing.
func (d *dirNode) fetch(ctx context.Context, b, prefix string) (*dirListing, error) {
	d.mu.Lock()
	start := d.seq
	d.fetching++
	d.mu.Unlock()
	l, err := d.fsys.listDir(ctx, d.fsys.opts.Bucket(b), prefix)
	d.mu.Lock()
	d.fetching--
	if err != nil {
		if d.fetching == 0 {
			d.changes = nil
		}
		d.mu.Unlock()
		return nil, err
	}
	for name, ch := range d.changes {
		if ch.seq > start {
			l.apply(name, ch.e)
		}
	}
	if d.fetching == 0 {
		d.changes = nil
	}
	if cur := d.fsys.listings.get(d); cur != nil && cur.at.After(l.at) {
		l = cur
	} else {
		d.fsys.listings.put(d, l)
	}
	d.mu.Unlock()
	d.refreshFiles(l)
	return l, nil
}

// refreshFiles gives the files this mount has nodes for in the directory
// the metadata of the listing l, so that their next getattr or open needs
// no HEAD; those whose object changed have the kernel drop the attributes
// it holds. Files that hold content keep theirs.
func (d *dirNode) refreshFiles(l *dirListing) {
	type update struct {
		n    *fileNode
		info bucket.ObjectInfo
	}
	var updates []update
	children := d.Children()
	d.mu.Lock()
	for name, ch := range children {
		if n, ok := ch.Operations().(*fileNode); ok {
			if e, ok := l.entries[name]; ok && !e.dir {
				updates = append(updates, update{n, e.info})
			}
		}
	}
	d.mu.Unlock()
	var changed []*fileNode
	for _, u := range updates {
		u.n.mu.Lock()
		clean := u.n.content == nil && !u.n.gone && u.n.objKey == u.info.Key
		etag := u.n.info.ETag
		u.n.mu.Unlock()
		if !clean {
			continue
		}
		u.n.refresh(u.info)
		if etag != u.info.ETag {
			changed = append(changed, u.n)
		}
	}
	if len(changed) > 0 {
		// Not from inside this request: the kernel may hold locks that
		// the invalidations need.
		go func() {
			for _, n := range changed {
				n.NotifyContent(0, 0)
			}
		}()
	}
}

// apply records a change in the listing, and returns by how many entries
// it grew.
func (l *dirListing) apply(name string, e *dirEntry) int {
	_, had := l.entries[name]
	if e == nil {
		if had {
			delete(l.entries, name)
			l.names = slices.DeleteFunc(l.names, func(n string) bool { return n == name })
			return -1
		}
		return 0
	}
	l.entries[name] = *e
	if !had {
		l.names = append(l.names, name)
		return 1
	}
	return 0
}

// updateListing records a change to the directory made here: e is the new
// entry, or nil for a removal. A listing being fetched gets it too, and
// lookups of the name from now on do not join one that started before.
func (d *dirNode) updateListing(name string, e *dirEntry) {
	if b, prefix, ok := d.location(); ok {
		d.fsys.forgetFlights(b, prefix+name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	if d.fetching > 0 {
		if d.changes == nil {
			d.changes = map[string]dirChange{}
		}
		d.changes[name] = dirChange{seq: d.seq, e: e}
	}
	if l := d.fsys.listings.get(d); l != nil {
		d.fsys.listings.grew(d, l, l.apply(name, e))
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
	l.at = f.now()
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

// lookupResult is what lookupKey finds.
type lookupResult struct {
	e     dirEntry
	found bool
}

// lookupKey finds name in the directory at prefix without listing it: a
// HeadObject for the file and a one-key ListObjectsV2 for the directory, at
// the same time. Lookups of the same name at the same time are one.
func (f *FS) lookupKey(ctx context.Context, b bucket.Bucket, prefix, name string) (dirEntry, bool, error) {
	v, err := coalesce(ctx, &f.flights, lookupFlight(b.Name(), prefix+name), func(ctx context.Context) (any, error) {
		e, found, err := f.lookupKeyOnce(ctx, b, prefix, name)
		return lookupResult{e, found}, err
	})
	if err != nil {
		return dirEntry{}, false, err
	}
	r := v.(lookupResult)
	return r.e, r.found, nil
}

func (f *FS) lookupKeyOnce(ctx context.Context, b bucket.Bucket, prefix, name string) (dirEntry, bool, error) {
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
