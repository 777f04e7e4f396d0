package fs

import "sync"

// inodeTable hands out inode numbers that are unique among live nodes.
//
// A node's number is the hash of its location (inodeNumber), so that find,
// du and tar see the same number for the same file on every lookup. But a
// rename moves a live node, number and all, and an unlink leaves a node alive
// while it is open: a new file at the old name must not take the number the
// other node still shows (cp and diff would take them for one file), and
// go-fuse would hand back the old node for it. So the table remembers which
// identity holds each live number, and a location whose hash is held by
// another identity is given the next free number instead.
//
// It is safe for concurrent use.
type inodeTable struct {
	mu sync.Mutex // guards owner
	// owner maps each number in use to the identity that holds it:
	// space, bucket and key joined by NUL, or detached for a node that
	// no longer has a location.
	owner map[uint64]string
}

// detached is the owner of the number of a node that was unlinked or
// replaced: no location ever matches it.
const detached = "\x00detached"

func newInodeTable() *inodeTable { return &inodeTable{owner: map[uint64]string{}} }

func identity(space, bucketName, key string) string {
	return space + "\x00" + bucketName + "\x00" + key
}

// next returns the number to try after n.
func nextIno(n uint64) uint64 {
	n = n*0x9e3779b97f4a7c15 + 1
	if n <= 1 || n == ^uint64(0) {
		n = 2
	}
	return n
}

// assign returns the number of the location, taking it for the location if
// no live node holds it.
func (t *inodeTable) assign(space, bucketName, key string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := identity(space, bucketName, key)
	n := t.find(space, bucketName, key)
	t.owner[n] = id
	return n
}

// peek returns the number the location has or would be given, without
// taking it: for directory listings, which create no nodes.
func (t *inodeTable) peek(space, bucketName, key string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.find(space, bucketName, key)
}

// find returns the first number, from the location's hash on, that is free
// or already the location's. t.mu must be held.
func (t *inodeTable) find(space, bucketName, key string) uint64 {
	id := identity(space, bucketName, key)
	n := inodeNumber(space, bucketName, key)
	for {
		if owner, taken := t.owner[n]; !taken || owner == id {
			return n
		}
		n = nextIno(n)
	}
}

// move records that the node holding n now stands for another location,
// or for none (detached).
func (t *inodeTable) move(n uint64, space, bucketName, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.owner[n] = identity(space, bucketName, key)
}

// detach records that the node holding n has no location any more.
func (t *inodeTable) detach(n uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.owner[n] = detached
}

// release frees n when its node is forgotten.
func (t *inodeTable) release(n uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.owner, n)
}
