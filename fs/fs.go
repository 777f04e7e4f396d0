// Package fs is s3mount's FUSE filesystem. It is the only package that
// imports go-fuse, whose fs package it calls fusefs.
//
// # Layout
//
// The mount root holds one directory per bucket. Below each bucket are
// synthetic directories for the segments of each authorized prefix, down to
// the authorized path itself; they list only what leads to an authorized path.
// Inside an authorized path, objects are files and common prefixes are
// directories, so s3://B/K is at MOUNT/B/K. A "dir/" marker object and a
// prefix with no marker are both directories.
//
// Keys that cannot be file names (empty segments from "//", ".", "..", NUL,
// names over 255 bytes) are not shown, and each is logged once. When a key is
// both an object and a prefix ("a" and "a/b"), the directory is shown and the
// object is hidden, and this is logged once.
//
// # Read-only paths
//
// The synthetic directories, read-only authorized paths, and everything when
// Options.ReadOnly is set show no write bits, and every change to them fails
// without any request to S3: with EROFS from here, or EACCES from the kernel,
// which checks the modes shown (default_permissions) for every user but
// root.
//
// # Writes
//
// A file that is open for writing, or holds changes not yet in S3, has one
// state, fileContent, which its node owns and every handle, getattr, lookup
// and listing sees, as every descriptor of a local file sees one page
// cache. Its bytes live in a staging file in Options.StagingDir, loaded from
// S3 on the first write or truncate that needs the old content. Reads
// through any handle are served from it; getattr shows its live size, and
// the kernel is told not to cache that; a listing or HEAD from S3 never
// overrides it; O_APPEND writes go to its end, whichever handle they come
// through.
//
// The object changes only at a commit: the last writer's close, fsync, a
// close by the process that opened the handle while no other handle may
// write, and the stop of the mount. A close by a child process that
// inherited the descriptor, or by one writer of several, commits nothing.
// So nothing partial is ever visible at the key, and no writer's data is
// dropped by another's close. A file written in order past 8 MiB has its
// parts uploaded in the background while it is written, read back from the
// staging file; a write into a part already sent makes the commit send it
// again, so patching a header at offset 0 costs one part, not the file. A
// commit that fails returns its error to close or fsync and leaves the
// content unsaved; if the last close fails, the content is moved to
// UnsavedDir and the log says where.
//
// Unlinking a file, or renaming another over it, detaches its state:
// nothing of it is stored from then on, a commit under way is waited for
// and what it stored deleted, a background multipart upload is aborted, and
// the handles keep reading and writing it until they close. Renaming a file
// or a directory carries the open files in it along: their unsaved content
// is stored under the new name at its commit. Namespace changes are
// otherwise immediate: unlink is DeleteObject, mkdir a "name/" marker,
// rename a server-side copy then a delete. Two mounts writing one key is
// the only case where the last writer wins.
//
// # Errors
//
// Bucket errors become errno in one function, errno: not found is ENOENT,
// a changed object ESTALE, a denial or missing credentials EACCES, a
// cancelled request EINTR, anything else EIO. The cause of EIO and EACCES is
// logged. A full staging disk is ENOSPC.
//
// # Reads
//
// A file without content is read from S3 through the mount's read engine
// (package reader): parallel ranged GETs ahead of sequential readers, and
// a block cache, shared by every handle, for random reads. Options.MemoryLimit
// bounds its memory.
//
// # Caching
//
// A directory's listing answers lookups without requests: for the names it
// has, for Options.MetadataTTL; for the names it lacks, for the shorter
// Options.NegativeTTL (default 5 s). This mount's own changes update it at
// once. The kernel is told to cache entries and attributes for
// MetadataTTL, and failed lookups for NegativeTTL. Past those, a lookup
// asks S3 (HeadObject and a one-key ListObjectsV2, concurrently), and a
// name it finds joins the listing. A listing fetched again updates the
// files this mount has nodes for, so that their next getattr or open sends
// no HeadObject. Listings are held in an LRU bounded in directories and
// entries (about 80 MiB at most), and dropped when stale or when the
// kernel forgets the directory.
//
// The kernel keeps a directory's entries (FOPEN_CACHE_DIR) while they match
// what this mount would list, so that a warm ls -l sends no request at all;
// an open that would list other entries, after a change here or in a
// listing fetched again, has the kernel drop them first. Extended
// attributes are answered ENOSYS, which the kernel remembers, so that it
// stops asking for them on every file. Identical lookups, HeadObjects and
// listings under way at the same time are one request; after a change here,
// new ones do not join those.
//
// The kernel's page cache for a file is kept across opens only while its
// ETag is unchanged. Reads pin the ETag seen at open, so a read never mixes
// two versions of an object: if it changes, reads fail with ESTALE.
// Listings carry no user metadata, so the mtimes seen by HeadObject or
// written here are remembered by ETag.
//
// # Concurrency
//
// Every FUSE operation may run concurrently with any other. LOCK ORDERING:
// FS.renameMu, then a fileContent's mu (more than one only under renameMu),
// then a fileNode's mu, then a dirNode's mu; the inode table's, a
// partUpload's and the FS's own small mutexes are leaves. A fileContent's
// mu is held across network calls (loads and uploads), so that operations on
// one file run in order; node and directory locks never are, and getattr
// never waits for an upload.
package fs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/reader"
)

