package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// config is what one run measures, read from the environment (see the
// package documentation for the variables).
type config struct {
	quick       bool     // quick is BENCH_QUICK=1: small sizes, few repetitions.
	s3mountBin  string   // s3mountBin is the s3mount binary to mount with.
	s3mountArgs []string // s3mountArgs are extra s3mount flags, from S3MOUNT_FLAGS.
	out         string   // out is a file to write the report to as well, from BENCH_OUT.
	workdir     string   // workdir holds mountpoints, logs and local files; "" means a new temporary directory.
	only        map[string]bool
	peers       bool   // peers says whether s3fs and rclone are measured.
	direct      bool   // direct points every client at MinIO itself rather than at the rig's proxy.
	minioTmp    string // minioTmp is where MinIO keeps its data ("" for the default temporary directory).
	sdkParallel []int  // sdkParallel are the parallel GET counts tried for the single-reader ceiling.
	reps        int    // reps is how many times each workload runs.
	ttfbReps    int    // ttfbReps is how many times time to first byte is measured.
	objectSize  int64  // objectSize is the size of the large objects read and written.
	randomIOs   int    // randomIOs is how many random reads fio makes per pass.
	lsCount     int    // lsCount is how many objects the listed directory holds.
	smallCount  int    // smallCount is how many small files are created and read.
	smallSize   int    // smallSize is the size of each small file.
	h5Side      int    // h5Side is the side of the square float32 HDF5 dataset.
	h5Chunk     int    // h5Chunk is the side of its square chunks.
	partSize    int64  // partSize is the part size of the SDK's parallel GETs and uploads.
}

// rssSlackMiB is the fixed overhead the RSS target allows above the memory
// limit.
const rssSlackMiB = 64

// envVars are the variables loadConfig reads, in the order the report's
// command line shows them.
var envVars = []string{
	"BENCH_QUICK", "S3MOUNT_FLAGS", "S3MOUNT_BIN", "BENCH_REPS", "BENCH_SIZE_MIB", "BENCH_PEERS",
	"BENCH_ONLY", "BENCH_DIRECT", "BENCH_MINIO_TMPDIR", "BENCH_SDK_PARALLEL", "BENCH_OUT",
}

// workloadIDs are the workload groups, in the order they run; BENCH_ONLY
// picks among them.
var workloadIDs = []string{
	"seq1", "seq4", "write", "rand4k", "rand64k", "h5-subset", "h5-whole",
	"ls", "create-small", "read-small", "ttfb",
}

// loadConfig reads the configuration from getenv.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		quick:       getenv("BENCH_QUICK") == "1",
		s3mountBin:  getenv("S3MOUNT_BIN"),
		s3mountArgs: strings.Fields(getenv("S3MOUNT_FLAGS")),
		out:         getenv("BENCH_OUT"),
		workdir:     getenv("BENCH_WORKDIR"),
		direct:      getenv("BENCH_DIRECT") == "1",
		minioTmp:    getenv("BENCH_MINIO_TMPDIR"),
		partSize:    8 << 20,
		smallSize:   4 << 10,
		h5Chunk:     256,
	}
	// Peers make a run several times longer: a quick run leaves them out
	// unless asked.
	switch getenv("BENCH_PEERS") {
	case "0":
		c.peers = false
	case "1":
		c.peers = true
	case "":
		c.peers = !c.quick
	default:
		return c, fmt.Errorf("BENCH_PEERS=%q: want 0 or 1", getenv("BENCH_PEERS"))
	}
	if c.s3mountBin == "" {
		c.s3mountBin = "bin/s3mount"
	}
	if c.quick {
		c.reps, c.ttfbReps = 2, 3
		c.objectSize = 128 << 20
		c.randomIOs = 100
		c.lsCount = 1000
		c.smallCount = 100
		c.h5Side = 2048
		c.sdkParallel = []int{16}
	} else {
		c.reps, c.ttfbReps = 3, 5
		c.objectSize = 1 << 30
		c.randomIOs = 400
		c.lsCount = 10000
		c.smallCount = 1000
		c.h5Side = 8192
		c.sdkParallel = []int{8, 16}
	}
	if v := getenv("BENCH_REPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("BENCH_REPS=%q: want a positive integer", v)
		}
		c.reps, c.ttfbReps = n, max(n, 3)
	}
	if v := getenv("BENCH_SIZE_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 8 || n%8 != 0 {
			return c, fmt.Errorf("BENCH_SIZE_MIB=%q: want a multiple of 8, at least 8", v)
		}
		c.objectSize = int64(n) << 20
	}
	if v := getenv("BENCH_SDK_PARALLEL"); v != "" {
		c.sdkParallel = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return c, fmt.Errorf("BENCH_SDK_PARALLEL=%q: want a comma-separated list of positive integers", v)
			}
			c.sdkParallel = append(c.sdkParallel, n)
		}
	}
	if v := getenv("BENCH_ONLY"); v != "" {
		c.only = map[string]bool{}
		known := map[string]bool{}
		for _, id := range workloadIDs {
			known[id] = true
		}
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if !known[f] {
				return c, fmt.Errorf("BENCH_ONLY: unknown workload %q (known: %s)", f, strings.Join(workloadIDs, ", "))
			}
			c.only[f] = true
		}
	}
	return c, nil
}

