// Package reader is s3mount's read engine. It turns reads of an object
// version, at any offsets, into ranged GETs, and knows nothing of FUSE: the
// fs package asks it for bytes and maps its errors.
//
// # Blocks
//
// An object version is read in blocks of Config.BlockSize bytes (the last
// one shorter), named by bucket, key, ETag and index. Every block being
// fetched or held is in one table that every Reader of an Engine shares: a
// block two readers want is fetched once (identical concurrent fetches
// coalesce), and a block fetched once serves every later read of it until
// it is evicted. A fetch is one ranged GET for a run of consecutive missing
// blocks, never crossing a Config.PartSize boundary; each block is handed to
// the reads waiting for it as soon as its bytes have arrived, so a read
// waits only for the bytes it needs, never for a whole part. Because the
// ETag is part of a block's name, a new version of an object never reads an
// older one's blocks.
//
// # Access patterns
//
// Each Reader watches its reads. Reads that continue the previous ones,
// tolerating Config.SeekBack (or the window, if larger) behind and
// Config.SeekForward ahead (the kernel's readahead arrives concurrently and
// out of order), form a sequential run. A run has a frontier, up to which
// it has been read with no gap; the Reader fetches ahead of the frontier
// with parallel ranged GETs of up to PartSize, in a window that starts at
// Config.FirstWindow and doubles with the run, up to Config.MaxWindow.
// Blocks are dropped as soon as a run longer than SequentialAgain has read
// past them (the kernel's page cache holds them from then on), so a stream
// holds about one window of memory and does not flush the cache. A Reader
// keeps its previous run too: a read elsewhere and back (HDF5 reads its
// chunk index between chunks) does not end a stream.
//
// Reads that skip ahead and leave gaps for more than twice SeekForward are
// not a run, however close together they land: the Reader fetches what
// they read, not the gaps, and keeps it cached. When the starts of three
// regions read fall at one distance apart, give or take half a block, the
// Reader fetches the next StrideAhead regions at that distance ahead: a
// column of chunks of a dataset, read one chunk at a time.
//
// After RandomAfter seeks without a sequential run between them, the
// Reader is in random mode: it fetches just the blocks a read needs, and
// keeps them in the cache, which is what HDF5, NetCDF, Zarr and
// Cloud-Optimized GeoTIFF readers re-read (headers, chunk indexes). A
// sequential run of SequentialAgain bytes ends random mode.
//
// # Memory
//
// Every block's bytes are taken from the Budget given in Config, which the
// mount shares with its writers. Ready blocks are kept in an LRU cache
// (golang-lru's simplelru), evicted first when the budget is short. A read
// that needs memory waits for it (backpressure); fetching ahead never waits,
// and keeps a reserve of the budget free for reads: under pressure, windows
// shrink before anything fails or waits.
//
// # Errors
//
// Errors from the bucket come back unchanged, so errors.Is finds
// bucket.ErrStale, ErrNotFound, ErrPermission and ErrCredentials. A GET
// whose body breaks off (a reset, a short body, a stall the bucket times
// out) is resumed from the first block not yet complete, until
// Config.Attempts GETs in a row bring no new block; the bucket itself retries throttling and server
// errors. A failed block is removed from the table, so the next read of it
// fetches it again. A read interrupted through its context returns the
// context's error at once; the fetch it waited for goes on for others.
//
// # Concurrency
//
// An Engine and its Readers are safe for concurrent use, and reads on one
// Reader run concurrently: each waits only for its own blocks. LOCK
// ORDERING: a Reader's mu, then the Engine's mu, then the Budget's mu.
// Network calls are made with none of them held.
package reader

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/s3mount/s3mount/internal/bucket"
)

// Defaults of Config.
const (
	DefaultBlockSize   = 128 << 10
	DefaultPartSize    = 8 << 20
	DefaultFirstWindow = 1 << 20
	DefaultMaxWindow   = 64 << 20
	// DefaultSeekBack is as deep as the kernel's readahead (16 MiB, as
	// fs sets it): that many bytes of one reader's requests may be in
	// flight at once and arrive in any order.
	DefaultSeekBack    = 16 << 20
	DefaultSeekForward = 16 << 20
	DefaultAttempts    = 5
	// RandomAfter is how many seeks, with no sequential run between them,
	// put a Reader in random mode.
	RandomAfter = 2
	// SequentialAgain is how long a sequential run ends random mode.
	SequentialAgain = 1 << 20
	// StrideHistory is how many region starts a Reader remembers to find
	// a stride, and StrideAhead how many strides ahead it fetches.
	StrideHistory = 8
	StrideAhead   = 8
)

