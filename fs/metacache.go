package fs

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/s3mount/s3mount/internal/bucket"
)

// Bounds of the listing cache. A listing costs about 330 bytes an entry
// (the name, the key, the ETag, the times and the map), so the cache holds
// at most about 80 MiB however many directories a mount walks; a single
// larger directory is still kept, alone.
const (
	maxListings      = 8192
	maxListedEntries = 250_000
	// minListingLife is the shortest time the cache keeps a listing in
	// memory. Freshness is decided by the directory (Options.MetadataTTL
	// and NegativeTTL, on the FS's clock); this only lets memory go, and
	// keeps the cache's clean-up from ticking often for short TTLs.
	minListingLife = 5 * time.Second
)

// listingCache holds the latest listing of each directory, keyed by its
// node, so that a rename carries the listing along. It is bounded in
// listings and in entries across listings, least recently used first, and
// a listing is dropped once it is older than the metadata TTL, since it no
// longer answers anything.
//
// It is safe for concurrent use. A listing's maps and slices are guarded
// by its directory's mu, not by the cache; the cache's own lock is a leaf.
type listingCache struct {
	lru        *expirable.LRU[*dirNode, *dirListing]
	maxEntries int64
	// entries counts the entries of the listings held.
	entries atomic.Int64
}

func newListingCache(maxLists int, maxEntries int64, ttl time.Duration) *listingCache {
	c := &listingCache{maxEntries: maxEntries}
	c.lru = expirable.NewLRU(maxLists, func(_ *dirNode, l *dirListing) {
		c.entries.Add(-l.counted.Load())
	}, max(ttl, minListingLife))
	return c
}

// get returns d's listing, if the cache holds one.
func (c *listingCache) get(d *dirNode) *dirListing {
	l, _ := c.lru.Get(d)
	return l
}

// put stores l as d's listing, replacing any other, and evicts the least
// recently used listings while the entries held exceed the bound.
func (c *listingCache) put(d *dirNode, l *dirListing) {
	c.lru.Remove(d) // counts the entries of the one it replaces out
	l.counted.Store(int64(len(l.entries)))
	c.entries.Add(int64(len(l.entries)))
	c.lru.Add(d, l)
	for c.entries.Load() > c.maxEntries && c.lru.Len() > 1 {
		c.lru.RemoveOldest()
	}
}

// grew records that a listing held for d gained (or lost) n entries.
func (c *listingCache) grew(d *dirNode, l *dirListing, n int) {
	if cur, ok := c.lru.Peek(d); ok && cur == l {
		l.counted.Add(int64(n))
		c.entries.Add(int64(n))
	}
}

// remove drops d's listing.
func (c *listingCache) remove(d *dirNode) { c.lru.Remove(d) }

// coalesce runs fn once for all the callers that ask g for key at the same
// time, and gives each the result. fn runs without the callers'
// cancellation, so that one interrupted caller does not fail the others;
// a caller whose ctx ends stops waiting.
func coalesce(ctx context.Context, g *singleflight.Group, key string, fn func(context.Context) (any, error)) (any, error) {
	shared := context.WithoutCancel(ctx)
	ch := g.DoChan(key, func() (any, error) { return fn(shared) })
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Keys of coalesced requests.
func lookupFlight(bucketName, key string) string { return "lookup\x00" + bucketName + "\x00" + key }
func statFlight(bucketName, key string) string   { return "stat\x00" + bucketName + "\x00" + key }

// forgetFlights makes requests about key that start from now on go to S3
// again rather than join one already under way, which may have started
// before this mount changed key.
func (f *FS) forgetFlights(bucketName, key string) {
	f.flights.Forget(lookupFlight(bucketName, key))
	f.flights.Forget(statFlight(bucketName, key))
}

// statObject is b.Stat, coalesced with the same Stat under way, and
// remembers the mtime it sees.
func (f *FS) statObject(ctx context.Context, b bucket.Bucket, key string) (bucket.ObjectInfo, error) {
	v, err := coalesce(ctx, &f.flights, statFlight(b.Name(), key), func(ctx context.Context) (any, error) {
		info, err := b.Stat(ctx, key)
		if err == nil {
			f.noteMtime(b.Name(), info)
		}
		return info, err
	})
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	return v.(bucket.ObjectInfo), nil
}
