package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultMemoryLimitMiB returns --memory-limit's default: an eighth of the
// memory this process may use (the cgroup's limit in a container, else the
// machine's RAM), from 256 to 1024 MiB. A notebook container of 4-8 GiB on
// 2 cores thus gives the mount 512 MiB to 1 GiB, enough for several
// sequential readers' 64 MiB windows and a block cache of file headers and
// chunk indexes, and leaves the rest to the notebook's own arrays.
func defaultMemoryLimitMiB() int {
	total := availableMemory()
	if total <= 0 {
		return 512
	}
	return int(min(1024, max(256, total>>20/8)))
}

// availableMemory returns the cgroup v2 memory limit, or MemTotal, in
// bytes, or 0 if neither is known.
func availableMemory() int64 {
	var total int64
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total = kb << 10
			}
		}
	}
	if data, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}

// setGoMemoryLimit tells Go's garbage collector to keep the heap near the
// mount's memory limit plus a fixed overhead, so that blocks dropped from
// the cache are collected before the process grows past it. GOMEMLIMIT, if
// set, wins.
func setGoMemoryLimit(limitMiB int) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(int64(limitMiB+48) << 20)
}