// Config configures an Engine. Zero fields take their defaults.
type Config struct {
	// Budget bounds the memory of every block; required.
	Budget *Budget
	// BlockSize is the unit of fetching and caching.
	BlockSize int64
	// PartSize is the longest GET; GETs never cross a multiple of it.
	PartSize int64
	// FirstWindow is how far ahead a new sequential run fetches.
	FirstWindow int64
	// MaxWindow is how far ahead a long sequential run fetches, at most.
	// It is also held to an eighth of the budget.
	MaxWindow int64
	// SeekBack and SeekForward are how far behind and ahead of the end of
	// a sequential run a read may land and still continue it.
	SeekBack, SeekForward int64
	// Attempts is how many GETs in a row may bring no new block before a
	// fetch fails.
	Attempts int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Object is the object version to read.
type Object struct {
	Bucket bucket.Bucket
	Key    string
	// ETag pins the version: a read of another version fails with
	// bucket.ErrStale.
	ETag string
	Size int64
}

func (o Object) id() string { return o.Bucket.Name() + "\x00" + o.Key + "\x00" + o.ETag }

type blockKey struct {
	obj string
	idx int64
}

// block is one block of an object version, being fetched or ready.
type block struct {
	key  blockKey
	data []byte
	// done is closed when the block is ready or has failed; err is set
	// before.
	done chan struct{}
	err  error
	// consumed counts the bytes sequential reads took from the block.
	consumed atomic.Int64

	// ready and ahead are guarded by the Engine's mu. ready says the block
	// is in the cache; ahead says it was fetched for a sequential run and
	// is dropped once read.
	ready, ahead bool
}

// Stats are an Engine's counters since it started.
type Stats struct {
	// Gets is the GET requests made, and Fetched the bytes they returned.
	Gets, Fetched int64
	// Hits is the blocks reads found already fetched or being fetched,
	// and Misses those they had to fetch themselves.
	Hits, Misses int64
	// Held is the bytes the engine holds now (fetching, ahead and cached).
	Held int64
}

// Engine reads object versions for every Reader of a mount.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // fetches run under it; Close cancels it
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetches under way

	gets, fetched, hits, misses atomic.Int64

	mu sync.Mutex // guards blocks, cache and held
	// blocks holds every block being fetched or ready.
	blocks map[blockKey]*block
	// cache orders the ready blocks, least recently used first.
	cache *simplelru.LRU[blockKey, *block]
	// held is the bytes of the blocks in blocks.
	held int64
}

// New returns an engine. Close it to stop its fetches.
func New(cfg Config) *Engine {
	if cfg.Budget == nil {
		panic("reader: Config.Budget is required")
	}
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.BlockSize, DefaultBlockSize)
	def(&cfg.PartSize, DefaultPartSize)
	def(&cfg.FirstWindow, DefaultFirstWindow)
	def(&cfg.MaxWindow, DefaultMaxWindow)
	def(&cfg.SeekBack, DefaultSeekBack)
	def(&cfg.SeekForward, DefaultSeekForward)
	cfg.PartSize = max(cfg.BlockSize, cfg.PartSize/cfg.BlockSize*cfg.BlockSize)
	cfg.MaxWindow = max(cfg.FirstWindow, min(cfg.MaxWindow, cfg.Budget.Limit()/8))
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cache, _ := simplelru.NewLRU[blockKey, *block](1<<30, nil)
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, blocks: map[blockKey]*block{}, cache: cache}
	cfg.Budget.setReclaimer(e.reclaim)
	return e
}

// Close cancels the fetches under way, waits for them, and empties the
// cache.
func (e *Engine) Close() {
	e.cancel()
	e.wg.Wait()
	e.mu.Lock()
	held := e.held
	e.blocks, e.held = map[blockKey]*block{}, 0
	e.cache.Purge()
	e.mu.Unlock()
	e.cfg.Budget.Release(held)
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	held := e.held
	e.mu.Unlock()
	return Stats{Gets: e.gets.Load(), Fetched: e.fetched.Load(), Hits: e.hits.Load(), Misses: e.misses.Load(), Held: held}
}