// Options configure a filesystem.
type Options struct {
	// Roots are the authorized paths to show.
	Roots []Root
	// Bucket returns the store for a bucket name.
	Bucket func(name string) bucket.Bucket
	// ReadOnly makes everything read-only.
	ReadOnly bool
	// UID and GID own every file.
	UID, GID uint32
	// FileMode and DirMode are the permission bits of files and directories
	// (defaults 0644 and 0755). Read-only paths lose their write bits.
	FileMode, DirMode os.FileMode
	// MetadataTTL is how long listings and attributes are trusted. Default 60s.
	MetadataTTL time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// StagingDir holds the local copies of files open for writing. Default:
	// $XDG_CACHE_HOME/s3mount/staging (~/.cache/s3mount/staging).
	StagingDir string
	// RenameLimit is the most objects a directory rename copies; larger
	// directories fail with EXDEV and mv copies them itself. Default 1000.
	RenameLimit int
	// NegativeTTL is how long a name is known not to exist: by the kernel
	// after a failed lookup, and by a listing, which answers for names it
	// lacks only this long and for names it has for MetadataTTL. Default
	// 5s; at most MetadataTTL.
	NegativeTTL time.Duration
	// MemoryLimit bounds the memory the mount holds for file data: blocks
	// being read, fetched ahead and cached, which share one budget (see
	// package reader). Writes are staged on disk, not in memory; the limit
	// also bounds how many parts upload at once (one per 32 MiB, at least
	// 4). Default DefaultMemoryLimit.
	MemoryLimit int64
}

// DefaultMemoryLimit is Options.MemoryLimit's default.
const DefaultMemoryLimit = 512 << 20

