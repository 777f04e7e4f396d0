package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

//go:embed h5bench.py
var h5Script []byte

// python is Debian's interpreter, which has python3-h5py; the python3 first
// on PATH may be another install without it.
const python = "/usr/bin/python3"

// Keys of the seeded data, relative to prefix.
func seqKey(i int) string { return fmt.Sprintf("%sseq/obj%d", benchD, i) }

const (
	warmKey   = benchD + "seq/warmup"
	h5Key     = benchD + "h5/data.h5"
	lsDir     = benchD + "ls"
	smallDir  = benchD + "small"
	writeDir  = benchD + "write"
	createDir = benchD + "create"
)

func lsKey(i int) string    { return fmt.Sprintf("%s/f%05d", lsDir, i) }
func smallKey(i int) string { return fmt.Sprintf("%s/f%04d", smallDir, i) }

// runAll runs every workload the configuration wants, in order.
func (b *bench) runAll(ctx context.Context) {
	c := b.cfg
	steps := []struct {
		id  string
		run func(context.Context)
	}{
		{"seq1", b.seq1}, {"seq4", b.seq4}, {"write", b.write},
		{"rand4k", func(ctx context.Context) { b.random(ctx, "rand4k", 4<<10) }},
		{"rand64k", func(ctx context.Context) { b.random(ctx, "rand64k", 64<<10) }},
		{"h5-subset", func(ctx context.Context) { b.h5(ctx, "h5-subset", "subset") }},
		{"h5-whole", func(ctx context.Context) { b.h5(ctx, "h5-whole", "whole") }},
		{"ls", b.ls}, {"create-small", b.createSmall}, {"read-small", b.readSmall}, {"ttfb", b.ttfb},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return
		}
		if c.wants(s.id) {
			began := time.Now()
			s.run(ctx)
			logf("workload %s done in %s", s.id, time.Since(began).Round(100*time.Millisecond))
		}
	}
}

// isBaseline reports whether system runs in this process rather than on a
// mount: an SDK variant or the local disk.
func isBaseline(system string) bool {
	return strings.HasPrefix(system, sdkPrefix) || system == sysLocal
}

// slug turns a system name into a file name part.
func slug(system string) string {
	if strings.HasPrefix(system, sdkPrefix) {
		return "sdk"
	}
	return system
}

// op runs one system once in a repetition of a group and records its
// figures; m is nil for baselines.
type op func(ctx context.Context, system string, m *mount, rep int) error

