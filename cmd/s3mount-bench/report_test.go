package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestMedian(t *testing.T) {
	cases := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5}, 5},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{10, 30}, 20},
	}
	for _, c := range cases {
		in := append([]time.Duration(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("median reordered its input")
			}
		}
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		12 * time.Second: "12.0 s", 1530 * ms: "1.53 s", 250 * ms: "250 ms", 12340 * time.Microsecond: "12.3 ms",
		1500 * time.Microsecond: "1.50 ms", 80 * time.Microsecond: "80 µs",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for v, want := range map[float64]string{1376.4: "1,376", 1234567: "1,234,567", 636: "636", 5.25: "5.2", 0.5: "0.5"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
	if got := ratio(2*time.Second, time.Second); got != "0.50×" {
		t.Errorf("ratio = %q", got)
	}
	r := &row{kind: kindThroughput, bytes: 1 << 30}
	if got := r.figure(2 * time.Second); got != "512 MiB/s (2.00 s)" {
		t.Errorf("throughput figure = %q", got)
	}
	r = &row{kind: kindOps, ops: 400}
	if got := r.figure(time.Second); got != "1.00 s (400/s)" {
		t.Errorf("ops figure = %q", got)
	}
}

// sampleResults returns results that meet some targets and miss others.
func sampleResults() *results {
	res := newResults()
	add := func(r row, samples map[string][]time.Duration) {
		res.addRow(r)
		for sys, ds := range samples {
			for _, d := range ds {
				res.add(r.id, sys, d)
			}
		}
	}
	add(row{id: "seq1", title: "seq", group: "seq1", kind: kindThroughput, bytes: 1 << 30}, map[string][]time.Duration{
		sysS3mount:        {1000 * ms, 1100 * ms, 900 * ms},
		"sdk:8 GETs":      {800 * ms, 800 * ms, 800 * ms},
		"sdk:16 GETs":     {700 * ms, 700 * ms, 700 * ms},
		sysS3fs:           {1400 * ms, 1400 * ms, 1400 * ms},
		sysRclone:         {4000 * ms, 4000 * ms, 4000 * ms},
		"sdk:never ended": nil,
	})
	add(row{id: "rand64k-1", title: "r1", group: "rand64k", kind: kindOps, ops: 400}, map[string][]time.Duration{
		sysS3mount: {1000 * ms}, sysS3fs: {1100 * ms}, sysRclone: {3000 * ms},
	})
	add(row{id: "rand64k-2", title: "r2", group: "rand64k", kind: kindOps, ops: 400}, map[string][]time.Duration{
		sysS3mount: {50 * ms},
	})
	add(row{id: "ls-warm", title: "warm", group: "ls", kind: kindTime}, map[string][]time.Duration{
		sysS3mount: {5 * ms},
	})
	res.noteRSS("seq1", sysS3mount, 300<<10)
	res.noteRSS("seq1", sysS3mount, 200<<10) // the largest stays
	res.noteRSS("rand64k", sysS3mount, 100<<10)
	res.noteRSS("rand64k", sysS3fs, 20<<10)
	return res
}

func TestTargets(t *testing.T) {
	res := sampleResults()
	ts := evaluateTargets(res, memLimit{flag: "memory-limit", mib: 256, supported: true}, 64)
	status := map[string]string{}
	for _, tg := range ts {
		status[tg.workload] = tg.status()
	}
	want := map[string]string{
		// 700/1000 = 0.70× the best ceiling; 1.4× s3fs.
		"sequential read, 1 reader":   "NOT met",
		"4 readers":                   "not measured",
		"random 64 KiB, first pass":   "met",
		"random 64 KiB, second pass":  "met",
		"`ls -l`, warm":               "met",
		"peak RSS":                    "met", // 300 MiB ≤ 256 + 64
		"h5py subset and whole reads": "not measured",
	}
	for w, s := range want {
		if status[w] != s {
			t.Errorf("target %q: status %q, want %q", w, status[w], s)
		}
	}
	ts = evaluateTargets(res, memLimit{flag: "memory-limit", mib: 200, supported: true}, 64)
	for _, tg := range ts {
		if tg.workload == "peak RSS" && (tg.status() != "NOT met" || !strings.Contains(tg.checks[0].desc, "seq1 300 MiB")) {
			t.Errorf("peak RSS over the limit: %s, %+v", tg.status(), tg.checks)
		}
	}
}

func TestPartlyMeasured(t *testing.T) {
	tg := target{checks: []check{{measured: true, ok: true}, {measured: false}}}
	if got := tg.status(); got != "met where measured" {
		t.Errorf("status = %q", got)
	}
}

func TestCeilingPicksTheBestVariant(t *testing.T) {
	r := sampleResults().byID["seq1"]
	d, label, ok := r.ceiling()
	if !ok || d != 700*ms || label != "16 GETs" {
		t.Errorf("ceiling = %v %q %v", d, label, ok)
	}
}

func TestReport(t *testing.T) {
	res := sampleResults()
	res.fail("seq1", sysRclone, errors.New("rclone did not mount:\nexit status 1"))
	var b strings.Builder
	writeReport(&b, header{title: "t", lines: [][2]string{{"Machine", "m"}}, limit: memLimit{flag: "memory-limit", mib: 256, supported: true}, notes: []string{"a note"}}, res)
	out := b.String()
	for _, want := range []string{
		"- Machine: m",
		"| seq | 1,024 MiB/s (1.00 s) | 1,463 MiB/s (700 ms), 16 GETs | 731 MiB/s (1.40 s) | error | 0.70× | 1.40× |  |",
		"| seq1 | 300 |", // peak RSS table
		"| sequential read, 1 reader | ≥ 0.8 × the parallel SDK ceiling, and ≥ 1.5 × s3fs | 0.70× the ceiling (want ≥ 0.80×); 1.40× s3fs (want ≥ 1.50×) | NOT met |",
		"- seq, rclone: rclone did not mount: exit status 1",
		"- a note",
		"| seq | sdk:16 GETs | 700.0, 700.0, 700.0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestSplice(t *testing.T) {
	doc := "# Benchmarks\n\nprose\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\nmore prose\n"
	got, ok := splice(doc, "## Report\n\nnew table\n")
	want := "# Benchmarks\n\nprose\n\n" + beginMarker + "\n\n### Report\n\nnew table\n\n" + endMarker + "\n\nmore prose\n"
	if !ok || got != want {
		t.Errorf("splice = %q, %v; want %q", got, ok, want)
	}
	if _, ok := splice("no markers", "x"); ok {
		t.Error("splice without markers succeeded")
	}
	if _, ok := splice(endMarker+beginMarker, "x"); ok {
		t.Error("splice with markers out of order succeeded")
	}
}

func TestParallel(t *testing.T) {
	var n atomic.Int64
	if err := parallel(context.Background(), 100, 8, func(ctx context.Context, i int) error {
		n.Add(int64(i))
		return nil
	}); err != nil || n.Load() != 4950 {
		t.Errorf("parallel: err %v, sum %d", err, n.Load())
	}
	boom := errors.New("boom")
	var calls atomic.Int64
	err := parallel(context.Background(), 1000, 2, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() >= 1000 {
		t.Errorf("parallel after an error: err %v, %d calls", err, calls.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := parallel(ctx, 10, 2, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("parallel on a cancelled context: %v", err)
	}
}

func TestSplitParts(t *testing.T) {
	ps := splitParts([]string{"a", "b"}, 20, 8)
	if len(ps) != 6 || ps[2] != (part{"a", 16, 4}) || ps[3] != (part{"b", 0, 8}) {
		t.Errorf("splitParts = %v", ps)
	}
}

func TestFillRandom(t *testing.T) {
	a, b, c := make([]byte, 64), make([]byte, 64), make([]byte, 64)
	fillRandom("x", 0, a)
	fillRandom("x", 0, b)
	fillRandom("y", 0, c)
	if string(a) != string(b) || string(a) == string(c) {
		t.Error("fillRandom is not a function of its name and offset")
	}
}
