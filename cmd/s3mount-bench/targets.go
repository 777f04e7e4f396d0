package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// check is one measurable part of a target.
type check struct {
	desc     string // desc says what was found, e.g. "0.46× the ceiling (want ≥ 0.80×)".
	measured bool   // measured is false when a figure it needs is missing.
	ok       bool   // ok says the part is met; meaningful only when measured.
}

// target is one line of the "Targets" table, checked against a run.
type target struct {
	workload string
	want     string
	checks   []check
}

// status sums up the checks: "met", "NOT met", "met where measured" or
// "not measured".
func (t target) status() string {
	measured, failed := 0, 0
	for _, c := range t.checks {
		if c.measured {
			measured++
			if !c.ok {
				failed++
			}
		}
	}
	switch {
	case failed > 0:
		return "NOT met"
	case measured == 0:
		return "not measured"
	case measured < len(t.checks):
		return "met where measured"
	default:
		return "met"
	}
}

// speedup returns other's median time over s3mount's on row id: how many
// times as fast as other s3mount is.
func speedup(res *results, id, other string) (float64, bool) {
	r := res.byID[id]
	if r == nil {
		return 0, false
	}
	s, ok := r.median(sysS3mount)
	if !ok || s <= 0 {
		return 0, false
	}
	var o time.Duration
	if other == "ceiling" {
		o, _, ok = r.ceiling()
	} else {
		o, ok = r.median(other)
	}
	if !ok {
		return 0, false
	}
	return float64(o) / float64(s), true
}

// atLeast checks that s3mount is at least min times as fast as other on
// row id (strictly faster when strict). label, if not empty, starts the
// description, to tell rows of one target apart.
func atLeast(res *results, label, id, other, name string, min float64, strict bool) check {
	v, ok := speedup(res, id, other)
	op := "≥"
	if strict {
		op = ">"
	}
	if label != "" {
		label += ": "
	}
	if !ok {
		return check{desc: fmt.Sprintf("%s%s not measured", label, name)}
	}
	met := v >= min
	if strict {
		met = v > min
	}
	return check{
		desc:     fmt.Sprintf("%s%.2f× %s (want %s %.2f×)", label, v, name, op, min),
		measured: true,
		ok:       met,
	}
}

// evaluateTargets checks the run against the targets.
func evaluateTargets(res *results, limit memLimit, slackMiB float64) []target {
	var ts []target
	ts = append(ts, target{"sequential read, 1 reader", "≥ 0.8 × the parallel SDK ceiling, and ≥ 1.5 × s3fs", []check{
		atLeast(res, "", "seq1", "ceiling", "the ceiling", 0.8, false),
		atLeast(res, "", "seq1", sysS3fs, "s3fs", 1.5, false),
	}})
	ts = append(ts, target{"4 readers", "≥ 0.8 × the ceiling for the same four downloads", []check{
		atLeast(res, "", "seq4", "ceiling", "the ceiling", 0.8, false),
	}})
	ts = append(ts, target{"sequential write", "≥ 0.9 × the SDK upload, and ≥ 2 × s3fs", []check{
		atLeast(res, "", "write", "ceiling", "the SDK upload", 0.9, false),
		atLeast(res, "", "write", sysS3fs, "s3fs", 2, false),
	}})
	ts = append(ts, target{"random 64 KiB, first pass", "faster than s3fs and rclone", []check{
		atLeast(res, "", "rand64k-1", sysS3fs, "s3fs", 1, true),
		atLeast(res, "", "rand64k-1", sysRclone, "rclone", 1, true),
	}})
	ts = append(ts, target{"random 64 KiB, second pass", "≥ 10 × the first pass (the block cache)", []check{secondPass(res)}})
	var h5 []check
	for _, id := range []string{"h5-subset", "h5-whole"} {
		label := strings.TrimPrefix(id, "h5-")
		h5 = append(h5,
			atLeast(res, label, id, sysS3fs, "s3fs", 1, true),
			atLeast(res, label, id, sysRclone, "rclone", 1, true),
			atLeast(res, label, id, sysLocal, "local disk", 0.5, false))
	}
	ts = append(ts, target{"h5py subset and whole reads", "faster than s3fs and rclone, and within 2 × of local disk", h5})
	ts = append(ts, target{"`ls -l`, cold", "≤ 1.5 × a raw paginated ListObjectsV2 of the same prefix", []check{
		atLeast(res, "", "ls-cold", "ceiling", "ListObjectsV2", 1/1.5, false),
	}})
	ts = append(ts, target{"`ls -l`, warm", "under 100 ms", []check{under(res, "ls-warm", 100*time.Millisecond)}})
	ts = append(ts, target{"peak RSS", fmt.Sprintf("≤ the memory limit + %.0f MiB in every workload", slackMiB), rssChecks(res, limit, slackMiB)})
	return ts
}

// secondPass checks that s3mount's second pass of random 64 KiB reads is at
// least 10 times as fast as its first.
func secondPass(res *results) check {
	first, ok1 := res.byID["rand64k-1"].median(sysS3mount)
	second, ok2 := res.byID["rand64k-2"].median(sysS3mount)
	if !ok1 || !ok2 || second <= 0 {
		return check{desc: "s3mount's two passes not measured"}
	}
	v := float64(first) / float64(second)
	return check{desc: fmt.Sprintf("second pass %.2f× as fast as the first (want ≥ 10×)", v), measured: true, ok: v >= 10}
}

// under checks that s3mount's median on row id is below limit.
func under(res *results, id string, limit time.Duration) check {
	d, ok := res.byID[id].median(sysS3mount)
	if !ok {
		return check{desc: "s3mount not measured"}
	}
	return check{desc: fmt.Sprintf("%s (want < %s)", fmtDuration(d), fmtDuration(limit)), measured: true, ok: d < limit}
}

// rssChecks checks s3mount's peak RSS in every group against the limit plus
// slack.
func rssChecks(res *results, limit memLimit, slackMiB float64) []check {
	if limit.mib <= 0 {
		return []check{{desc: "memory limit unknown"}}
	}
	bound := float64(limit.mib) + slackMiB
	var worst float64
	worstGroup := ""
	var over []string
	n := 0
	for _, g := range res.groups {
		kib, ok := res.rss[g][sysS3mount]
		if !ok {
			continue
		}
		n++
		mib := float64(kib) / 1024
		if mib > worst {
			worst, worstGroup = mib, g
		}
		if mib > bound {
			over = append(over, fmt.Sprintf("%s %.0f MiB", g, mib))
		}
	}
	if n == 0 {
		return []check{{desc: "s3mount's RSS not measured"}}
	}
	desc := fmt.Sprintf("largest %.0f MiB (%s) against %.0f MiB (%d + %.0f)", worst, worstGroup, bound, limit.mib, slackMiB)
	if len(over) > 0 {
		desc += "; over in: " + strings.Join(over, ", ")
	}
	if !limit.supported {
		desc += "; the binary bounds only write buffers (--write-memory)"
	}
	return []check{{desc: desc, measured: true, ok: len(over) == 0}}
}

// writeTargets writes the targets table.
func writeTargets(w io.Writer, res *results, limit memLimit) {
	ts := evaluateTargets(res, limit, rssSlackMiB)
	fmt.Fprintf(w, "Targets (issue 8), checked against this run:\n\n")
	fmt.Fprintf(w, "| workload | target | result | status |\n| --- | --- | --- | --- |\n")
	for _, t := range ts {
		var descs []string
		for _, c := range t.checks {
			descs = append(descs, c.desc)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.workload, t.want, strings.Join(descs, "; "), t.status())
	}
}