// runGroup runs a workload group reps times. Each repetition mounts every
// system afresh (in parallel), then runs the baselines and the mounts one
// after the other, in an order that rotates from one repetition to the
// next, dropping the page cache before each; then it records the peak RSS
// of each mount's process and unmounts. A system that fails is not run
// again in the group.
func (b *bench) runGroup(ctx context.Context, group string, reps int, baselines []string, run op) {
	logf("workload %s: %d runs", group, reps)
	var mu sync.Mutex // mu guards failed, mounts and b.notes while mounts start and stop in parallel.
	failed := map[string]bool{}
	fail := func(system string, err error) {
		mu.Lock()
		defer mu.Unlock()
		failed[system] = true
		b.res.failGroup(group, system, err)
		logf("workload %s: %s failed: %v", group, system, err)
	}
	names := slices.Clone(baselines)
	for _, mr := range b.mounters {
		names = append(names, mr.system)
	}
	for rep := 0; rep < reps && ctx.Err() == nil; rep++ {
		mounts := map[string]*mount{}
		var wg sync.WaitGroup
		for _, mr := range b.mounters {
			if failed[mr.system] {
				continue
			}
			wg.Go(func() {
				m, err := b.mounts.start(ctx, mr, b.mntRoot, b.logDir)
				if err != nil {
					fail(mr.system, err)
					return
				}
				mu.Lock()
				mounts[mr.system] = m
				mu.Unlock()
			})
		}
		wg.Wait()
		for i := range names {
			system := names[(i+rep)%len(names)]
			if failed[system] || ctx.Err() != nil {
				continue
			}
			m := mounts[system]
			if !isBaseline(system) && m == nil {
				continue
			}
			b.drop()
			began := time.Now()
			err := run(ctx, system, m, rep)
			logf("workload %s, run %d/%d: %s took %s", group, rep+1, reps, system, time.Since(began).Round(time.Millisecond))
			if err == nil && m != nil && m.exited() {
				err = fmt.Errorf("the %s process exited during the run: %v (see %s)", system, m.err, m.log)
			}
			if err != nil {
				fail(system, err)
			}
		}
		for system, m := range mounts {
			b.res.noteRSS(group, system, m.peakRSSKiB())
		}
		for system, m := range mounts {
			wg.Go(func() {
				if err := b.mounts.stop(m); err != nil {
					mu.Lock()
					b.notes = appendOnce(b.notes, fmt.Sprintf("%s, %s: %v", group, system, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
}

// appendOnce appends s to list unless it is there already.
func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// drop drops the page cache, if it can.
func (b *bench) drop() {
	if b.dropErr == nil {
		if err := dropCaches(); err != nil {
			b.dropErr = err
		}
	}
}

// timed runs f and returns how long it took.
func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// readFile reads path to the end in reads of len(buf) bytes, like
// `dd bs=1M`, and returns how many bytes it read.
func readFile(path string, buf []byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return n, err
		}
	}
	return n, f.Close()
}

// expectSize fails unless got is want.
func expectSize(what string, got, want int64) error {
	if got != want {
		return fmt.Errorf("%s: read %d bytes, want %d", what, got, want)
	}
	return nil
}

// warmUp reads a 64 MiB object through a fresh mount, untimed, then drops
// the page cache, so that the throughput rows measure a mount in use, as
// the SDK ceiling, measured in this long-running process, is: new
// connections, a heap that has yet to grow and a first readahead ramp are
// the time to first byte's business, not the throughput's.
func (b *bench) warmUp(m *mount, buf []byte) error {
	if _, err := readFile(m.path(warmKey), buf); err != nil {
		return fmt.Errorf("warm-up read: %w", err)
	}
	b.drop()
	return nil
}

// seq1 reads one large object sequentially.
func (b *bench) seq1(ctx context.Context) {
	size := b.cfg.objectSize
	b.res.addRow(row{id: "seq1", title: "sequential read, " + fmtBytes(size) + ", 1 reader", group: "seq1", kind: kindThroughput, bytes: size})
	var baselines []string
	for _, n := range b.cfg.sdkParallel {
		baselines = append(baselines, fmt.Sprintf("%s%d GETs", sdkPrefix, n))
	}
	buf := make([]byte, 1<<20)
	b.runGroup(ctx, "seq1", b.cfg.reps, baselines, func(ctx context.Context, system string, m *mount, rep int) error {
		var d time.Duration
		var err error
		if m == nil {
			var width int
			fmt.Sscanf(strings.TrimPrefix(system, sdkPrefix), "%d", &width)
			d, err = timed(func() error {
				return parallelGet(ctx, b.client, bucket, []string{prefix + seqKey(0)}, size, b.cfg.partSize, width)
			})
		} else {
			if err := b.warmUp(m, buf); err != nil {
				return err
			}
			var n int64
			d, err = timed(func() error {
				n, err = readFile(m.path(seqKey(0)), buf)
				return err
			})
			if err == nil {
				err = expectSize(seqKey(0), n, size)
			}
		}
		if err != nil {
			return err
		}
		b.res.add("seq1", system, d)
		return nil
	})
}

// seq4 reads four large objects at once, one reader each.
func (b *bench) seq4(ctx context.Context) {
	size := b.cfg.objectSize
	b.res.addRow(row{id: "seq4", title: "sequential read, 4 readers of 4 objects of " + fmtBytes(size), group: "seq4", kind: kindThroughput, bytes: 4 * size})
	width := slices.Max(b.cfg.sdkParallel)
	keys := []string{prefix + seqKey(0), prefix + seqKey(1), prefix + seqKey(2), prefix + seqKey(3)}
	b.runGroup(ctx, "seq4", b.cfg.reps, []string{fmt.Sprintf("%s%d GETs", sdkPrefix, width)}, func(ctx context.Context, system string, m *mount, rep int) error {
		var d time.Duration
		var err error
		if m == nil {
			d, err = timed(func() error { return parallelGet(ctx, b.client, bucket, keys, size, b.cfg.partSize, width) })
		} else {
			if err := b.warmUp(m, make([]byte, 1<<20)); err != nil {
				return err
			}
			errs := make([]error, 4)
			d, _ = timed(func() error {
				var wg sync.WaitGroup
				for i := range 4 {
					wg.Go(func() {
						n, err := readFile(m.path(seqKey(i)), make([]byte, 1<<20))
						if err == nil {
							err = expectSize(seqKey(i), n, size)
						}
						errs[i] = err
					})
				}
				wg.Wait()
				return nil
			})
			err = errors.Join(errs...)
		}
		if err != nil {
			return err
		}
		b.res.add("seq4", system, d)
		return nil
	})
}

// write writes one large file sequentially in 1 MiB writes, close
// included, and waits until the object is complete in the bucket.
func (b *bench) write(ctx context.Context) {
	size := b.cfg.objectSize
	b.res.addRow(row{id: "write", title: "sequential write, " + fmtBytes(size) + " (1 MiB writes, close included)", group: "write", kind: kindThroughput, bytes: size})
	var baselines []string
	for _, n := range b.cfg.sdkParallel {
		baselines = append(baselines, fmt.Sprintf("%s%d parts at once", sdkPrefix, n))
	}
	b.runGroup(ctx, "write", b.cfg.reps, baselines, func(ctx context.Context, system string, m *mount, rep int) error {
		rel := fmt.Sprintf("%s/%s-%d.bin", writeDir, slug(system), rep)
		key := prefix + rel
		defer func() { _ = deletePrefix(context.WithoutCancel(ctx), b.admin, bucket, key) }()
		var d time.Duration
		var err error
		if m == nil {
			var width int
			fmt.Sscanf(strings.TrimPrefix(system, sdkPrefix), "%d", &width)
			d, err = timed(func() error {
				return multipartUpload(ctx, b.client, bucket, key, size, b.cfg.partSize, width, func(off int64, buf []byte) {
					copy(buf, b.data[off:])
				})
			})
		} else {
			d, err = timed(func() error {
				if err := writeFile(m.path(rel), b.data, 1<<20); err != nil {
					return err
				}
				return b.waitObject(ctx, key, size)
			})
		}
		if err != nil {
			return err
		}
		b.res.add("write", system, d)
		return nil
	})
}

// writeFile creates path and writes data to it in writes of chunk bytes,
// then closes it.
func writeFile(path string, data []byte, chunk int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += chunk {
		if _, err := f.Write(data[off:min(off+chunk, len(data))]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// waitObject waits until key exists in the bucket with size bytes: a mount
// that uploads after close has not finished writing until then.
func (b *bench) waitObject(ctx context.Context, key string, size int64) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := objectSize(ctx, b.client, bucket, key)
		if err == nil && n == size {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not in the bucket with %d bytes 2 minutes after close (size %d, err %v)", key, size, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// random runs fio's random reads of bs bytes over one large object, twice
// on the same mount with the page cache dropped in between, so that the
// second pass measures the mount's own cache.
func (b *bench) random(ctx context.Context, group string, bs int) {
	n := b.cfg.randomIOs
	size := b.cfg.objectSize
	name := fmt.Sprintf("fio random %s reads ×%d over %s", fmtBytes(int64(bs)), n, fmtBytes(size))
	first, second := group+"-1", group+"-2"
	b.res.addRow(row{id: first, title: name + ", first pass", group: group, kind: kindOps, ops: n})
	b.res.addRow(row{id: second, title: name + ", second pass", group: group, kind: kindOps, ops: n})
	key := seqKey(1)
	b.runGroup(ctx, group, b.cfg.reps, []string{sdkPrefix + "serial ranged GETs"}, func(ctx context.Context, system string, m *mount, rep int) error {
		seed := 1000 + rep
		if m == nil {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(bs)))
			buf := make([]byte, bs)
			d, err := timed(func() error {
				for range n {
					off := rng.Int64N(size/int64(bs)) * int64(bs)
					r := fmt.Sprintf("bytes=%d-%d", off, off+int64(bs)-1)
					out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: ptr(bucket), Key: ptr(prefix + key), Range: &r})
					if err != nil {
						return err
					}
					_, err = io.ReadFull(out.Body, buf)
					out.Body.Close()
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			b.res.add(first, system, d)
			return nil
		}
		d1, err := runFio(ctx, m.path(key), bs, n, size, seed)
		if err != nil {
			return err
		}
		b.drop()
		d2, err := runFio(ctx, m.path(key), bs, n, size, seed)
		if err != nil {
			return err
		}
		b.res.add(first, system, d1)
		b.res.add(second, system, d2)
		return nil
	})
}

// ptr returns a pointer to s.
func ptr(s string) *string { return &s }

// fioResult is the part of fio's JSON output runFio reads.
type fioResult struct {
	Jobs []struct {
		Error int `json:"error"`
		Read  struct {
			TotalIOs int64 `json:"total_ios"`
			LatNs    struct {
				Mean float64 `json:"mean"`
			} `json:"lat_ns"`
		} `json:"read"`
	} `json:"jobs"`
}

// runFio runs n random reads of bs bytes with fio (one job, synchronous
// reads, through the page cache) over the first size bytes of path, with
// offsets drawn from seed, and returns the time spent in the reads: their
// mean latency times their number, which leaves out fio's own start.
func runFio(ctx context.Context, path string, bs, n int, size int64, seed int) (time.Duration, error) {
	args := []string{
		"--name=rand", "--filename=" + strings.ReplaceAll(path, ":", `\:`), "--readonly", "--rw=randread",
		fmt.Sprintf("--bs=%d", bs), fmt.Sprintf("--size=%d", size), fmt.Sprintf("--io_size=%d", int64(bs)*int64(n)),
		"--ioengine=psync", fmt.Sprintf("--randseed=%d", seed), "--output-format=json",
	}
	cmd := exec.CommandContext(ctx, "fio", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("fio: %v: %s", err, oneLine(stderr.String()))
	}
	var res fioResult
	// fio may print notes before its JSON.
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("fio output: %v", err)
	}
	if len(res.Jobs) != 1 || res.Jobs[0].Error != 0 || res.Jobs[0].Read.TotalIOs != int64(n) {
		return 0, fmt.Errorf("fio did not complete %d reads: %s", n, oneLine(string(out)))
	}
	r := res.Jobs[0].Read
	return time.Duration(r.LatNs.Mean * float64(r.TotalIOs)), nil
}

// h5 reads the chunked HDF5 dataset with h5py, a subset or the whole of it,
// from each mount and from the same file on local disk.
func (b *bench) h5(ctx context.Context, group, mode string) {
	c := b.cfg
	what := fmt.Sprintf("one column of chunks (%d chunks of %s)", c.h5Side/c.h5Chunk, fmtBytes(int64(c.h5Chunk)*int64(c.h5Chunk)*4))
	if mode == "whole" {
		what = "the whole dataset (" + fmtBytes(int64(c.h5Side)*int64(c.h5Side)*4) + ")"
	}
	b.res.addRow(row{id: group, title: "h5py, " + what, group: group, kind: kindTime})
	b.runGroup(ctx, group, c.reps, []string{sysLocal}, func(ctx context.Context, system string, m *mount, rep int) error {
		path := b.h5Local
		if m != nil {
			path = m.path(h5Key)
		}
		d, err := b.runH5(ctx, "read-"+mode, path)
		if err != nil {
			return err
		}
		b.res.add(group, system, d)
		return nil
	})
}

// runH5 runs the h5py script in mode on path and returns the time it
// measured itself (from opening the file to having the data, without the
// interpreter's start).
func (b *bench) runH5(ctx context.Context, mode, path string, extra ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, python, append([]string{filepath.Join(b.workdir, "h5bench.py"), mode, path}, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("h5py %s: %v: %s", mode, err, oneLine(stderr.String()))
	}
	var res struct {
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("h5py %s output %q: %v", mode, out, err)
	}
	return time.Duration(res.Seconds * float64(time.Second)), nil
}

// ls lists a directory of many objects with `ls -l` on a fresh mount
// (cold), then again (warm), against a raw paginated ListObjectsV2.
func (b *bench) ls(ctx context.Context) {
	n := b.cfg.lsCount
	name := fmt.Sprintf("`ls -l` of %s objects", thousands(float64(n)))
	b.res.addRow(row{id: "ls-cold", title: name + ", cold (fresh mount)", group: "ls", kind: kindTime})
	b.res.addRow(row{id: "ls-warm", title: name + ", warm (again)", group: "ls", kind: kindTime})
	b.runGroup(ctx, "ls", b.cfg.reps, []string{sdkPrefix + "ListObjectsV2"}, func(ctx context.Context, system string, m *mount, rep int) error {
		if m == nil {
			var got int
			d, err := timed(func() error {
				var err error
				got, err = listCount(ctx, b.client, bucket, prefix+lsDir+"/")
				return err
			})
			if err == nil && got != n {
				err = fmt.Errorf("ListObjectsV2 saw %d objects, want %d", got, n)
			}
			if err != nil {
				return err
			}
			b.res.add("ls-cold", system, d)
			return nil
		}
		if _, err := os.Stat(m.path(benchD)); err != nil {
			return err
		}
		for _, id := range []string{"ls-cold", "ls-warm"} {
			d, err := lsL(ctx, m.path(lsDir), n)
			if err != nil {
				return err
			}
			b.res.add(id, system, d)
		}
		return nil
	})
}

// lsL runs `ls -l dir`, checks that it lists want entries and returns how
// long it took.
func lsL(ctx context.Context, dir string, want int) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "ls", "-l", "--color=never", dir)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var lines lineCounter
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lines, &stderr
	d, err := timed(cmd.Run)
	if err != nil {
		return 0, fmt.Errorf("ls -l: %v: %s", err, oneLine(stderr.String()))
	}
	if got := int(lines) - 1; got != want { // the first line is "total N"
		return 0, fmt.Errorf("ls -l listed %d entries, want %d", got, want)
	}
	return d, nil
}

// lineCounter counts the newlines written to it.
type lineCounter int

func (c *lineCounter) Write(p []byte) (int, error) {
	*c += lineCounter(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// createSmall creates many small files, one after the other, each closed
// before the next.
func (b *bench) createSmall(ctx context.Context) {
	n, size := b.cfg.smallCount, b.cfg.smallSize
	b.res.addRow(row{id: "create-small", title: fmt.Sprintf("create %s files of %s", thousands(float64(n)), fmtBytes(int64(size))), group: "create-small", kind: kindOps, ops: n})
	body := b.data[:size]
	b.runGroup(ctx, "create-small", b.cfg.reps, []string{sdkPrefix + "serial PUTs"}, func(ctx context.Context, system string, m *mount, rep int) error {
		rel := fmt.Sprintf("%s/%s-%d", createDir, slug(system), rep)
		defer func() { _ = deletePrefix(context.WithoutCancel(ctx), b.admin, bucket, prefix+rel+"/") }()
		var d time.Duration
		var err error
		if m == nil {
			d, err = timed(func() error {
				for i := range n {
					if err := putObject(ctx, b.client, bucket, fmt.Sprintf("%s%s/f%04d", prefix, rel, i), body); err != nil {
						return err
					}
				}
				return nil
			})
		} else {
			dir := m.path(rel)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			d, err = timed(func() error {
				for i := range n {
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), body, 0o644); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err != nil {
			return err
		}
		// Every file must have reached the bucket.
		got, err := listCount(ctx, b.admin, bucket, prefix+rel+"/")
		if err != nil {
			return err
		}
		if got < n {
			return fmt.Errorf("only %d of %d files reached the bucket", got, n)
		}
		b.res.add("create-small", system, d)
		return nil
	})
}

// readSmall reads many small files whole, one after the other, on a fresh
// mount.
func (b *bench) readSmall(ctx context.Context) {
	n, size := b.cfg.smallCount, b.cfg.smallSize
	b.res.addRow(row{id: "read-small", title: fmt.Sprintf("read %s files of %s", thousands(float64(n)), fmtBytes(int64(size))), group: "read-small", kind: kindOps, ops: n})
	b.runGroup(ctx, "read-small", b.cfg.reps, []string{sdkPrefix + "serial GETs"}, func(ctx context.Context, system string, m *mount, rep int) error {
		var d time.Duration
		var err error
		if m == nil {
			d, err = timed(func() error {
				for i := range n {
					out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: ptr(bucket), Key: ptr(prefix + smallKey(i))})
					if err != nil {
						return err
					}
					k, err := io.Copy(io.Discard, out.Body)
					out.Body.Close()
					if err == nil {
						err = expectSize(smallKey(i), k, int64(size))
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
		} else {
			if _, err := os.Stat(m.path(benchD)); err != nil {
				return err
			}
			d, err = timed(func() error {
				for i := range n {
					data, err := os.ReadFile(m.path(smallKey(i)))
					if err != nil {
						return err
					}
					if err := expectSize(smallKey(i), int64(len(data)), int64(size)); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err != nil {
			return err
		}
		b.res.add("read-small", system, d)
		return nil
	})
}

// ttfb measures the time to the first byte of a large object not read
// before on a fresh mount: open and read one byte. The object's directory
// is looked up first.
func (b *bench) ttfb(ctx context.Context) {
	b.res.addRow(row{id: "ttfb", title: "time to first byte (open + read 1 byte of " + fmtBytes(b.cfg.objectSize) + ")", group: "ttfb", kind: kindTime})
	b.runGroup(ctx, "ttfb", b.cfg.ttfbReps, []string{sdkPrefix + "GET"}, func(ctx context.Context, system string, m *mount, rep int) error {
		key := seqKey(rep % 4)
		one := make([]byte, 1)
		var d time.Duration
		if m == nil {
			start := time.Now()
			out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: ptr(bucket), Key: ptr(prefix + key)})
			if err != nil {
				return err
			}
			_, err = io.ReadFull(out.Body, one)
			d = time.Since(start)
			out.Body.Close()
			if err != nil {
				return err
			}
		} else {
			if _, err := os.Stat(filepath.Dir(m.path(key))); err != nil {
				return err
			}
			start := time.Now()
			f, err := os.Open(m.path(key))
			if err != nil {
				return err
			}
			_, err = io.ReadFull(f, one)
			d = time.Since(start)
			f.Close()
			if err != nil {
				return err
			}
		}
		b.res.add("ttfb", system, d)
		return nil
	})
}