// reclaim evicts the least recently used ready blocks until n bytes are
// freed or none is left, and returns the bytes freed.
func (e *Engine) reclaim(n int64) int64 {
	var freed int64
	e.mu.Lock()
	for freed < n {
		k, b, ok := e.cache.RemoveOldest()
		if !ok {
			break
		}
		delete(e.blocks, k)
		freed += int64(len(b.data))
	}
	e.held -= freed
	e.mu.Unlock()
	e.cfg.Budget.Release(freed)
	return freed
}

// blockLen returns the length of block idx of an object of size bytes.
func (e *Engine) blockLen(size, idx int64) int64 {
	return min(e.cfg.BlockSize, size-idx*e.cfg.BlockSize)
}

// lookup returns the blocks from first to last (inclusive), with nil where
// a block is neither ready nor being fetched. keep says the caller reads at
// random, so the blocks it touches stay cached after a sequential run
// reads them.
func (e *Engine) lookup(id string, first, last int64, keep bool) []*block {
	out := make([]*block, last-first+1)
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range out {
		k := blockKey{id, first + int64(i)}
		if b, ok := e.blocks[k]; ok {
			out[i] = b
			if b.ready {
				e.cache.Get(k) // most recently used
			}
			if keep {
				b.ahead = false
			}
		}
	}
	return out
}

// add puts new blocks from first to last where out has none, taking their
// memory from reserved, and starts fetching them. It gives back what it
// reserved and did not use, and returns the blocks now in place.
func (e *Engine) add(obj Object, first int64, out []*block, reserved int64, ahead bool) []*block {
	id := obj.id()
	var fresh []*block
	e.mu.Lock()
	for i, b := range out {
		if b != nil {
			continue
		}
		k := blockKey{id, first + int64(i)}
		if have, ok := e.blocks[k]; ok { // fetched by another read meanwhile
			out[i] = have
			continue
		}
		n := e.blockLen(obj.Size, k.idx)
		b = &block{key: k, data: make([]byte, n), done: make(chan struct{}), ahead: ahead}
		e.blocks[k] = b
		e.held += n
		reserved -= n
		out[i] = b
		fresh = append(fresh, b)
	}
	e.mu.Unlock()
	e.cfg.Budget.Release(reserved)
	// One GET per run of consecutive new blocks within a part.
	perPart := e.cfg.PartSize / e.cfg.BlockSize
	for len(fresh) > 0 {
		n := 1
		for n < len(fresh) && fresh[n].key.idx == fresh[n-1].key.idx+1 && fresh[n].key.idx%perPart != 0 {
			n++
		}
		e.wg.Add(1)
		e.misses.Add(int64(n))
		go e.fetch(obj, fresh[:n])
		fresh = fresh[n:]
	}
	return out
}

// missing returns the bytes of the nil entries of out.
func (e *Engine) missing(size, first int64, out []*block) int64 {
	var n int64
	for i, b := range out {
		if b == nil {
			n += e.blockLen(size, first+int64(i))
		}
	}
	return n
}

// demand returns the blocks that hold [from, to), fetching those missing,
// and waiting for memory for them if it must.
func (e *Engine) demand(ctx context.Context, obj Object, from, to int64, keep bool) ([]*block, error) {
	first, last := from/e.cfg.BlockSize, (to-1)/e.cfg.BlockSize
	out := e.lookup(obj.id(), first, last, keep)
	need := e.missing(obj.Size, first, out)
	for _, b := range out {
		if b != nil {
			e.hits.Add(1)
		}
	}
	if need == 0 {
		return out, nil
	}
	if err := e.cfg.Budget.Acquire(ctx, need); err != nil {
		return nil, err
	}
	return e.add(obj, first, out, need, !keep), nil
}

// prefetch starts fetching the missing blocks of [from, to) ahead of a
// sequential run, as far as memory allows without waiting, and returns
// the offset it got to.
func (e *Engine) prefetch(obj Object, from, to int64) int64 {
	bs := e.cfg.BlockSize
	first, last := from/bs, (to-1)/bs
	out := e.lookup(obj.id(), first, last, false)
	reserve := e.cfg.Budget.Limit() / 8
	// Take memory a part at a time, so that a short budget still fetches
	// the nearest parts.
	perPart := e.cfg.PartSize / bs
	got := first
	for got <= last {
		end := min(last+1, (got/perPart+1)*perPart)
		need := e.missing(obj.Size, got, out[got-first:end-first])
		if need > 0 && !e.cfg.Budget.TryAcquire(need, reserve) {
			break
		}
		e.add(obj, got, out[got-first:end-first], need, true)
		got = end
	}
	return min(to, got*bs)
}