// FS is a mounted, or mountable, set of authorized paths.
type FS struct {
	opts      Options
	log       *slog.Logger
	mountTime time.Time
	root      *synthDir

	// tree is the current layout of the authorized paths.
	tree atomic.Pointer[tree]

	// logged holds keys already logged as not shown, so each is logged
	// once. It is safe for concurrent use.
	logged *lru.Cache[string, struct{}]

	// stagingRoot is Options.StagingDir; stagingDir is this mount's own
	// directory in it, removed when the mount ends.
	stagingRoot, stagingDir string

	// reads is the read engine every handle reads S3 through; its block
	// cache and memory budget are the mount's.
	reads *reader.Engine

	// uploadSlots bounds the part uploads under way across the mount: a
	// send puts a token in while it runs.
	uploadSlots chan struct{}

	// mountDir is the absolute path of the mount, once mounted.
	mountDir string

	// inodes hands out inode numbers unique among live nodes.
	inodes *inodeTable

	// renameMu makes renames run one at a time, so that a rename may hold
	// the content locks of every open file it moves.
	renameMu sync.Mutex

	// dirTimes remembers the modification times set on directories, which
	// S3 has no place for, for the life of the mount. It is safe for
	// concurrent use.
	dirTimes *lru.Cache[string, time.Time]

	// credLoggedAt is when a missing-credentials failure was last logged,
	// in Unix nanoseconds.
	credLoggedAt atomic.Int64

	contentsMu sync.Mutex // guards contents
	// contents are the states of the files open for writing or holding
	// unsaved changes, for FlushAll and Close.
	contents map[*fileContent]struct{}

	// mtimes remembers the stored mtime of object versions seen by Stat or
	// written here, by bucket, key and ETag, because listings do not carry
	// it. It is safe for concurrent use.
	mtimes *lru.Cache[string, time.Time]

	// listings holds the directories' listings, bounded. It is safe for
	// concurrent use.
	listings *listingCache
	// flights coalesces identical lookups and HEADs under way. It is safe
	// for concurrent use.
	flights singleflight.Group
	// now is the clock that listings are timed by.
	now func() time.Time
}

func mtimeKey(bucketName string, info bucket.ObjectInfo) string {
	return bucketName + "\x00" + info.Key + "\x00" + info.ETag
}

// noteMtime remembers the stored mtime of an object version.
func (f *FS) noteMtime(bucketName string, info bucket.ObjectInfo) {
	if !info.Mtime.IsZero() && info.ETag != "" {
		f.mtimes.Add(mtimeKey(bucketName, info), info.Mtime)
	}
}

// withMtime fills in the stored mtime of a listed object version, if known.
func (f *FS) withMtime(bucketName string, info bucket.ObjectInfo) bucket.ObjectInfo {
	if info.Mtime.IsZero() {
		if mt, ok := f.mtimes.Get(mtimeKey(bucketName, info)); ok {
			info.Mtime = mt
		}
	}
	return info
}

// New returns a filesystem showing opts.Roots.
func New(opts Options) (*FS, error) {
	if opts.Bucket == nil {
		return nil, errors.New("fs: Options.Bucket is required")
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o644
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o755
	}
	if opts.MetadataTTL <= 0 {
		opts.MetadataTTL = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RenameLimit <= 0 {
		opts.RenameLimit = 1000
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 5 * time.Second
	}
	opts.NegativeTTL = min(opts.NegativeTTL, opts.MetadataTTL)
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if opts.StagingDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no staging directory: %w", err)
		}
		opts.StagingDir = filepath.Join(cache, "s3mount", "staging")
	}
	logged, err := lru.New[string, struct{}](4096)
	if err != nil {
		return nil, err
	}
	dirTimes, err := lru.New[string, time.Time](65536)
	if err != nil {
		return nil, err
	}
	mtimes, err := lru.New[string, time.Time](262144)
	if err != nil {
		return nil, err
	}
	f := &FS{opts: opts, log: opts.Logger, mountTime: time.Now(), logged: logged, stagingRoot: opts.StagingDir,
		uploadSlots: make(chan struct{}, max(partWorkers, opts.MemoryLimit/(32<<20))), inodes: newInodeTable(),
		dirTimes: dirTimes, mtimes: mtimes, contents: map[*fileContent]struct{}{},
		listings: newListingCache(maxListings, maxListedEntries, opts.MetadataTTL), now: time.Now}
	if f.stagingDir, err = prepareStaging(opts.StagingDir, opts.Logger); err != nil {
		return nil, err
	}
	f.reportUnsaved()
	f.reads = reader.New(reader.Config{Budget: reader.NewBudget(opts.MemoryLimit), Logger: opts.Logger})
	f.tree.Store(newTree(opts.Roots))
	f.root = &synthDir{fsys: f}
	return f, nil
}

