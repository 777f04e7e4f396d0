package fs

import "testing"

func TestPartSchedule(t *testing.T) {
	for _, tt := range []struct {
		n     int32
		size  int64
		start int64
	}{
		{1, 8 << 20, 0},
		{2, 8 << 20, 8 << 20},
		{1000, 8 << 20, 999 * (8 << 20)},
		{1001, 16 << 20, 1000 * (8 << 20)},
		{2001, 32 << 20, 1000*(8<<20) + 1000*(16<<20)},
	} {
		if got := partSizeOf(tt.n); got != tt.size {
			t.Errorf("partSizeOf(%d) = %d, want %d", tt.n, got, tt.size)
		}
		if got := partStart(tt.n); got != tt.start {
			t.Errorf("partStart(%d) = %d, want %d", tt.n, got, tt.start)
		}
		for _, off := range []int64{tt.start, tt.start + tt.size - 1} {
			if got := partAt(off); got != tt.n {
				t.Errorf("partAt(%d) = %d, want %d", off, got, tt.n)
			}
		}
	}
	for _, tt := range []struct {
		size int64
		want int32
	}{{0, 1}, {1, 1}, {8 << 20, 1}, {8<<20 + 1, 2}, {24 << 20, 3}} {
		if got := partCount(tt.size); got != tt.want {
			t.Errorf("partCount(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
	// 10,000 parts must hold far more than 80 GiB.
	if end := partStart(maxParts) + partSizeOf(maxParts); end < 1<<40 {
		t.Errorf("10000 parts hold %d bytes, want at least 1 TiB", end)
	}
}

func FuzzPartAt(f *testing.F) {
	f.Add(int64(0))
	f.Add(int64(8<<20 - 1))
	f.Add(int64(1 << 40))
	f.Fuzz(func(t *testing.T, off int64) {
		if off < 0 || off >= partStart(maxParts)+partSizeOf(maxParts) {
			return
		}
		n := partAt(off)
		if start := partStart(n); off < start || off >= start+partSizeOf(n) {
			t.Fatalf("partAt(%d) = %d, which covers [%d, %d)", off, n, start, start+partSizeOf(n))
		}
	})
}