// fetch GETs the consecutive blocks of run and hands each to its readers
// as it arrives, resuming after a broken body.
func (e *Engine) fetch(obj Object, run []*block) {
	defer e.wg.Done()
	bs := e.cfg.BlockSize
	last := run[len(run)-1]
	end := last.key.idx*bs + int64(len(last.data))
	var err error
	for attempt := 0; attempt < e.cfg.Attempts && len(run) > 0; attempt++ {
		start := run[0].key.idx * bs
		e.gets.Add(1)
		e.log.Debug("GET", "object", "s3://"+obj.Bucket.Name()+"/"+obj.Key, "offset", start, "length", end-start)
		var body io.ReadCloser
		body, err = obj.Bucket.Read(e.ctx, obj.Key, start, end-start, obj.ETag)
		if err != nil {
			break // the bucket has retried the request already
		}
		for len(run) > 0 {
			var k int
			k, err = io.ReadFull(body, run[0].data)
			e.fetched.Add(int64(k))
			if err != nil {
				break
			}
			e.finish(run[0], nil)
			run = run[1:]
			attempt = -1 // progress: count again from 0 the GETs that bring nothing
		}
		if err == nil {
			e.log.Debug("GET done", "object", "s3://"+obj.Bucket.Name()+"/"+obj.Key, "offset", start, "length", end-start)
			// Read to the end, so that the connection is reused.
			_, _ = io.CopyN(io.Discard, body, 1)
		}
		body.Close()
		if err != nil {
			e.log.Debug("GET body broke off; resuming", "object", "s3://"+obj.Bucket.Name()+"/"+obj.Key,
				"offset", run[0].key.idx*bs, "error", err.Error())
			if e.ctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond) // let a flapping network settle
		}
	}
	if len(run) > 0 {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = errors.Join(errShortBody, err)
		}
		if e.ctx.Err() != nil {
			err = errors.Join(ErrClosed, err)
		}
		e.log.Warn("read failed", "object", "s3://"+obj.Bucket.Name()+"/"+obj.Key,
			"offset", run[0].key.idx*bs, "attempts", e.cfg.Attempts, "error", err.Error())
		for _, b := range run {
			e.finish(b, err)
		}
	}
}

var (
	// ErrClosed means the engine was closed while a read waited.
	ErrClosed = errors.New("read engine closed")
	// errShortBody means the store sent less than it declared, every time.
	errShortBody = errors.New("the store's answers kept ending early")
)

// finish marks b ready, or failed with err, and wakes its readers.
func (e *Engine) finish(b *block, err error) {
	var release int64
	e.mu.Lock()
	if err != nil {
		b.err = err
		if e.blocks[b.key] == b {
			delete(e.blocks, b.key)
			release = int64(len(b.data))
			e.held -= release
		}
	} else if e.blocks[b.key] == b {
		b.ready = true
		e.cache.Add(b.key, b)
	}
	e.mu.Unlock()
	close(b.done)
	e.cfg.Budget.Release(release)
}

// dropRead drops the block named k if a sequential run has read all of
// it (see drop).
func (e *Engine) dropRead(k blockKey) {
	e.mu.Lock()
	b := e.blocks[k]
	e.mu.Unlock()
	if b != nil && b.consumed.Load() >= int64(len(b.data)) {
		e.drop(b)
	}
}

// drop removes b once a sequential run has read it, if it was fetched ahead
// for one and no random read has wanted it since.
func (e *Engine) drop(b *block) {
	var freed int64
	e.mu.Lock()
	if b.ahead && b.ready && e.blocks[b.key] == b {
		delete(e.blocks, b.key)
		e.cache.Remove(b.key)
		freed = int64(len(b.data))
		e.held -= freed
	}
	e.mu.Unlock()
	e.cfg.Budget.Release(freed)
}

// Reader reads for one open file. It keeps what it has seen of the
// file's access pattern.
type Reader struct {
	e *Engine

	mu sync.Mutex // guards the fields below
	// obj is the version the pattern below is of.
	obj string
	// started says a read has been seen.
	started bool
	// cur is the run the last read belonged to, and prev the one before
	// it, if hasPrev: a read elsewhere (a file's index, between its
	// data) and back does not end a stream.
	cur, prev run
	hasPrev   bool
	// seeks counts the seeks since the last run of SequentialAgain bytes.
	seeks int
	// random says the reads are at random: fetch only what they need.
	random bool
	// starts holds where the last few regions began, newest at
	// starts[(nstarts-1)%len]; a region is a read that does not start
	// where the one before ended. lastEnd is the end of the last read.
	starts  [StrideHistory]int64
	nstarts int
	lastEnd int64
}

