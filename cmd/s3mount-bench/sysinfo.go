package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// machine describes the machine for the report: CPU model, cores, memory,
// kernel and distribution.
func machine() string {
	cpu := "unknown CPU"
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		cpu = v
	}
	mem := "unknown memory"
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		if kib, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64); err == nil {
			mem = fmt.Sprintf("%.1f GiB RAM", float64(kib)/(1<<20))
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	s := fmt.Sprintf("%s, %d cores, %s, %s", cpu, runtime.NumCPU(), mem, kernel)
	if d := osRelease(); d != "" {
		s += ", " + d
	}
	return s
}

// procField returns the value of the first "key : value" line of a /proc
// file whose key is key.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// osRelease returns the distribution's PRETTY_NAME, or "".
func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// gitCommit returns the checked-out commit, with "+ uncommitted changes"
// when the work tree differs from it.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += " + uncommitted changes"
	}
	if subj, err := exec.Command("git", "log", "-1", "--format=%s").Output(); err == nil {
		c += fmt.Sprintf(" (%q)", oneLine(strings.TrimSpace(string(subj))))
	}
	return c
}

// version runs a command and returns the first line it prints, or "".
func version(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// peakRSSKiB returns the VmHWM of process pid in KiB, or 0.
func peakRSSKiB(pid int) int64 {
	v := procField(fmt.Sprintf("/proc/%d/status", pid), "VmHWM")
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// dropCaches asks the kernel to drop its page cache, dentries and inodes,
// so that a read measures the filesystem and not memory.
func dropCaches() error {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}