// wants reports whether workload group id runs.
func (c config) wants(id string) bool {
	return c.only == nil || c.only[id]
}

// commandLine reconstructs the command that started the run, from the
// variables of envVars that are set, as "VAR=value ... make bench".
func commandLine(getenv func(string) string) string {
	var parts []string
	for _, v := range envVars {
		if val := getenv(v); val != "" {
			parts = append(parts, v+"="+shellQuote(val))
		}
	}
	return strings.Join(append(parts, "make bench"), " ")
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./,=:+-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// memLimit describes the memory bound an s3mount run uses.
type memLimit struct {
	flag      string // flag is "memory-limit" or "write-memory", or "" if the binary has neither.
	mib       int64  // mib is the limit in MiB, or 0 if unknown.
	fromFlags bool   // fromFlags says the value came from S3MOUNT_FLAGS rather than the binary's default.
	supported bool   // supported says the binary has --memory-limit.
}

// String describes the limit for the report.
func (l memLimit) String() string {
	switch {
	case l.flag == "":
		return "unknown (the binary has neither --memory-limit nor --write-memory)"
	case l.mib == 0:
		return fmt.Sprintf("--%s, value unknown", l.flag)
	}
	src := "the binary's default"
	if l.fromFlags {
		src = "from S3MOUNT_FLAGS"
	}
	s := fmt.Sprintf("--%s %d MiB (%s)", l.flag, l.mib, src)
	if !l.supported {
		s += "; this binary has no --memory-limit, so only write buffers are bounded"
	}
	return s
}

// detectMemLimit works out the memory limit from the binary's --help output
// and the extra flags: --memory-limit if the binary has it, else
// --write-memory (its older, write-only predecessor). A value in the flags
// wins over the default printed by --help.
func detectMemLimit(help string, args []string) memLimit {
	l := memLimit{supported: hasFlag(help, "memory-limit")}
	switch {
	case l.supported:
		l.flag = "memory-limit"
	case hasFlag(help, "write-memory"):
		l.flag = "write-memory"
	}
	// The flags given win; --write-memory stays an alias of --memory-limit.
	for _, name := range []string{"memory-limit", "write-memory"} {
		if v, ok := flagValue(args, name); ok {
			if n, err := parseMiB(v); err == nil {
				l.flag, l.mib, l.fromFlags = name, n, true
				return l
			}
		}
	}
	if l.flag != "" {
		if v, ok := flagDefault(help, l.flag); ok {
			if n, err := parseMiB(v); err == nil {
				l.mib = n
			}
		}
	}
	return l
}

// hasFlag reports whether Go flag-package help text lists -name.
func hasFlag(help, name string) bool {
	return regexp.MustCompile(`(?m)^\s+--?` + regexp.QuoteMeta(name) + `(\s|=|$)`).MatchString(help)
}

// flagDefault returns the "(default X)" that Go's flag package prints in the
// description of -name.
func flagDefault(help, name string) (string, bool) {
	re := regexp.MustCompile(`(?m)^\s+--?` + regexp.QuoteMeta(name) + `\b[^\n]*\n((?:\s+\t[^\n]*\n?)+)`)
	m := re.FindStringSubmatch(help)
	if m == nil {
		return "", false
	}
	d := regexp.MustCompile(`\(default "?([^)"]+)"?\)`).FindStringSubmatch(m[1])
	if d == nil {
		return "", false
	}
	return d[1], true
}

// flagValue returns the value of --name (or -name) in args, in either the
// "--name=V" or the "--name V" form; the last occurrence wins.
func flagValue(args []string, name string) (string, bool) {
	var val string
	found := false
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if len(a) == len(args[i]) {
			continue // not a flag
		}
		if a == name && i+1 < len(args) {
			val, found = args[i+1], true
			i++
		} else if v, ok := strings.CutPrefix(a, name+"="); ok {
			val, found = v, true
		}
	}
	return val, found
}

// parseMiB parses a size in MiB: a plain number, or a number with a suffix
// M, MB, MiB, G, GB or GiB (binary units either way).
func parseMiB(s string) (int64, error) {
	s = strings.TrimSpace(s)
	m := regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, err
	}
	switch strings.ToLower(m[2]) {
	case "", "m", "mb", "mib":
	case "g", "gb", "gib":
		n *= 1024
	default:
		return 0, fmt.Errorf("unknown size unit in %q", s)
	}
	return int64(n), nil
}