// Root returns the root node, for fusefs.Mount.
func (f *FS) Root() fusefs.InodeEmbedder { return f.root }

// MountOptions are the mount's kernel-facing settings.
type MountOptions struct {
	// AllowOther lets other users see the mount (needs user_allow_other in
	// /etc/fuse.conf when not root).
	AllowOther bool
	// Debug logs every FUSE request.
	Debug bool
	// ReadAhead is the kernel's readahead for the mount, in bytes. Linux
	// gives FUSE mounts 128 KiB, which makes sequential reads a series of
	// small requests; Mount raises it through sysfs where it may (as root).
	// Zero means DefaultReadAhead; negative leaves the kernel's default.
	ReadAhead int
}

// DefaultReadAhead is MountOptions.ReadAhead's default: 16 MiB, which keeps
// about 16 one-MiB reads of a sequential reader in flight at once, so that
// the read engine's replies overlap. Measured with dd on the rig's MinIO:
// 1 MiB gave 180-200 MB/s, 4 MiB 250, 16 MiB 345-404, 32 MiB 330, 64 MiB
// 266 (make bench compares settings with --kernel-readahead).
const DefaultReadAhead = 16 << 20

// Mount mounts the filesystem at dir. Call Unmount on the server, and Wait
// for it, to finish.
func (f *FS) Mount(dir string, mo MountOptions) (*fuse.Server, error) {
	ttl, negativeTTL := f.opts.MetadataTTL, f.opts.NegativeTTL
	opts := &fusefs.Options{
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &negativeTTL,
		UID:             f.opts.UID,
		GID:             f.opts.GID,
		MountOptions: fuse.MountOptions{
			FsName:       "s3mount",
			Name:         "s3mount",
			AllowOther:   mo.AllowOther,
			DirectMount:  true,
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			// Parallel readers each keep several requests in flight;
			// go-fuse's default of 12 queues them in the kernel.
			MaxBackground: 64,
			// Reads reply from memory: splicing gains nothing, and 1 MiB
			// replies overflow the default pipe.
			DisableSplice: true,
			// O_TRUNC arrives with the open, not as a separate truncate
			// that would empty the object before the new content is ready.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
			// The kernel enforces the owner and modes shown, so that
			// with --allow-other other users cannot write with the
			// mount's credentials.
			Options: []string{"default_permissions"},
			Debug:   mo.Debug,
			Logger:  slog.NewLogLogger(f.log.Handler(), slog.LevelWarn),
		},
	}
	if abs, err := filepath.Abs(dir); err == nil {
		f.mountDir = abs
	}
	srv, err := fusefs.Mount(dir, f.root, opts)
	if err != nil {
		return nil, fmt.Errorf("mounting at %s: %w", dir, err)
	}
	if mo.ReadAhead >= 0 {
		ra := mo.ReadAhead
		if ra == 0 {
			ra = DefaultReadAhead
		}
		if err := setReadAhead(dir, ra); err != nil {
			f.log.Info("kernel readahead left at its default; sequential reads may be slower", "error", err.Error())
		}
	}
	return srv, nil
}

// setReadAhead sets the readahead of the mount at dir, through the sysfs
// file of its backing device.
func setReadAhead(dir string, bytes int) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return err
	}
	major, minor := (st.Dev>>8)&0xfff|(st.Dev>>32)&^0xfff, st.Dev&0xff|(st.Dev>>12)&^0xff
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", major, minor)
	return os.WriteFile(path, []byte(strconv.Itoa(bytes/1024)), 0)
}

// access returns the authorized root that holds key, if any.
func (f *FS) access(bucketName, key string) (Root, bool) {
	return f.tree.Load().access(bucketName, key)
}

