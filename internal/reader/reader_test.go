package reader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3mount/s3mount/internal/bucket"
)

// countingBucket counts GETs and the bytes asked for, can hold GETs until
// released, and can break bodies off.
type countingBucket struct {
	bucket.Bucket
	gets     atomic.Int64
	asked    atomic.Int64
	maxRange atomic.Int64
	// gate, if not nil, holds every GET until it is closed.
	gate chan struct{}
	// breakAfter, if > 0, makes the first breaks bodies end after that
	// many bytes, early.
	breakAfter int64
	breaks     atomic.Int64
}

func (c *countingBucket) Read(ctx context.Context, key string, off, length int64, etag string) (io.ReadCloser, error) {
	c.gets.Add(1)
	c.asked.Add(length)
	for {
		m := c.maxRange.Load()
		if length <= m || c.maxRange.CompareAndSwap(m, length) {
			break
		}
	}
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	body, err := c.Bucket.Read(ctx, key, off, length, etag)
	if err != nil || c.breakAfter <= 0 || c.breaks.Add(-1) < 0 {
		return body, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(body, c.breakAfter), body}, nil
}

func randomData(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	data := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(data)
	return data
}

type fixture struct {
	mem    *bucket.Memory
	b      *countingBucket
	e      *Engine
	budget *Budget
	data   []byte
	obj    Object
}