// run is a sequential run of reads.
type run struct {
	// start is where the run began. frontier is how far it has been read
	// with no gap, and furthest the end of its furthest read: the kernel's
	// readahead arrives out of order, so reads land ahead of the frontier,
	// and beyond holds the blocks they read until the reads between catch
	// up.
	start, frontier, furthest int64
	beyond                    map[int64]struct{}
	// ahead is the end of what was fetched ahead of the run.
	ahead int64
	// window is how far ahead of the frontier to fetch.
	window int64
}

// length is how much of the run has been read with no gap.
func (u *run) length() int64 { return u.frontier - u.start }

// NewReader returns a reader for one open file.
func (e *Engine) NewReader() *Reader { return &Reader{e: e} }

// ReadAt fills p from obj at off, and returns how many bytes it read: all
// of p unless the object ends first, when it returns the rest and io.EOF.
func (r *Reader) ReadAt(ctx context.Context, obj Object, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("reader: negative offset")
	}
	if off >= obj.Size {
		return 0, io.EOF
	}
	end := min(obj.Size, off+int64(len(p)))
	random := r.observe(obj, off, end)
	e := r.e
	blocks, err := e.demand(ctx, obj, off, end, random)
	if err != nil {
		return 0, err
	}
	bs := e.cfg.BlockSize
	filled := 0
	for _, b := range blocks {
		select {
		case <-b.done:
		case <-ctx.Done():
			return filled, ctx.Err()
		case <-e.ctx.Done():
			return filled, ErrClosed
		}
		if b.err != nil {
			return filled, b.err
		}
		at := off + int64(filled) - b.key.idx*bs
		k := copy(p[filled:end-off], b.data[at:])
		filled += k
		if !random && b.consumed.Add(int64(k)) >= int64(len(b.data)) && r.passed(b) {
			e.drop(b)
		}
	}
	if end-off < int64(len(p)) {
		return filled, io.EOF
	}
	return filled, nil
}

// passed reports whether a long sequential run has read past b, so that b
// can go: the run has read every byte before b's end, and enough of them
// to be a stream. The first SequentialAgain bytes of a run, and blocks
// read by reads that skip ahead and never come back (a column of chunks
// of an HDF5 dataset, say), stay cached.
func (r *Reader) passed(b *block) bool {
	end := b.key.idx*r.e.cfg.BlockSize + int64(len(b.data))
	r.mu.Lock()
	defer r.mu.Unlock()
	if b.key.obj != r.obj {
		return false
	}
	for _, u := range [2]*run{&r.cur, &r.prev} {
		if end > u.start && end <= u.frontier && u.length() >= SequentialAgain {
			return true
		}
	}
	return false
}

// observe records a read of [off, end) in the access pattern, starts
// fetching ahead if the reads are sequential, and reports whether they are
// at random.
//
// A read continues a run if it lands between SeekBack (or the run's
// window, if larger) behind the run's frontier and SeekForward ahead of its
// furthest read; it is tried against the current run, then the previous
// one. A read that continues neither is a seek, and so is leaving a gap
// behind for more than twice SeekForward: reads that skip ahead and never
// fill the gaps are not a stream, however close together they land.
// Fetching ahead, and the window's growth, follow the frontier.
func (r *Reader) observe(obj Object, off, end int64) (random bool) {
	cfg := &r.e.cfg
	r.mu.Lock()
	defer r.mu.Unlock()
	if id := obj.id(); r.obj != id { // a new version: start afresh
		r.obj, r.started, r.hasPrev, r.seeks, r.random, r.nstarts = id, false, false, 0, false, 0
	}
	continues := func(u *run) bool {
		return off >= u.frontier-max(cfg.SeekBack, u.window) && off <= max(u.frontier, u.furthest)+cfg.SeekForward
	}
	switch {
	case r.started && continues(&r.cur):
	case r.started && r.hasPrev && continues(&r.prev):
		r.cur, r.prev = r.prev, r.cur
	default:
		r.seek(off)
	}
	u := &r.cur
	r.mark(u, off, end)
	if u.furthest-u.frontier > 2*cfg.SeekForward {
		r.seek(off)
		r.mark(u, off, end)
	}
	if u.length() >= SequentialAgain {
		r.random, r.seeks = false, 0
	}
	if off != r.lastEnd {
		r.strided(obj, off, end)
	}
	r.lastEnd = end
	if r.random {
		return true
	}
	for u.window < cfg.MaxWindow && 2*u.length() >= u.window {
		u.window = min(cfg.MaxWindow, 2*u.window)
	}
	// Fetch ahead in steps of a part (or a quarter window while the window
	// is small), so that each GET is worth its round trip.
	step := max(cfg.BlockSize, min(cfg.PartSize, u.window/4))
	target := min(obj.Size, (u.frontier+u.window)/step*step)
	if from := max(u.ahead, u.frontier); target > from {
		got := r.e.prefetch(obj, from, target)
		if got < target {
			u.window = max(cfg.FirstWindow, u.window/2) // memory is short
		}
		u.ahead = got
	}
	return false
}

