package reader

import (
	"context"
	"sync"
)

// Budget is one memory limit shared by everything a mount holds in memory:
// blocks being fetched, blocks fetched ahead for sequential readers, cached
// blocks, and upload slots. Holders take bytes from it and give them back.
// When it is full, Acquire first asks the reclaimer (the block cache) to
// free memory, then waits: that is the backpressure on readers and writers.
//
// A Budget is safe for concurrent use. Its mutex is a leaf: the reclaimer is
// called without it held.
type Budget struct {
	limit int64

	mu sync.Mutex // guards the fields below
	// used is the bytes held now.
	used int64
	// freed is closed, and replaced, whenever bytes are given back, to wake
	// waiters.
	freed chan struct{}
	// reclaim frees up to n bytes of cached data, giving them back through
	// Release, and returns how many it freed. It may be nil.
	reclaim func(n int64) int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, freed: make(chan struct{})}
}

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used returns the bytes held now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// setReclaimer sets the function that frees cached memory under pressure.
func (b *Budget) setReclaimer(f func(n int64) int64) {
	b.mu.Lock()
	b.reclaim = f
	b.mu.Unlock()
}

// TryAcquire takes n bytes if they are free, or can be freed from the cache
// while keeping reserve bytes free for others, and reports whether it did.
// It never waits: prefetching uses it, so that under pressure prefetch
// shrinks instead of blocking reads.
func (b *Budget) TryAcquire(n, reserve int64) bool {
	for range 2 {
		b.mu.Lock()
		if b.used+n+reserve <= b.limit {
			b.used += n
			b.mu.Unlock()
			return true
		}
		short, reclaim := b.used+n+reserve-b.limit, b.reclaim
		b.mu.Unlock()
		if reclaim == nil || reclaim(short) == 0 {
			return false
		}
	}
	return false
}

// Acquire takes n bytes, freeing cached data or waiting for bytes to be
// given back as needed, until ctx is done. A request larger than the whole
// budget is granted once nothing else is held, so that it cannot wait
// forever.
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.limit || b.used == 0 {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		short, reclaim, freed := b.used+n-b.limit, b.reclaim, b.freed
		b.mu.Unlock()
		if reclaim != nil && reclaim(short) > 0 {
			continue
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release gives back n bytes.
func (b *Budget) Release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