func newFixture(t *testing.T, size int, limit int64, cfg Config) *fixture {
	t.Helper()
	mem := bucket.NewMemory("bkt")
	data := randomData(size, uint64(size))
	mem.PutBytes("obj", data)
	info, err := mem.Stat(context.Background(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	cb := &countingBucket{Bucket: mem}
	budget := NewBudget(limit)
	cfg.Budget = budget
	e := New(cfg)
	t.Cleanup(e.Close)
	return &fixture{mem: mem, b: cb, e: e, budget: budget, data: data,
		obj: Object{Bucket: cb, Key: "obj", ETag: info.ETag, Size: info.Size}}
}

// readAll reads the object through r in reads of n bytes, in order.
func (f *fixture) readAll(t *testing.T, r *Reader, n int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, n)
	for off := int64(0); ; {
		k, err := r.ReadAt(context.Background(), f.obj, buf, off)
		out = append(out, buf[:k]...)
		off += int64(k)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
}

func TestSequentialReadIsExactAndFetchesAhead(t *testing.T) {
	f := newFixture(t, 40<<20+12345, 256<<20, Config{})
	r := f.e.NewReader()
	got := f.readAll(t, r, 128<<10)
	if !bytes.Equal(got, f.data) {
		t.Fatal("sequential read differs from the object")
	}
	st := f.e.Stats()
	if st.Fetched != int64(len(f.data)) {
		t.Errorf("fetched %d bytes for a %d-byte object", st.Fetched, len(f.data))
	}
	if m := f.b.maxRange.Load(); m > DefaultPartSize {
		t.Errorf("a GET asked for %d bytes, more than a part", m)
	}
	// 40 MiB in parts of up to 8 MiB, after smaller first steps.
	if g := f.b.gets.Load(); g > 16 {
		t.Errorf("%d GETs for 40 MiB; the window did not grow", g)
	}
	// Blocks read by the run are dropped: a stream holds about a window.
	if st.Held > DefaultMaxWindow+DefaultPartSize {
		t.Errorf("holds %d bytes after a stream", st.Held)
	}
}

func TestOutOfOrderConcurrentReadsOnOneReader(t *testing.T) {
	f := newFixture(t, 48<<20, 256<<20, Config{})
	r := f.e.NewReader()
	got := make([]byte, len(f.data))
	const chunk = 256 << 10
	// Like the kernel's readahead: a first read, then batches of
	// concurrent reads, each batch's reads arriving in any order.
	if _, err := r.ReadAt(context.Background(), f.obj, got[:chunk], 0); err != nil {
		t.Fatal(err)
	}
	for base := chunk; base < len(f.data); base += 8 * chunk {
		var wg sync.WaitGroup
		for i := 7; i >= 0; i-- {
			off := base + i*chunk
			if off >= len(f.data) {
				continue
			}
			wg.Go(func() {
				end := min(off+chunk, len(f.data))
				if _, err := r.ReadAt(context.Background(), f.obj, got[off:end], int64(off)); err != nil && err != io.EOF {
					t.Errorf("read at %d: %v", off, err)
				}
			})
		}
		wg.Wait()
	}
	if !bytes.Equal(got, f.data) {
		t.Fatal("concurrent reads differ from the object")
	}
	if f.e.Stats().Fetched > int64(len(f.data))+4<<20 {
		t.Errorf("fetched %d bytes for %d: out-of-order reads restarted the stream", f.e.Stats().Fetched, len(f.data))
	}
}

func TestRandomReadsAreSizedToTheReadAndCached(t *testing.T) {
	f := newFixture(t, 64<<20, 256<<20, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	offs := make([]int64, 200)
	for i := range offs {
		offs[i] = rng.Int64N(int64(len(f.data)) - 4096)
	}
	pass := func() {
		r := f.e.NewReader()
		defer r.Close()
		buf := make([]byte, 4096)
		for _, off := range offs {
			if _, err := r.ReadAt(context.Background(), f.obj, buf, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, f.data[off:off+4096]) {
				t.Fatalf("read at %d differs", off)
			}
		}
	}
	pass()
	first := f.b.asked.Load()
	// The first reads, before random mode, fetch ahead a window each;
	// the rest fetch a block or two.
	if limit := int64(3*DefaultFirstWindow) + int64(len(offs))*2*DefaultBlockSize; first > limit {
		t.Errorf("random 4 KiB reads asked for %d bytes, more than %d", first, limit)
	}
	gets := f.b.gets.Load()
	pass()
	if g := f.b.gets.Load() - gets; g != 0 {
		t.Errorf("the second pass over the same offsets made %d GETs; want 0 (cached)", g)
	}
}

// TestStridedReadsFetchWhatTheyRead reads the way h5py reads one column of
// a chunked dataset: a chunk of 256 KiB every 8 MiB. Each jump lands within
// the forward tolerance of a sequential run, but the gaps are never read:
// the reader must not fetch the object ahead, only the chunks (and a first
// window), and after a few chunks it reads at random and caches them.
func TestStridedReadsFetchWhatTheyRead(t *testing.T) {
	const chunk, stride, chunks = 256 << 10, 8 << 20, 32
	f := newFixture(t, chunks*stride, 1<<30, Config{})
	base := int64(3 << 20)
	pass := func() {
		r := f.e.NewReader()
		defer r.Close()
		buf := make([]byte, chunk)
		for i := range int64(chunks) {
			off := base + i*stride
			if _, err := r.ReadAt(context.Background(), f.obj, buf, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, f.data[off:off+chunk]) {
				t.Fatalf("chunk at %d differs", off)
			}
		}
	}
	pass()
	read := int64(chunks * chunk)
	if asked, limit := f.b.asked.Load(), read+4*DefaultFirstWindow; asked > limit {
		t.Errorf("reading %d chunks of %d bytes, %d apart, asked for %d bytes, more than %d: the gaps were fetched", chunks, chunk, stride, asked, limit)
	}
	gets := f.b.gets.Load()
	pass()
	if g := f.b.gets.Load() - gets; g > 4 {
		t.Errorf("the second pass over the same chunks made %d GETs; want at most 4 (the chunks are cached once the reads are seen to be at random)", g)
	}
}

// TestStridedReadsAreFetchedAhead reads chunks at a fixed stride, with a
// small read elsewhere between each two, as HDF5 does when it also reads
// its chunk index. Once three chunks show the stride, the next ones are
// fetched before they are read.
func TestStridedReadsAreFetchedAhead(t *testing.T) {
	const chunk, stride, chunks = 256 << 10, 8 << 20, 32
	f := newFixture(t, chunks*stride, 1<<30, Config{})
	r := f.e.NewReader()
	defer r.Close()
	base := int64(3 << 20)
	buf := make([]byte, chunk)
	var hits int64
	for i := range int64(chunks) {
		off := base + i*stride
		before := f.e.Stats().Hits
		if _, err := r.ReadAt(context.Background(), f.obj, buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, f.data[off:off+chunk]) {
			t.Fatalf("chunk at %d differs", off)
		}
		hits += f.e.Stats().Hits - before
		// A read of the index, somewhere else.
		idx := int64(i%5) * 4096
		if _, err := r.ReadAt(context.Background(), f.obj, buf[:512], idx); err != nil {
			t.Fatal(err)
		}
	}
	// The first three chunks are read before the stride shows.
	if want := int64((chunks - 3) * chunk / DefaultBlockSize); hits < want {
		t.Errorf("the chunks' reads found %d blocks fetched ahead; want at least %d, all but the first three chunks'", hits, want)
	}
}

// TestReadsElsewhereDoNotEndAStream reads an object in order, with a small
// read of its index at its end every MiB, as HDF5 does when it reads a
// whole dataset: the stream keeps its window, and nothing is fetched
// twice.
func TestReadsElsewhereDoNotEndAStream(t *testing.T) {
	const size, chunk = 128 << 20, 256 << 10
	f := newFixture(t, size, 1<<30, Config{})
	r := f.e.NewReader()
	defer r.Close()
	buf := make([]byte, chunk)
	for off := int64(0); off < size; off += chunk {
		if _, err := r.ReadAt(context.Background(), f.obj, buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, f.data[off:off+chunk]) {
			t.Fatalf("read at %d differs", off)
		}
		if off%(1<<20) == 0 {
			if _, err := r.ReadAt(context.Background(), f.obj, buf[:4096], size-64<<10); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fetched := f.e.Stats().Fetched; fetched > size+DefaultFirstWindow {
		t.Errorf("fetched %d bytes for %d: the stream restarted", fetched, size)
	}
	// 128 MiB in parts of up to 8 MiB, after smaller first steps.
	if g := f.b.gets.Load(); g > 28 {
		t.Errorf("%d GETs for 128 MiB; the window did not grow", g)
	}
}

func TestConcurrentReadsOfOneBlockCoalesce(t *testing.T) {
	f := newFixture(t, 4<<20, 64<<20, Config{})
	f.b.gate = make(chan struct{})
	var wg sync.WaitGroup
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 1000)
		r := f.e.NewReader()
		wg.Go(func() {
			if _, err := r.ReadAt(context.Background(), f.obj, bufs[i], 3<<20); err != nil {
				t.Error(err)
			}
		})
	}
	// Let them all ask, then answer.
	deadline := time.Now().Add(10 * time.Second)
	for f.e.Stats().Hits+f.e.Stats().Misses < 8 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(f.b.gate)
	wg.Wait()
	for i := range bufs {
		if !bytes.Equal(bufs[i], f.data[3<<20:3<<20+1000]) {
			t.Fatalf("reader %d read wrong bytes", i)
		}
	}
	// Each reader fetches the block and a window ahead; shared blocks
	// are fetched once: the first reader's GETs serve everyone.
	if g := f.b.gets.Load(); g > 2 {
		t.Errorf("8 readers of one range made %d GETs; want them coalesced", g)
	}
}

func TestMemoryStaysWithinTheBudget(t *testing.T) {
	const limit = 6 << 20
	mem := bucket.NewMemory("bkt")
	budget := NewBudget(limit)
	e := New(Config{Budget: budget})
	t.Cleanup(e.Close)
	var objs []Object
	var datas [][]byte
	for i := range 4 {
		data := randomData(24<<20, uint64(i+1))
		key := fmt.Sprintf("obj%d", i)
		mem.PutBytes(key, data)
		info, _ := mem.Stat(context.Background(), key)
		objs = append(objs, Object{Bucket: mem, Key: key, ETag: info.ETag, Size: info.Size})
		datas = append(datas, data)
	}
	stop := make(chan struct{})
	var peak atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if u := budget.Used(); u > peak.Load() {
				peak.Store(u)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var wg sync.WaitGroup
	for i := range objs {
		wg.Go(func() {
			r := e.NewReader()
			buf := make([]byte, 1<<20)
			var got []byte
			for off := int64(0); off < objs[i].Size; {
				k, err := r.ReadAt(context.Background(), objs[i], buf, off)
				got = append(got, buf[:k]...)
				off += int64(k)
				if err != nil && err != io.EOF {
					t.Error(err)
					return
				}
			}
			if !bytes.Equal(got, datas[i]) {
				t.Errorf("object %d read back wrong", i)
			}
		})
	}
	wg.Wait()
	close(stop)
	if p := peak.Load(); p > limit {
		t.Errorf("used %d bytes, over the %d-byte budget", p, limit)
	}
	if u := budget.Used(); u != e.Stats().Held {
		t.Errorf("budget says %d bytes are used, the engine holds %d", u, e.Stats().Held)
	}
}

func TestBrokenBodiesAreResumed(t *testing.T) {
	f := newFixture(t, 20<<20, 256<<20, Config{})
	f.b.breakAfter = 300 << 10 // mid-block
	f.b.breaks.Store(5)
	got := f.readAll(t, f.e.NewReader(), 1<<20)
	if !bytes.Equal(got, f.data) {
		t.Fatal("read differs after broken bodies")
	}
	if f.b.breaks.Load() >= 0 {
		t.Fatal("no body was broken")
	}
}

func TestBodiesThatAlwaysBreakFailTheRead(t *testing.T) {
	f := newFixture(t, 2<<20, 256<<20, Config{})
	f.b.breakAfter = 10
	f.b.breaks.Store(1 << 30)
	_, err := f.e.NewReader().ReadAt(context.Background(), f.obj, make([]byte, 4096), 0)
	if err == nil || !errors.Is(err, errShortBody) {
		t.Fatalf("err = %v; want the short-body error", err)
	}
	// A failed block is fetched again by the next read.
	f.b.breaks.Store(0)
	buf := make([]byte, 4096)
	if _, err := f.e.NewReader().ReadAt(context.Background(), f.obj, buf, 0); err != nil || !bytes.Equal(buf, f.data[:4096]) {
		t.Fatalf("read after recovery: %v", err)
	}
}

func TestStaleVersionFails(t *testing.T) {
	f := newFixture(t, 1<<20, 64<<20, Config{})
	f.mem.PutBytes("obj", []byte("a new version"))
	_, err := f.e.NewReader().ReadAt(context.Background(), f.obj, make([]byte, 10), 0)
	if !errors.Is(err, bucket.ErrStale) {
		t.Fatalf("err = %v; want ErrStale", err)
	}
}

func TestInterruptedReadReturnsAndTheFetchGoesOn(t *testing.T) {
	f := newFixture(t, 1<<20, 64<<20, Config{})
	f.b.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := f.e.NewReader().ReadAt(ctx, f.obj, make([]byte, 10), 0)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	close(f.b.gate)
	buf := make([]byte, 10)
	if _, err := f.e.NewReader().ReadAt(context.Background(), f.obj, buf, 0); err != nil || !bytes.Equal(buf, f.data[:10]) {
		t.Fatalf("read after an interrupted one: %v", err)
	}
}

func TestEndOfObject(t *testing.T) {
	f := newFixture(t, 1000, 64<<20, Config{})
	r := f.e.NewReader()
	buf := make([]byte, 4096)
	k, err := r.ReadAt(context.Background(), f.obj, buf, 900)
	if k != 100 || err != io.EOF || !bytes.Equal(buf[:k], f.data[900:]) {
		t.Fatalf("read across the end: %d, %v", k, err)
	}
	if k, err := r.ReadAt(context.Background(), f.obj, buf, 1000); k != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v", k, err)
	}
	// A small file is one GET.
	if g := f.b.gets.Load(); g != 1 {
		t.Errorf("%d GETs for a 1000-byte object", g)
	}
}

func TestBudgetWaitsAndReclaims(t *testing.T) {
	b := NewBudget(100)
	if !b.TryAcquire(60, 0) || b.TryAcquire(60, 0) {
		t.Fatal("TryAcquire ignored the limit")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Acquire(ctx, 60); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire over the limit: %v", err)
	}
	got := make(chan error)
	go func() { got <- b.Acquire(context.Background(), 60) }()
	b.Release(60)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// The reclaimer is asked before waiting.
	b.setReclaimer(func(n int64) int64 { b.Release(60); return 60 })
	if err := b.Acquire(context.Background(), 60); err != nil || b.Used() != 60 {
		t.Fatalf("Acquire with a reclaimer: %v, used %d", err, b.Used())
	}
}
