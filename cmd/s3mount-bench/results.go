package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// rowKind says how a row's figures read.
type rowKind int

const (
	kindThroughput rowKind = iota // kindThroughput rows move bytes: MiB/s.
	kindOps                       // kindOps rows do ops operations: time and operations per second.
	kindTime                      // kindTime rows are a time only.
)

// Systems measured. Ceiling variants are named sdkPrefix + a label, such as
// "sdk:16 GETs"; the best of them is the row's ceiling.
const (
	sysS3mount = "s3mount"
	sysS3fs    = "s3fs"
	sysRclone  = "rclone"
	sysLocal   = "local"
	sdkPrefix  = "sdk:"
)

// row is one line of the report: one measurement, taken on several systems
// several times.
type row struct {
	id    string // id names the row for the targets, e.g. "seq1".
	title string // title is what the table shows.
	group string // group is the workload group; peak RSS is per group.
	kind  rowKind
	bytes int64 // bytes is the data one run moves, for kindThroughput.
	ops   int   // ops is the number of operations of one run, for kindOps.

	samples map[string][]time.Duration // samples maps a system to its run times.
	errs    map[string]string          // errs maps a system to its first error.
}

// results collects every measurement of a run. It is used by one goroutine.
type results struct {
	rows   []*row
	byID   map[string]*row
	groups []string                    // groups are the workload groups in the order they ran.
	rss    map[string]map[string]int64 // rss maps group, then system, to the peak RSS in KiB.
}

func newResults() *results {
	return &results{byID: map[string]*row{}, rss: map[string]map[string]int64{}}
}

// addRow registers a row; adding an id twice returns the first row.
func (res *results) addRow(r row) *row {
	if old, ok := res.byID[r.id]; ok {
		return old
	}
	r.samples = map[string][]time.Duration{}
	r.errs = map[string]string{}
	p := &r
	res.rows = append(res.rows, p)
	res.byID[r.id] = p
	if !slices.Contains(res.groups, r.group) {
		res.groups = append(res.groups, r.group)
	}
	return p
}

// add records one run of system on row id.
func (res *results) add(id, system string, d time.Duration) {
	r := res.byID[id]
	r.samples[system] = append(r.samples[system], d)
}

// fail records that system failed on row id; only the first error is kept.
func (res *results) fail(id, system string, err error) {
	r := res.byID[id]
	if _, ok := r.errs[system]; !ok {
		r.errs[system] = err.Error()
	}
}

// failGroup records that system failed on every row of group.
func (res *results) failGroup(group, system string, err error) {
	for _, r := range res.rows {
		if r.group == group {
			res.fail(r.id, system, err)
		}
	}
}

// noteRSS records a peak RSS of system's process during group.
func (res *results) noteRSS(group, system string, kib int64) {
	if kib <= 0 {
		return
	}
	m := res.rss[group]
	if m == nil {
		m = map[string]int64{}
		res.rss[group] = m
	}
	m[system] = max(m[system], kib)
}

// median returns the median of ds, or 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// median returns the median time of system on the row, and whether it was
// measured without error.
func (r *row) median(system string) (time.Duration, bool) {
	if r == nil {
		return 0, false
	}
	if _, failed := r.errs[system]; failed {
		return 0, false
	}
	s := r.samples[system]
	if len(s) == 0 {
		return 0, false
	}
	return median(s), true
}

// ceiling returns the best (shortest) median among the row's SDK variants
// and that variant's label.
func (r *row) ceiling() (time.Duration, string, bool) {
	var best time.Duration
	label := ""
	found := false
	for _, sys := range r.systems() {
		l, ok := strings.CutPrefix(sys, sdkPrefix)
		if !ok {
			continue
		}
		if d, ok := r.median(sys); ok && (!found || d < best) {
			best, label, found = d, l, true
		}
	}
	return best, label, found
}

// systems returns the systems measured or failed on the row, sorted.
func (r *row) systems() []string {
	var out []string
	for s := range r.samples {
		out = append(out, s)
	}
	for s := range r.errs {
		if _, ok := r.samples[s]; !ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// hasSDK reports whether the row has any SDK variant, measured or failed.
func (r *row) hasSDK() bool {
	for _, s := range r.systems() {
		if strings.HasPrefix(s, sdkPrefix) {
			return true
		}
	}
	return false
}

// figure formats a median time d as the row reads it.
func (r *row) figure(d time.Duration) string {
	switch r.kind {
	case kindThroughput:
		return fmt.Sprintf("%s MiB/s (%s)", thousands(mibPerSec(r.bytes, d)), fmtDuration(d))
	case kindOps:
		return fmt.Sprintf("%s (%s/s)", fmtDuration(d), thousands(float64(r.ops)/d.Seconds()))
	default:
		return fmtDuration(d)
	}
}

// mibPerSec returns bytes/d in MiB per second.
func mibPerSec(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}

// fmtDuration formats d with three significant digits in s, ms or µs.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

// thousands formats v rounded to an integer with comma separators, or with
// two significant decimals below 10.
func thousands(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2g", v)
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ratio formats how many times as fast as other s3mount is: other's time
// over s3mount's.
func ratio(s3mount, other time.Duration) string {
	if s3mount <= 0 || other <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", float64(other)/float64(s3mount))
}