// strided notes a region that starts at off and ends at end. If it
// continues an arithmetic progression of region starts (off-2d, off-d,
// off, with other regions between them allowed, and each start within
// half a block of the progression), it fetches the next StrideAhead
// regions of the same length ahead, with twice the deviation seen as
// slack on either side, as far as memory allows without waiting: a column
// of chunks of an HDF5 or NetCDF dataset, or of tiles of a GeoTIFF, read
// one at a time, and the nodes of the chunk index that HDF5 reads between
// them. r.mu must be held.
func (r *Reader) strided(obj Object, off, end int64) {
	n := min(r.nstarts, StrideHistory)
	tolerance := r.e.cfg.BlockSize / 2
	var d, slack int64
	for i := 1; i <= n && d == 0; i++ {
		c := off - r.starts[(r.nstarts-i)%StrideHistory]
		if c <= 0 {
			continue
		}
		for j := 1; j <= n; j++ {
			if diff := r.starts[(r.nstarts-j)%StrideHistory] - (off - 2*c); -tolerance <= diff && diff <= tolerance {
				d, slack = c, 2*max(diff, -diff)
				break
			}
		}
	}
	r.starts[r.nstarts%StrideHistory] = off
	r.nstarts++
	// Regions read one after the other, or reads of a stream arriving
	// out of order, show strides too; a column skips what lies between
	// its regions: the run has not read past the previous one.
	if d < 2*(end-off) || !r.random && r.cur.frontier > off-d+(end-off) {
		return
	}
	for k := int64(1); k <= StrideAhead; k++ {
		from := max(0, off+k*d-slack)
		if from >= obj.Size {
			return
		}
		to := min(obj.Size, off+k*d+end-off+slack)
		if r.e.prefetch(obj, from, to) < to {
			return // memory is short
		}
	}
}

// seek starts a new run at off; the current one becomes the previous.
// r.mu must be held.
func (r *Reader) seek(off int64) {
	if r.started {
		r.seeks++
		r.prev, r.hasPrev = r.cur, true
	}
	r.started = true
	r.cur = run{start: off, frontier: off, furthest: off, ahead: off, window: r.e.cfg.FirstWindow}
	if r.seeks >= RandomAfter {
		r.random = true
	}
}

// mark records that [off, end) of u was read, moves u's frontier over the
// blocks read ahead of it that it now reaches, and drops those a long run
// has read. r.mu must be held.
func (r *Reader) mark(u *run, off, end int64) {
	bs := r.e.cfg.BlockSize
	u.furthest = max(u.furthest, end)
	moved := false
	if off > u.frontier {
		if u.beyond == nil {
			u.beyond = map[int64]struct{}{}
		}
		for i := off / bs; i <= (end-1)/bs; i++ {
			u.beyond[i] = struct{}{}
		}
	} else if end > u.frontier {
		u.frontier, moved = end, true
	}
	for {
		i := u.frontier / bs
		if _, ok := u.beyond[i]; !ok {
			break
		}
		delete(u.beyond, i)
		u.frontier = min(u.furthest, max(u.frontier, (i+1)*bs))
		if u.length() >= SequentialAgain {
			r.e.dropRead(blockKey{r.obj, i})
		}
	}
	if moved && len(u.beyond) > 0 {
		for i := range u.beyond {
			if (i+1)*bs <= u.frontier {
				delete(u.beyond, i)
			}
		}
	}
}

// Close ends the reader. Blocks it fetched ahead stay cached until evicted.
func (r *Reader) Close() {}
