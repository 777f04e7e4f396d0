package fs

import (
	"strings"
	"testing"
)

func TestChildName(t *testing.T) {
	long := strings.Repeat("x", 256)
	tests := []struct {
		dir, key string
		name     string
		isDir    bool
		ok       bool
	}{
		{"p/", "p/a.txt", "a.txt", false, true},
		{"p/", "p/sub/", "sub", true, true},
		{"", "top", "top", false, true},
		{"", "dir/", "dir", true, true},
		{"p/", "p/", "", false, false},        // the directory's own marker
		{"p/", "p//", "", false, false},       // empty segment from "//"
		{"p/", "p/./", "", false, false},      // "."
		{"p/", "p/..", "", false, false},      // ".."
		{"p/", "p/../", "", false, false},     // ".." as a directory
		{"p/", "p/a\x00b", "", false, false},  // NUL
		{"p/", "p/" + long, "", false, false}, // too long
		{"p/", "p/" + long[1:], long[1:], false, true},
		{"p/", "q/a", "", false, false},   // not under the directory
		{"p/", "p/a/b", "", false, false}, // not a direct child
		{"p/", "p/ spaced name ", " spaced name ", false, true},
		{"p/", "p/\u00e9t\u00e9.nc", "\u00e9t\u00e9.nc", false, true},
	}
	for _, tt := range tests {
		name, isDir, ok := childName(tt.dir, tt.key)
		if name != tt.name || isDir != tt.isDir || ok != tt.ok {
			t.Errorf("childName(%q, %q) = %q, %v, %v; want %q, %v, %v", tt.dir, tt.key, name, isDir, ok, tt.name, tt.isDir, tt.ok)
		}
	}
}

func TestInodeNumber(t *testing.T) {
	a := inodeNumber("o", "b", "k")
	if a != inodeNumber("o", "b", "k") {
		t.Error("inodeNumber is not stable")
	}
	for _, other := range []uint64{inodeNumber("o", "b", "k/"), inodeNumber("s", "b", "k"), inodeNumber("o", "bk", ""), inodeNumber("o", "b", "k2")} {
		if other == a {
			t.Errorf("inodeNumber collision for distinct locations")
		}
	}
}

// FuzzChildName checks that every name shown is a valid single path
// component and maps back to exactly the key it came from.
func FuzzChildName(f *testing.F) {
	for _, s := range [][2]string{
		{"p/", "p/a"}, {"p/", "p//"}, {"p/", "p/../"}, {"p/", "p/./x"}, {"", "/"}, {"", "a\x00"},
		{"p/", "p/" + strings.Repeat("y", 300)}, {"p/q/", "p/q/r/"}, {"", ".."}, {"a/", "a/\xff\xfe"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, dir, key string) {
		name, isDir, ok := childName(dir, key)
		if !ok {
			return
		}
		if !validName(name) || strings.Contains(name, "/") || name == "." || name == ".." || len(name) > 255 {
			t.Fatalf("childName(%q, %q) = %q, not a valid name", dir, key, name)
		}
		if got := childKey(dir, name, isDir); got != key {
			t.Fatalf("childKey(childName(%q, %q)) = %q, want the key back", dir, key, got)
		}
	})
}
