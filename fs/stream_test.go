package fs

import (
	"testing"
	"time"
)

func TestPartSizes(t *testing.T) {
	// Staged uploads know their size.
	for _, tt := range []struct {
		size int64
		want int64
	}{
		{1, 8 << 20},
		{78 << 30, 8 << 20},
		{80 << 30, 16 << 20},
		{1 << 40, 128 << 20},
	} {
		if got := partSize(tt.size); got != tt.want {
			t.Errorf("partSize(%d) = %d, want %d", tt.size, got, tt.want)
		}
		if n := (tt.size + partSize(tt.size) - 1) / partSize(tt.size); n > maxParts {
			t.Errorf("partSize(%d) needs %d parts", tt.size, n)
		}
	}
	// Streamed uploads do not: 10,000 growing parts must hold far more than
	// 80 GiB.
	var total int64
	for n := int32(1); n <= maxParts; n++ {
		total += streamPartSize(n)
	}
	if total < 1<<40 {
		t.Errorf("10000 streamed parts hold %d bytes, want at least 1 TiB", total)
	}
	if streamPartSize(1) != 8<<20 || streamPartSize(1000) != 8<<20 || streamPartSize(1001) != 16<<20 {
		t.Errorf("streamPartSize grows at the wrong part")
	}
}

func TestMemoryBudgetMakesWritersWait(t *testing.T) {
	b := newMemoryBudget(10)
	if got := b.acquire(6); got != 6 {
		t.Fatalf("acquire(6) = %d", got)
	}
	acquired := make(chan int64)
	go func() { acquired <- b.acquire(6) }()
	select {
	case <-acquired:
		t.Fatal("acquire went past the budget")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(6)
	if got := <-acquired; got != 6 {
		t.Errorf("acquire after release = %d", got)
	}
	// A request larger than the budget waits for all of it, then proceeds.
	b.release(6)
	if got := b.acquire(100); got != 10 {
		t.Errorf("acquire(100) on a budget of 10 = %d, want 10", got)
	}
}
