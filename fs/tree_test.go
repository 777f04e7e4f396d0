package fs

import (
	"slices"
	"testing"
)

func TestTree(t *testing.T) {
	tr := newTree([]Root{
		{Bucket: "ws", Prefix: "jdoe"},
		{Bucket: "shared", Prefix: "team/data"},
		{Bucket: "ref", Prefix: "smap/v9", ReadOnly: true},
		{Bucket: "ref", Prefix: "smap/v9/mine"}, // inside another root
		{Bucket: "whole"},
	})
	tests := []struct {
		loc  string
		want []string
	}{
		{"", []string{"ref", "shared", "whole", "ws"}},
		{"ws", []string{"jdoe"}},
		{"shared", []string{"team"}},
		{"shared/team", []string{"data"}},
		{"ref/smap", []string{"v9"}},
	}
	for _, tt := range tests {
		if got := tr.children[tt.loc]; !slices.Equal(got, tt.want) {
			t.Errorf("children[%q] = %q, want %q", tt.loc, got, tt.want)
		}
	}
	if _, ok := tr.children["ref/smap/v9"]; ok {
		t.Errorf("a root has synthetic children")
	}
	if loc, kind, r := tr.child("ws", "jdoe"); kind != kindRoot || loc != "ws/jdoe" || r.Prefix != "jdoe" {
		t.Errorf("child(ws, jdoe) = %q, %v, %+v", loc, kind, r)
	}
	if _, kind, r := tr.child("", "whole"); kind != kindRoot || r.Bucket != "whole" {
		t.Errorf("child(, whole) = %v, %+v", kind, r)
	}
	if _, kind, _ := tr.child("shared", "team"); kind != kindSynthetic {
		t.Errorf("child(shared, team) = %v, want synthetic", kind)
	}
	if _, kind, _ := tr.child("ws", "other"); kind != kindNone {
		t.Errorf("child(ws, other) = %v, want none", kind)
	}

	access := []struct {
		bucket, key string
		ok, ro      bool
	}{
		{"ws", "jdoe/a", true, false},
		{"ws", "jdoe", true, false},
		{"ws", "jdoe2/a", false, false},
		{"ws", "other/a", false, false},
		{"ref", "smap/v9/x", true, true},
		{"ref", "smap/v9/mine/x", true, false},
		{"whole", "anything/at/all", true, false},
		{"nope", "x", false, false},
	}
	for _, a := range access {
		r, ok := tr.access(a.bucket, a.key)
		if ok != a.ok || (ok && r.ReadOnly != a.ro) {
			t.Errorf("access(%q, %q) = %+v, %v; want ok %v, read-only %v", a.bucket, a.key, r, ok, a.ok, a.ro)
		}
	}
}
