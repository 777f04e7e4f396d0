package fs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3mount/s3mount/internal/bucket"
)

// listingOf returns a listing of n files.
func listingOf(n int) *dirListing {
	l := &dirListing{at: time.Now(), entries: map[string]dirEntry{}}
	for i := range n {
		name := fmt.Sprintf("f%d", i)
		l.entries[name] = dirEntry{}
		l.names = append(l.names, name)
	}
	return l
}

func TestListingCacheBoundsListings(t *testing.T) {
	c := newListingCache(4, 1000, time.Minute)
	dirs := make([]*dirNode, 10)
	for i := range dirs {
		dirs[i] = &dirNode{}
		c.put(dirs[i], listingOf(1))
		if i == 1 {
			c.get(dirs[0]) // dirs[0] is now more recent than dirs[1]
		}
	}
	if n := c.lru.Len(); n != 4 {
		t.Errorf("the cache holds %d listings, want 4", n)
	}
	if got := c.entries.Load(); got != 4 {
		t.Errorf("the cache counts %d entries, want 4", got)
	}
	for i, d := range dirs {
		if want := i >= 6; (c.get(d) != nil) != want {
			t.Errorf("listing %d held: %v, want %v", i, !want, want)
		}
	}
}

func TestListingCacheBoundsEntries(t *testing.T) {
	c := newListingCache(100, 250, time.Minute)
	a, b, d := &dirNode{}, &dirNode{}, &dirNode{}
	c.put(a, listingOf(100))
	c.put(b, listingOf(100))
	if got := c.entries.Load(); got != 200 {
		t.Fatalf("the cache counts %d entries, want 200", got)
	}
	c.get(a)
	c.put(d, listingOf(100)) // 300 > 250: the least recently used (b) goes
	if c.get(b) != nil || c.get(a) == nil || c.get(d) == nil {
		t.Errorf("after exceeding the entries: a held %v, b %v, d %v; want a and d", c.get(a) != nil, c.get(b) != nil, c.get(d) != nil)
	}
	if got := c.entries.Load(); got != 200 {
		t.Errorf("the cache counts %d entries, want 200", got)
	}
	// A listing larger than the bound is kept, alone.
	big := &dirNode{}
	c.put(big, listingOf(1000))
	if c.get(big) == nil || c.lru.Len() != 1 {
		t.Errorf("a listing over the bound: held %v, listings %d; want it alone", c.get(big) != nil, c.lru.Len())
	}
	if got := c.entries.Load(); got != 1000 {
		t.Errorf("the cache counts %d entries, want 1000", got)
	}
}

func TestListingCacheCounts(t *testing.T) {
	c := newListingCache(100, 1000, time.Minute)
	d := &dirNode{}
	l := listingOf(10)
	c.put(d, l)
	c.grew(d, l, l.apply("new", &dirEntry{}))
	c.grew(d, l, l.apply("f0", nil))
	c.grew(d, l, l.apply("f1", &dirEntry{dir: true})) // replaces: no growth
	if got := c.entries.Load(); got != 10 {
		t.Errorf("after a create and a removal the cache counts %d entries, want 10", got)
	}
	c.grew(d, listingOf(3), 3) // not the held listing: not counted
	c.put(d, listingOf(5))     // replaces l
	if got := c.entries.Load(); got != 5 {
		t.Errorf("after replacing the listing the cache counts %d entries, want 5", got)
	}
	c.remove(d)
	if got := c.entries.Load(); got != 0 || c.get(d) != nil {
		t.Errorf("after removing the listing the cache counts %d entries (held %v), want 0", got, c.get(d) != nil)
	}
}

func TestListingCacheExpires(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the cache's shortest life")
	}
	// The cache lets listings go after max(TTL, minListingLife); it
	// uses the real clock, so this waits that long once.
	c := newListingCache(100, 1000, time.Millisecond)
	d := &dirNode{}
	c.put(d, listingOf(10))
	deadline := time.Now().Add(minListingLife + 5*time.Second)
	for c.entries.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after %v the cache still counts %d entries", minListingLife+5*time.Second, c.entries.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.get(d) != nil {
		t.Error("an expired listing is still returned")
	}
}

