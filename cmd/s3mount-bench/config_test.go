package main

import (
	"testing"
)

// oldHelp is how s3mount's --help listed its write bound before
// --memory-limit.
const oldHelp = `Usage: s3mount [flags] MOUNTPOINT

Flags:
  -staging-dir string
    	where files open for writing are staged (default: $XDG_CACHE_HOME/s3mount/staging)
  -workspace string
    	EO DataHub workspace (default: EODH_WORKSPACE)
  -write-memory int
    	bounds the parts uploading at once across the mount, in MiB of 8 MiB parts (default 256)
`

// newHelp is how it may list --memory-limit, with --write-memory kept as
// an alias.
const newHelp = `Flags:
  -memory-limit int
    	bounds prefetch, cache and write buffers together, in MiB (default 1024)
  -metadata-ttl duration
    	how long listings and file attributes are cached (default 1m0s)
  -write-memory int
    	alias of --memory-limit (default 1024)
`

func TestDetectMemLimit(t *testing.T) {
	cases := []struct {
		name      string
		help      string
		args      []string
		flag      string
		mib       int64
		fromFlags bool
		supported bool
	}{
		{"old binary, default", oldHelp, nil, "write-memory", 256, false, false},
		{"old binary, flag given", oldHelp, []string{"--write-memory", "128"}, "write-memory", 128, true, false},
		{"new binary, default", newHelp, nil, "memory-limit", 1024, false, true},
		{"new binary, flag with =", newHelp, []string{"--debug", "--memory-limit=512"}, "memory-limit", 512, true, true},
		{"new binary, single dash and a unit", newHelp, []string{"-memory-limit", "2GiB"}, "memory-limit", 2048, true, true},
		{"new binary, alias given", newHelp, []string{"--write-memory", "300"}, "write-memory", 300, true, true},
		{"the last occurrence wins", newHelp, []string{"--memory-limit", "100", "--memory-limit", "200"}, "memory-limit", 200, true, true},
		{"no such flag", "Usage: x\n", nil, "", 0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := detectMemLimit(c.help, c.args)
			if l.flag != c.flag || l.mib != c.mib || l.fromFlags != c.fromFlags || l.supported != c.supported {
				t.Errorf("detectMemLimit = %+v, want flag %q mib %d fromFlags %v supported %v", l, c.flag, c.mib, c.fromFlags, c.supported)
			}
			if l.String() == "" {
				t.Error("empty description")
			}
		})
	}
}

func TestParseMiB(t *testing.T) {
	good := map[string]int64{"512": 512, "512M": 512, "512MiB": 512, "1G": 1024, "1.5GiB": 1536, " 64 mb ": 64}
	for in, want := range good {
		if got, err := parseMiB(in); err != nil || got != want {
			t.Errorf("parseMiB(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "12T", "-3"} {
		if _, err := parseMiB(in); err == nil {
			t.Errorf("parseMiB(%q) succeeded", in)
		}
	}
}

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	full, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if full.quick || !full.peers || full.objectSize != 1<<30 || full.lsCount != 10000 || full.smallCount != 1000 || full.reps < 3 {
		t.Errorf("full run config %+v does not match the issue's sizes", full)
	}
	quick, err := loadConfig(env(map[string]string{"BENCH_QUICK": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if !quick.quick || quick.peers || quick.objectSize >= full.objectSize {
		t.Errorf("quick config %+v", quick)
	}
	withPeers, _ := loadConfig(env(map[string]string{"BENCH_QUICK": "1", "BENCH_PEERS": "1"}))
	if !withPeers.peers {
		t.Error("BENCH_PEERS=1 did not bring the peers into a quick run")
	}
	c, err := loadConfig(env(map[string]string{
		"S3MOUNT_FLAGS": " --memory-limit 512  --debug ", "BENCH_REPS": "7", "BENCH_SIZE_MIB": "64",
		"BENCH_ONLY": "seq1, ls", "BENCH_SDK_PARALLEL": "4,32", "BENCH_PEERS": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.s3mountArgs) != 3 || c.reps != 7 || c.objectSize != 64<<20 || c.peers ||
		!c.wants("seq1") || !c.wants("ls") || c.wants("write") || len(c.sdkParallel) != 2 || c.sdkParallel[1] != 32 {
		t.Errorf("config %+v", c)
	}
	for _, bad := range []map[string]string{
		{"BENCH_REPS": "0"}, {"BENCH_SIZE_MIB": "12"}, {"BENCH_ONLY": "nope"},
		{"BENCH_SDK_PARALLEL": "8,x"}, {"BENCH_PEERS": "yes"},
	} {
		if _, err := loadConfig(env(bad)); err == nil {
			t.Errorf("loadConfig(%v) succeeded", bad)
		}
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine(env(map[string]string{"BENCH_QUICK": "1", "S3MOUNT_FLAGS": "--memory-limit 512", "UNRELATED": "x"}))
	want := "BENCH_QUICK=1 S3MOUNT_FLAGS='--memory-limit 512' make bench"
	if got != want {
		t.Errorf("commandLine = %q, want %q", got, want)
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Errorf("shellQuote = %s", got)
	}
}