// SetRoots replaces the authorized paths, as a platform's renewal may. New
// paths appear at once; removed ones disappear, and operations on files
// still open there fail with EACCES; a change between read-only and
// read-write applies to the next operation. Unchanged roots are left alone.
func (f *FS) SetRoots(roots []Root) {
	old := f.tree.Load()
	if slices.Equal(old.roots, roots) {
		return
	}
	f.tree.Store(newTree(roots))
	changed := map[string]bool{}
	for _, r := range roots {
		if !slices.Contains(old.roots, r) {
			f.log.Info("authorized path added or changed", "uri", r.uri(), "read_only", r.ReadOnly)
			changed[r.Bucket] = true
		}
	}
	for _, r := range old.roots {
		if !slices.ContainsFunc(roots, func(n Root) bool { return n.Bucket == r.Bucket && n.Prefix == r.Prefix }) {
			f.log.Info("authorized path removed", "uri", r.uri())
			changed[r.Bucket] = true
		}
	}
	// Make the kernel look the changed buckets up again.
	for b := range changed {
		f.root.NotifyEntry(b)
	}
}

// uri returns the root as s3://bucket/prefix.
func (r Root) uri() string {
	if r.Prefix == "" {
		return "s3://" + r.Bucket
	}
	return "s3://" + r.Bucket + "/" + r.Prefix
}

// authorized reports whether some authorized path holds key in bucket.
func (f *FS) authorized(bucketName, key string) bool {
	_, ok := f.access(bucketName, key)
	return ok
}

// writable reports whether key in bucket may be changed.
func (f *FS) writable(bucketName, key string) bool {
	if f.opts.ReadOnly {
		return false
	}
	r, ok := f.access(bucketName, key)
	return ok && !r.ReadOnly
}

// ErrUnsaved matches the error Close returns when content that never
// reached S3 was kept in UnsavedDir.
var ErrUnsaved = errors.New("files were not saved to S3")

// FlushAll commits every file open for writing or holding unsaved changes,
// so that a mount being stopped loses nothing. It honours ctx: when ctx is
// cancelled, uploads under way stop and their content stays unsaved. It
// returns the errors of the commits that failed.
func (f *FS) FlushAll(ctx context.Context) error {
	var errs []error
	for _, c := range f.liveContents() {
		if err := c.commit(ctx); err != nil {
			b, key, _ := c.node.key()
			errs = append(errs, fmt.Errorf("s3://%s/%s: %w", b, key, err))
		}
	}
	return errors.Join(errs...)
}

func (f *FS) liveContents() []*fileContent {
	f.contentsMu.Lock()
	defer f.contentsMu.Unlock()
	contents := make([]*fileContent, 0, len(f.contents))
	for c := range f.contents {
		contents = append(contents, c)
	}
	return contents
}

// UnsavedDir is where content that could not be uploaded is kept, across
// mounts: a directory "unsaved" in Options.StagingDir.
func (f *FS) UnsavedDir() string { return filepath.Join(f.stagingRoot, "unsaved") }

// Close ends the filesystem; call it after unmounting. The content of every
// file that never reached S3 is moved into UnsavedDir, and Close returns an
// error matching ErrUnsaved that lists each file and where it was kept. The
// mount's own staging directory is removed.
func (f *FS) Close() error {
	var kept []string
	var errs []error
	for _, c := range f.liveContents() {
		c.mu.Lock()
		if !c.detached && (c.dirty || c.mtimeSet) && c.broken == nil {
			b, key, _ := c.node.key()
			path, err := c.keepUnsaved()
			if err != nil {
				errs = append(errs, fmt.Errorf("s3://%s/%s could not be kept either, and is lost: %w", b, key, err))
			} else {
				kept = append(kept, fmt.Sprintf("s3://%s/%s kept at %s", b, key, path))
			}
		}
		c.mu.Unlock()
		c.close()
	}
	f.reads.Close()
	if err := os.RemoveAll(f.stagingDir); err != nil {
		errs = append(errs, err)
	}
	if len(kept) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrUnsaved, strings.Join(kept, "; ")))
	}
	return errors.Join(errs...)
}