func TestKernelDirCache(t *testing.T) {
	var k kernelDirCache
	open := func(sum uint64) string {
		cached, clear := k.open(sum)
		switch {
		case clear:
			if !k.cleared(sum, true) {
				t.Fatal("cleared(ok) did not let the handle use the cache")
			}
			return "clear"
		case cached:
			return "cached"
		}
		return "uncached"
	}
	steps := []struct {
		do   func() string
		want string
	}{
		{func() string { return open(1) }, "cached"},   // nothing cached yet: fill
		{func() string { return open(1) }, "cached"},   // same entries
		{func() string { return open(2) }, "uncached"}, // changed while two may fill
		{func() string { k.fillers--; return open(2) }, "uncached"},
		{func() string { k.fillers--; return open(2) }, "clear"}, // none may fill: drop, then fill
		{func() string { return open(2) }, "cached"},
		{func() string { k.mixed = true; return open(2) }, "uncached"}, // a rewind filled other entries
		{func() string { k.fillers -= 2; return open(2) }, "clear"},
	}
	for i, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("step %d: %s, want %s (state %+v)", i, got, s.want, k)
		}
	}
	// While one open drops the cache, others read without it.
	k = kernelDirCache{sum: 1}
	if _, clear := k.open(2); !clear {
		t.Fatal("open of other entries did not drop the cache")
	}
	if cached, clear := k.open(2); cached || clear {
		t.Errorf("open during a drop: cached %v clear %v, want neither", cached, clear)
	}
	if k.cleared(2, false) {
		t.Error("a failed drop let the handle use the cache")
	}
}

// gatedBucket counts Stat and List calls, and holds them until release is
// closed.
type gatedBucket struct {
	bucket.Bucket
	release      chan struct{}
	stats, lists atomic.Int32
}

func (g *gatedBucket) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	g.stats.Add(1)
	<-g.release
	return g.Bucket.Stat(ctx, key)
}

func (g *gatedBucket) List(ctx context.Context, req *bucket.ListRequest) (*bucket.ListPage, error) {
	g.lists.Add(1)
	<-g.release
	return g.Bucket.List(ctx, req)
}

func TestLookupsCoalesce(t *testing.T) {
	mem := bucket.NewMemory("b")
	mem.PutBytes("dir/present", []byte("x"))
	f, err := New(Options{Bucket: func(string) bucket.Bucket { return mem }, StagingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"present", "missing"} {
		g := &gatedBucket{Bucket: mem, release: make(chan struct{})}
		var wg sync.WaitGroup
		found := make([]bool, 8)
		for i := range found {
			wg.Go(func() {
				_, ok, err := f.lookupKey(context.Background(), g, "dir/", name)
				if err != nil {
					t.Error(err)
				}
				found[i] = ok
			})
		}
		for g.stats.Load() == 0 || g.lists.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let the others join
		close(g.release)
		wg.Wait()
		if s, l := g.stats.Load(), g.lists.Load(); s != 1 || l != 1 {
			t.Errorf("8 lookups of %s at once sent %d HEADs and %d LISTs, want 1 and 1", name, s, l)
		}
		for i, ok := range found {
			if ok != (name == "present") {
				t.Errorf("lookup %d of %s found it: %v", i, name, ok)
			}
		}
	}
}

func TestLookupAfterChangeDoesNotJoin(t *testing.T) {
	mem := bucket.NewMemory("b")
	f, err := New(Options{Bucket: func(string) bucket.Bucket { return mem }, StagingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &gatedBucket{Bucket: mem, release: make(chan struct{})}
	first := make(chan bool)
	go func() {
		_, ok, _ := f.lookupKey(context.Background(), g, "dir/", "x")
		first <- ok
	}()
	for g.stats.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// The mount creates dir/x; a lookup from now on must see it, not join
	// the one under way.
	mem.PutBytes("dir/x", []byte("x"))
	f.forgetFlights("b", "dir/x")
	second := make(chan bool)
	go func() {
		_, ok, _ := f.lookupKey(context.Background(), g, "dir/", "x")
		second <- ok
	}()
	for g.stats.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	<-first
	if !<-second {
		t.Error("a lookup that started after the change did not find the file")
	}
}

func TestCoalesceCallerCancels(t *testing.T) {
	mem := bucket.NewMemory("b")
	mem.PutBytes("k", []byte("x"))
	f, err := New(Options{Bucket: func(string) bucket.Bucket { return mem }, StagingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &gatedBucket{Bucket: mem, release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error)
	go func() {
		_, err := f.statObject(ctx, g, "k")
		cancelled <- err
	}()
	for g.stats.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	other := make(chan error)
	go func() {
		_, err := f.statObject(context.Background(), g, "k")
		other <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-cancelled; err != context.Canceled {
		t.Errorf("the cancelled caller got %v, want context.Canceled", err)
	}
	close(g.release)
	if err := <-other; err != nil {
		t.Errorf("the other caller got %v after the first was cancelled", err)
	}
	if n := g.stats.Load(); n != 1 {
		t.Errorf("%d HEADs, want 1", n)
	}
}
