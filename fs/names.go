package fs

import (
	"hash/fnv"
	"strings"
)

// maxNameLen is the longest file name Linux accepts (NAME_MAX).
const maxNameLen = 255

// validName reports whether name can be one path component: not empty, not
// "." or "..", no "/" or NUL, and at most 255 bytes.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= maxNameLen &&
		!strings.ContainsAny(name, "/\x00")
}

// childName maps a key or common prefix returned by a listing of dirPrefix to
// the name it has in that directory. Keys ending in "/" (markers and common
// prefixes) are directories. It returns ok false for the directory's own
// marker and for keys that cannot be file names; those are not shown.
func childName(dirPrefix, key string) (name string, isDir, ok bool) {
	rest, found := strings.CutPrefix(key, dirPrefix)
	if !found {
		return "", false, false
	}
	if d, cut := strings.CutSuffix(rest, "/"); cut {
		rest, isDir = d, true
	}
	if !validName(rest) {
		return "", false, false
	}
	return rest, isDir, true
}

// childKey is the inverse of childName: the key of name in the directory
// dirPrefix, with a trailing "/" for directories.
func childKey(dirPrefix, name string, isDir bool) string {
	if isDir {
		return dirPrefix + name + "/"
	}
	return dirPrefix + name
}

// inodeNumber gives every bucket location a stable inode number, so that
// `find`, `du` and `tar` see the same number for the same file on every
// lookup. Directories and files hash differently because dirs end in "/";
// synthetic directories are hashed in their own space.
func inodeNumber(space, bucket, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(space))
	h.Write([]byte{0})
	h.Write([]byte(bucket))
	h.Write([]byte{0})
	h.Write([]byte(key))
	n := h.Sum64()
	// 0 and 1 (the root) and ^0 are reserved.
	if n <= 1 || n == ^uint64(0) {
		n = 2
	}
	return n
}
