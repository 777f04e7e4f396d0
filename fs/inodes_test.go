package fs

import "testing"

func TestInodeTable(t *testing.T) {
	tab := newInodeTable()
	x := tab.assign("object", "b", "x.tmp")
	if again := tab.assign("object", "b", "x.tmp"); again != x {
		t.Errorf("assign of the same location = %d, then %d", x, again)
	}
	// mv x.tmp x: the node keeps its number, which now stands for x.
	tab.move(x, "object", "b", "x")
	if n := tab.assign("object", "b", "x.tmp"); n == x {
		t.Errorf("a new x.tmp took the number %d that x still shows", n)
	}
	if n := tab.peek("object", "b", "x"); n == x {
		t.Errorf("peek(x) = %d, the number of the node that moved there (listings ask the node)", n)
	}
	// An unlinked file keeps its number while open; a new file at its
	// name gets another.
	y := tab.assign("object", "b", "y")
	tab.detach(y)
	if n := tab.assign("object", "b", "y"); n == y {
		t.Errorf("a new y took the number %d of the unlinked one", n)
	}
	// Once forgotten, the number is free again.
	tab.release(x)
	if n := tab.peek("object", "b", "x"); n != inodeNumber("object", "b", "x") {
		t.Errorf("peek(x) after release = %d, want its hash", n)
	}
}