// keepFile moves a staging file holding the unsaved content of
// s3://bucketName/key into UnsavedDir, and returns its new path. The name
// carries the time and the object's location.
func (f *FS) keepFile(staging *os.File, bucketName, key string, size int64) (string, error) {
	dir := f.UnsavedDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := staging.Truncate(size); err != nil {
		return "", err
	}
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + url.PathEscape(bucketName+"/"+key)
	if len(name) > maxNameLen {
		sum := fnv.New64a()
		sum.Write([]byte(name))
		name = name[:maxNameLen-17] + "-" + strconv.FormatUint(sum.Sum64(), 16)
	}
	path := filepath.Join(dir, name)
	if err := os.Rename(staging.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// reportUnsaved logs what earlier mounts left in UnsavedDir.
func (f *FS) reportUnsaved() {
	entries, err := os.ReadDir(f.UnsavedDir())
	if err != nil || len(entries) == 0 {
		return
	}
	f.log.Warn(fmt.Sprintf("found %d files from an earlier mount that never reached S3", len(entries)),
		"dir", f.UnsavedDir(), "hint", "each file is named after the time and its s3:// location (URL-escaped); copy back what you need, then delete it")
}

// prepareStaging creates this mount's staging directory (mode 0700) under
// root, and clears those of mounts that are no longer running, left by a
// crash. Directories are named after the owning process.
func prepareStaging(root string, log *slog.Logger) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("creating the staging directory: %w", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", fmt.Errorf("reading the staging directory: %w", err)
	}
	for _, e := range entries {
		rest, isMount := strings.CutPrefix(e.Name(), "mount-")
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !e.IsDir() || !isMount || err != nil {
			continue
		}
		if pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			rescueStaging(root, filepath.Join(root, e.Name()), log)
		}
	}
	dir, err := os.MkdirTemp(root, "mount-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("creating the staging directory: %w", err)
	}
	return dir, nil
}

// rescueStaging removes the staging directory of a mount that died. Its
// files may hold content that never reached S3: those that are not empty
// are moved into the unsaved directory first, named after their object.
func rescueStaging(root, dir string, log *slog.Logger) {
	entries, _ := os.ReadDir(dir)
	rescued := 0
	for _, e := range entries {
		if info, err := e.Info(); err != nil || info.Size() == 0 {
			continue
		}
		unsaved := filepath.Join(root, "unsaved")
		if os.MkdirAll(unsaved, 0o700) == nil && os.Rename(filepath.Join(dir, e.Name()), filepath.Join(unsaved, "crashed-"+e.Name())) == nil {
			rescued++
		}
	}
	if rescued > 0 {
		log.Warn("a mount that is no longer running left files that may not have reached S3; they are kept", "dir", filepath.Join(root, "unsaved"), "files", rescued)
	}
	os.RemoveAll(dir)
}

// localErrno maps a failure of the local staging file: a full disk is
// ENOSPC, anything else EIO.
func (f *FS) localErrno(op string, err error) syscall.Errno {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		f.log.Error("the staging disk is full; the file was not changed in S3", "op", op, "dir", f.stagingDir)
		return syscall.ENOSPC
	}
	f.log.Error("staging file failed", "op", op, "error", err.Error())
	return syscall.EIO
}

// location returns the bucket and key of the node n from its place in the
// tree, and false if it is no longer in the tree (unlinked). The mount root
// is ("", "").
func (f *FS) location(n *fusefs.Inode) (bucketName, key string, ok bool) {
	var segs []string
	for p := n; p != &f.root.Inode; {
		name, parent := p.Parent()
		if parent == nil {
			return "", "", false
		}
		segs = append(segs, name)
		p = parent
	}
	if len(segs) == 0 {
		return "", "", true
	}
	slices.Reverse(segs)
	return segs[0], strings.Join(segs[1:], "/"), true
}

