package fs

import (
	"slices"
	"strings"
)

// Root is one authorized S3 location shown in the mount.
type Root struct {
	Bucket string
	// Prefix has no leading or trailing slash; empty means the whole bucket.
	Prefix string
	// ReadOnly roots refuse every change with EROFS.
	ReadOnly bool
}

// tree is the immutable layout of the synthetic directories above the
// authorized roots. Locations are "" for the mount root, "bucket", or
// "bucket/seg/seg". A new tree replaces the old one when the roots change.
type tree struct {
	roots []Root
	// children lists, for every synthetic location, the sorted names below
	// it.
	children map[string][]string
	// rootAt maps the location of each authorized root to its index in roots.
	rootAt map[string]int
}

// newTree lays out roots. A root inside another root is reached through the
// outer root's listing and is not given synthetic directories of its own;
// its access still applies to the keys under it.
func newTree(roots []Root) *tree {
	t := &tree{roots: slices.Clone(roots), children: map[string][]string{"": nil}, rootAt: map[string]int{}}
	for i, r := range t.roots {
		loc := r.Bucket
		if r.Prefix != "" {
			loc += "/" + r.Prefix
		}
		if _, dup := t.rootAt[loc]; !dup {
			t.rootAt[loc] = i
		} else if !r.ReadOnly {
			// Listed twice: the more permissive entry wins.
			t.rootAt[loc] = i
		}
	}
	for loc := range t.rootAt {
		if t.insideRoot(loc) {
			continue
		}
		parent := ""
		for _, seg := range strings.Split(loc, "/") {
			if !slices.Contains(t.children[parent], seg) {
				t.children[parent] = append(t.children[parent], seg)
			}
			child := seg
			if parent != "" {
				child = parent + "/" + seg
			}
			if _, isRoot := t.rootAt[child]; isRoot {
				break
			}
			if _, ok := t.children[child]; !ok {
				t.children[child] = nil
			}
			parent = child
		}
	}
	for loc := range t.children {
		slices.Sort(t.children[loc])
	}
	return t
}

// insideRoot reports whether loc lies strictly below another root.
func (t *tree) insideRoot(loc string) bool {
	for other := range t.rootAt {
		if other != loc && strings.HasPrefix(loc, other+"/") {
			return true
		}
	}
	return false
}

// entryKind says what a name in a synthetic directory is.
type entryKind int

const (
	kindNone entryKind = iota
	kindSynthetic
	kindRoot
)

// child looks up name in the synthetic directory at loc.
func (t *tree) child(loc, name string) (string, entryKind, Root) {
	if !slices.Contains(t.children[loc], name) {
		return "", kindNone, Root{}
	}
	child := name
	if loc != "" {
		child = loc + "/" + name
	}
	if i, ok := t.rootAt[child]; ok {
		return child, kindRoot, t.roots[i]
	}
	return child, kindSynthetic, Root{}
}

// access returns the most specific root that holds key in bucket, and
// whether there is one.
func (t *tree) access(bucket, key string) (Root, bool) {
	best, found := Root{}, false
	for _, r := range t.roots {
		if r.Bucket != bucket {
			continue
		}
		if r.Prefix != "" && key != r.Prefix && !strings.HasPrefix(key, r.Prefix+"/") {
			continue
		}
		if !found || len(r.Prefix) > len(best.Prefix) || (len(r.Prefix) == len(best.Prefix) && !r.ReadOnly) {
			best, found = r, true
		}
	}
	return best, found
}
