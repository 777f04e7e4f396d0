package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// header is what the report says about the run before its figures.
type header struct {
	title   string
	lines   [][2]string // lines are label and value pairs, in order.
	notes   []string    // notes are said after the tables.
	limit   memLimit
	elapsed time.Duration
}

// peerColumns are the systems with a column of their own, after s3mount
// and the ceiling, in order.
var peerColumns = []string{sysS3fs, sysRclone, sysLocal}

// columnTitle names a system's column.
var columnTitle = map[string]string{
	sysS3fs:   "s3fs",
	sysRclone: "rclone mount",
	sysLocal:  "local disk",
}

// writeReport writes the whole markdown report.
func writeReport(w io.Writer, h header, res *results) {
	fmt.Fprintf(w, "## %s\n\n", h.title)
	for _, l := range h.lines {
		fmt.Fprintf(w, "- %s: %s\n", l[0], l[1])
	}
	fmt.Fprintln(w)
	writeTable(w, res)
	fmt.Fprintln(w)
	writeRSS(w, res, h.limit)
	fmt.Fprintln(w)
	writeTargets(w, res, h.limit)
	fmt.Fprintln(w)
	writeErrors(w, res)
	if len(h.notes) > 0 {
		fmt.Fprintf(w, "Notes:\n\n")
		for _, n := range h.notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
		fmt.Fprintln(w)
	}
	writeSamples(w, res)
	if h.elapsed > 0 {
		fmt.Fprintf(w, "\nThe run took %s.\n", h.elapsed.Round(time.Second))
	}
}

// writeTable writes the figures: one row per measurement, medians of the
// runs, and s3mount's speed as a multiple of each other system's.
func writeTable(w io.Writer, res *results) {
	var peers []string
	for _, p := range peerColumns {
		for _, r := range res.rows {
			if slices.Contains(r.systems(), p) {
				peers = append(peers, p)
				break
			}
		}
	}
	cols := []string{"workload", "s3mount", "ceiling (SDK)"}
	for _, p := range peers {
		cols = append(cols, columnTitle[p])
	}
	cols = append(cols, "× ceiling")
	for _, p := range peers {
		cols = append(cols, "× "+columnTitle[p])
	}
	fmt.Fprintf(w, "Medians; `× X` is s3mount's speed as a multiple of X's (X's time over s3mount's: above 1 means s3mount is faster).\n\n")
	fmt.Fprintf(w, "| %s |\n", strings.Join(cols, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(cols)))
	for _, r := range res.rows {
		cells := []string{r.title}
		s3m, s3mOK := r.median(sysS3mount)
		cells = append(cells, cell(r, sysS3mount))
		ceil, label, ceilOK := r.ceiling()
		switch {
		case ceilOK:
			c := r.figure(ceil)
			if label != "" {
				c += ", " + label
			}
			cells = append(cells, c)
		case r.hasSDK():
			cells = append(cells, "error")
		default:
			cells = append(cells, "")
		}
		for _, p := range peers {
			cells = append(cells, cell(r, p))
		}
		rc := ""
		if s3mOK && ceilOK {
			rc = ratio(s3m, ceil)
		}
		cells = append(cells, rc)
		for _, p := range peers {
			d, ok := r.median(p)
			if s3mOK && ok {
				cells = append(cells, ratio(s3m, d))
			} else {
				cells = append(cells, "")
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// cell formats system's median on row r: the figure, "error", or empty.
func cell(r *row, system string) string {
	if _, failed := r.errs[system]; failed {
		return "error"
	}
	if d, ok := r.median(system); ok {
		return r.figure(d)
	}
	return ""
}

// writeRSS writes the peak RSS of each mount's process per workload group.
func writeRSS(w io.Writer, res *results, limit memLimit) {
	systems := []string{sysS3mount, sysS3fs, sysRclone}
	var have []string
	for _, s := range systems {
		for _, g := range res.groups {
			if res.rss[g][s] > 0 {
				have = append(have, s)
				break
			}
		}
	}
	if len(have) == 0 {
		return
	}
	fmt.Fprintf(w, "Peak RSS (VmHWM) of each mount's process, MiB, the largest over the runs of a workload (every run mounts afresh):\n\n")
	fmt.Fprintf(w, "| workload | %s |\n", strings.Join(have, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(have)+1))
	for _, g := range res.groups {
		cells := []string{g}
		for _, s := range have {
			if kib := res.rss[g][s]; kib > 0 {
				cells = append(cells, fmt.Sprintf("%.0f", float64(kib)/1024))
			} else {
				cells = append(cells, "")
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	if limit.mib > 0 {
		fmt.Fprintf(w, "\ns3mount's memory limit: %s.\n", limit)
	}
}

// writeErrors lists every system that failed a row, with its first error.
func writeErrors(w io.Writer, res *results) {
	var lines []string
	for _, r := range res.rows {
		for _, s := range r.systems() {
			if e, ok := r.errs[s]; ok {
				lines = append(lines, fmt.Sprintf("- %s, %s: %s", r.title, s, oneLine(e)))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "Errors:\n\n%s\n\n", strings.Join(lines, "\n"))
}

// writeSamples lists every run's time, so that noise shows.
func writeSamples(w io.Writer, res *results) {
	fmt.Fprintf(w, "<details><summary>Every run, in ms</summary>\n\n")
	fmt.Fprintf(w, "| workload | system | runs |\n| --- | --- | --- |\n")
	for _, r := range res.rows {
		for _, s := range r.systems() {
			var ms []string
			for _, d := range r.samples[s] {
				ms = append(ms, fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)))
			}
			if len(ms) > 0 {
				fmt.Fprintf(w, "| %s | %s | %s |\n", r.title, s, strings.Join(ms, ", "))
			}
		}
	}
	fmt.Fprintf(w, "\n</details>\n")
}

// oneLine shortens s to one line of at most 300 characters.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