// errno maps a bucket error to the errno a FUSE call returns, logging the
// cause of failures the user cannot explain otherwise.
func (f *FS) errno(op string, err error) syscall.Errno {
	// A cause S3 named wins over a cancellation it brought about.
	switch {
	case err == nil:
		return 0
	case errors.Is(err, bucket.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, bucket.ErrStale):
		f.log.Info("object changed while open; reopen the file to read the new version", "op", op, "error", err.Error())
		return syscall.ESTALE
	case errors.Is(err, bucket.ErrCredentials):
		// The credentials provider logs its own failures once; during an
		// outage, say it here at most once a minute, not once a request.
		if now := time.Now().UnixNano(); now-f.credLoggedAt.Load() > int64(time.Minute) {
			f.credLoggedAt.Store(now)
			f.log.Warn("S3 operations fail with permission denied: no valid credentials", "op", op, "error", err.Error())
		}
		return syscall.EACCES
	case errors.Is(err, bucket.ErrPermission):
		f.log.Warn("permission denied by S3", "op", op, "error", err.Error())
		return syscall.EACCES
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, syscall.ENOSPC):
		return syscall.ENOSPC
	}
	// An errno of the filesystem's own passes through; one from the
	// connection to S3 (ECONNRESET, EPIPE, ECONNREFUSED) is an S3 failure.
	var errno syscall.Errno
	var netErr *net.OpError
	if errors.As(err, &errno) && !errors.As(err, &netErr) {
		return errno
	}
	f.log.Error("S3 request failed", "op", op, "error", err.Error())
	return syscall.EIO
}

// logOnce logs msg for a key the first time it is seen.
func (f *FS) logOnce(msg, bucketName, key string) {
	id := msg + "\x00" + bucketName + "\x00" + key
	if ok, _ := f.logged.ContainsOrAdd(id, struct{}{}); ok {
		return
	}
	f.log.Warn(msg, "object", "s3://"+bucketName+"/"+key)
}

// dirAttr fills the attributes of a directory.
func (f *FS) dirAttr(out *fuse.Attr, ino uint64, writable bool) {
	mode := uint32(f.opts.DirMode.Perm())
	if !writable {
		mode &^= 0o222
	}
	out.Ino = ino
	out.Mode = syscall.S_IFDIR | mode
	out.Nlink = 2
	out.Size = 4096
	out.Blocks = 8
	out.Blksize = 4096
	out.Uid, out.Gid = f.opts.UID, f.opts.GID
	out.SetTimes(&f.mountTime, &f.mountTime, &f.mountTime)
}

// fileAttr fills the attributes of a file from its object.
func (f *FS) fileAttr(out *fuse.Attr, ino uint64, info bucket.ObjectInfo, writable bool) {
	mode := uint32(f.opts.FileMode.Perm())
	if !writable {
		mode &^= 0o222
	}
	out.Ino = ino
	out.Mode = syscall.S_IFREG | mode
	out.Nlink = 1
	out.Size = uint64(info.Size)
	out.Blocks = (uint64(info.Size) + 511) / 512
	out.Blksize = 1 << 20
	out.Uid, out.Gid = f.opts.UID, f.opts.GID
	mt := info.ModTime()
	if mt.IsZero() {
		mt = f.mountTime
	}
	out.SetTimes(&mt, &mt, &mt)
}

// statfs reports a large, mostly free filesystem, so that df and cp do not
// refuse to write.
func statfs(out *fuse.StatfsOut) {
	const blocks = 1 << 40 // 4 PiB of 4 KiB blocks
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = blocks
	out.Bfree = blocks
	out.Bavail = blocks
	out.Files = 1 << 32
	out.Ffree = 1 << 32
	out.NameLen = maxNameLen
}
