// Command s3mount-bench measures s3mount side by side with the data path's
// ceiling and with s3fs-fuse and rclone mount, in one run against the test
// rig's MinIO, and prints a markdown report: the machine, the commit, the
// command, a table of medians and ratios, the peak RSS of each mount's
// process, and the targets of issue 8, each marked met or not. It is what
// `make bench` runs (through scripts/bench.sh, which installs the tools
// first); it must run as root, from the repository's top directory, after
// `make build`.
//
// What it runs:
//
//   - The rig (internal/rig): a real MinIO, whose data it keeps on tmpfs
//     (/dev/shm) so that dropping the page cache drops only the clients'
//     caches and MinIO serves every run from memory; the expiry-enforcing
//     proxy in front of it; and the MAAP emulator, which mints STS
//     credentials.
//   - s3mount (bin/s3mount) as a separate process, with the rig's
//     environment, as `s3mount --foreground $S3MOUNT_FLAGS DIR`; it fetches
//     its credentials from the MAAP emulator. Every run of every workload
//     mounts afresh, so each run starts cold and the process's peak RSS
//     (VmHWM) is that of the workload.
//   - s3fs and rclone mount, when installed, as separate processes, with STS
//     credentials minted by the same emulator for the same paths, through
//     the same endpoint.
//   - The ceiling: the AWS SDK for Go in this process, with the same kind of
//     STS credentials and the same endpoint: parallel ranged GETs of 8 MiB
//     parts, a parallel multipart upload of 8 MiB parts, a raw paginated
//     ListObjectsV2, serial GETs and PUTs of small objects.
//
// Every client goes through the rig's proxy (or, with BENCH_DIRECT=1, to
// MinIO itself). The page cache is dropped (echo 3 >
// /proc/sys/vm/drop_caches) before every timed run. The systems take turns
// within a repetition, in an order that rotates from one repetition to the
// next. Each workload runs several times and the report gives medians.
//
// Environment:
//
//	BENCH_QUICK=1          small sizes, two repetitions, no peers: under two minutes
//	S3MOUNT_FLAGS          extra s3mount flags, e.g. "--memory-limit 512"
//	S3MOUNT_BIN            the s3mount binary (default bin/s3mount)
//	BENCH_REPS             repetitions of each workload (default 3, quick 2)
//	BENCH_SIZE_MIB         size of the large objects (default 1024, quick 128)
//	BENCH_PEERS=0|1        measure s3fs and rclone or not (default 1, quick 0)
//	BENCH_ONLY             comma-separated workloads to run (see workloadIDs)
//	BENCH_DIRECT=1         every client talks to MinIO, not to the rig's proxy
//	BENCH_MINIO_TMPDIR     where MinIO keeps its data (default /dev/shm)
//	BENCH_SDK_PARALLEL     parallel GETs tried for the ceiling (default 8,16)
//	BENCH_OUT              also write the report to this file; if the file has the
//	                       lines <!-- bench:begin --> and <!-- bench:end -->, only
//	                       what is between them is replaced (docs/benchmarks.md)
//	BENCH_WORKDIR          mountpoints, logs and local files (default: a new temporary directory)
//
// Progress goes to stderr, the report to stdout. The process logs of every
// mount are kept in BENCH_WORKDIR/logs when the run fails.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/internal/rig"
)

// The benchmark's objects live under this bucket and prefix, the rig's
// read-write workspace path.
const (
	bucket = "maap-ops-workspace"
	prefix = "jdoe/"
	benchD = "bench/" // benchD is the benchmark's directory, relative to prefix.
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	os.Exit(run())
}

// bench is one run of the benchmark.
type bench struct {
	cfg         config
	res         *results
	rig         *rig.Rig
	endpoint    string          // endpoint is where every client sends its S3 requests.
	creds       rig.Credentials // creds are STS credentials for the SDK, scoped like s3mount's.
	peerCreds   rig.Credentials // peerCreds are STS credentials for s3fs and rclone, for the whole bucket.
	client      *s3.Client      // client is the SDK ceiling's client: creds at endpoint.
	admin       *s3.Client      // admin uses MinIO's root credentials directly, for seeding and cleanup only.
	workdir     string
	mntRoot     string // mntRoot holds the mountpoints.
	logDir      string
	mounts      mountSet
	mounters    []*mounter // mounters are the systems measured, s3mount first.
	dropErr     error      // dropErr says why the page cache cannot be dropped, if it cannot.
	data        []byte     // data is what sequential writes write.
	h5Local     string     // h5Local is the local copy of the HDF5 file.
	minioParent string     // minioParent is the directory made to hold MinIO's data directory.
	notes       []string   // notes go into the report.

	cleanupOnce sync.Once
}

// run does the work of main and returns the exit status.
func run() int {
	began := time.Now()
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		slog.Error("configuration", "err", err)
		return 2
	}
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "s3mount-bench takes no arguments; it is configured by its environment (see `go doc ./cmd/s3mount-bench`).")
		return 2
	}
	b := &bench{cfg: cfg, res: newResults()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		slog.Warn("interrupted: unmounting everything and stopping the rig", "signal", sig)
		cancel()
		b.cleanup()
		os.Exit(130)
	}()
	defer b.cleanup()

	h, err := b.setup(ctx)
	if err != nil {
		slog.Error("setup", "err", err)
		return 1
	}
	b.runAll(ctx)
	if ctx.Err() != nil {
		return 130
	}
	h.notes = append(h.notes, b.notes...)
	h.elapsed = time.Since(began)

	var out strings.Builder
	writeReport(&out, h, b.res)
	fmt.Print(out.String())
	if cfg.out != "" {
		text := out.String()
		if old, err := os.ReadFile(cfg.out); err == nil {
			if spliced, ok := splice(string(old), text); ok {
				text = spliced
			}
		}
		if err := os.WriteFile(cfg.out, []byte(text), 0o644); err != nil {
			slog.Error("write BENCH_OUT", "file", cfg.out, "err", err)
			return 1
		}
		slog.Info("report written", "file", cfg.out)
	}
	return 0
}

// cleanup unmounts everything, stops the rig and removes local files. It
// runs once, at the end or on a signal.
func (b *bench) cleanup() {
	b.cleanupOnce.Do(func() {
		b.mounts.stopAll()
		if b.rig != nil {
			if err := b.rig.Close(); err != nil {
				slog.Warn("stopping the rig", "err", err)
			}
		}
		if b.minioParent != "" {
			os.RemoveAll(b.minioParent)
		}
		if b.h5Local != "" {
			os.Remove(b.h5Local)
		}
	})
}

// setup checks the tools, starts the rig, mints credentials, seeds the data
// and describes the run.
func (b *bench) setup(ctx context.Context) (header, error) {
	cfg := b.cfg
	h := header{title: "s3mount benchmark"}
	if cfg.quick {
		h.title += " (quick)"
	}
	if os.Geteuid() != 0 {
		return h, errors.New("run as root: it mounts FUSE filesystems and drops the page cache")
	}
	bin, err := filepath.Abs(cfg.s3mountBin)
	if err != nil {
		return h, err
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return h, fmt.Errorf("s3mount binary %s not found: run make build", bin)
	}
	helpOut, _ := exec.Command(bin, "--help").CombinedOutput()
	h.limit = detectMemLimit(string(helpOut), cfg.s3mountArgs)
	if _, err := exec.LookPath("fio"); err != nil {
		return h, errors.New("fio not found: run scripts/ensure-bench-tools.sh")
	}
	if err := dropCaches(); err != nil {
		b.dropErr = err
		b.notes = append(b.notes, fmt.Sprintf("The page cache could NOT be dropped (%v): read figures may come from memory.", err))
	}

	b.workdir = cfg.workdir
	if b.workdir == "" {
		if b.workdir, err = os.MkdirTemp("", "s3mount-bench-"); err != nil {
			return h, err
		}
	}
	b.mntRoot = filepath.Join(b.workdir, "mnt")
	b.logDir = filepath.Join(b.workdir, "logs")
	for _, d := range []string{b.mntRoot, b.logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return h, err
		}
	}

	minioWhere, err := b.startRig(ctx)
	if err != nil {
		return h, err
	}
	b.endpoint = b.rig.Proxy.URL
	via := "the rig's S3 proxy " + b.endpoint + " in front of MinIO"
	if cfg.direct {
		b.endpoint = b.rig.MinIO.Endpoint
		via = "MinIO itself at " + b.endpoint + " (BENCH_DIRECT=1)"
	}
	// The longest credentials STS hands out here, so that nobody renews
	// during the run; the proxy enforces what was declared.
	b.creds, err = b.rig.MAAP.Mint(ctx, b.rig.Paths, 12*time.Hour)
	if err != nil {
		return h, fmt.Errorf("mint credentials: %w", err)
	}
	// s3fs 1.90 lists the bucket's root when it mounts, which the
	// prefix-scoped policy denies; the peers get credentials for the whole
	// bucket from the same emulator.
	b.peerCreds, err = b.rig.MAAP.Mint(ctx, []rig.AuthorizedPath{{Bucket: bucket, Type: rig.TypeWorkspace, Access: rig.AccessReadWrite}}, 12*time.Hour)
	if err != nil {
		return h, fmt.Errorf("mint credentials: %w", err)
	}
	b.client = newClient(b.endpoint, b.creds.AccessKeyID, b.creds.SecretAccessKey, b.creds.SessionToken)
	b.admin = newClient(b.rig.MinIO.Endpoint, b.rig.MinIO.RootUser, b.rig.MinIO.RootPassword, "")

	b.mounters = []*mounter{b.s3mountMounter(bin)}
	peerLines := b.peerMounters()

	if err := b.seed(ctx); err != nil {
		return h, fmt.Errorf("seed: %w", err)
	}

	flags := strings.Join(cfg.s3mountArgs, " ")
	if flags == "" {
		flags = "none (defaults)"
	}
	dropped := "dropped before every timed run (echo 3 > /proc/sys/vm/drop_caches)"
	if b.dropErr != nil {
		dropped = fmt.Sprintf("NOT dropped: %v", b.dropErr)
	}
	h.lines = [][2]string{
		{"Date", time.Now().UTC().Format("2006-01-02 15:04 MST")},
		{"Machine", machine()},
		{"Commit", gitCommit()},
		{"Command", "`" + commandLine(os.Getenv) + "`"},
		{"s3mount", fmt.Sprintf("%s (%s), extra flags: %s", cfg.s3mountBin, orUnknown(version(bin, "--version")), flags)},
		{"s3mount memory limit", h.limit.String()},
	}
	h.lines = append(h.lines, peerLines...)
	h.lines = append(h.lines,
		[2]string{"Data path", fmt.Sprintf("every client, the SDK included, goes through %s, on loopback; MinIO keeps its data %s", via, minioWhere)},
		[2]string{"Credentials", "all STS, minted by the rig's MAAP emulator: s3mount fetches its own, for the workspace prefix; the SDK uses the same prefix-scoped policy; s3fs and rclone get a policy for the whole bucket, because s3fs 1.90 lists the bucket's root when it mounts"},
		[2]string{"Sizes", b.sizes()},
		[2]string{"Page cache", dropped},
	)
	if cfg.quick {
		b.notes = append(b.notes, "Quick run: the sizes are smaller than the issue's (1 GiB objects, 10,000 objects listed, 1,000 small files), so check the targets on a full run.")
	}
	return h, nil
}

// sizes describes the run's sizes and repetitions.
func (b *bench) sizes() string {
	c := b.cfg
	return fmt.Sprintf("large objects %s; random reads %d per pass; HDF5 dataset %d×%d float32 (%s) in %d×%d chunks; `ls -l` of %s objects; %s small files of %s; %d runs per workload (%d for time to first byte)",
		fmtBytes(c.objectSize), c.randomIOs, c.h5Side, c.h5Side, fmtBytes(int64(c.h5Side)*int64(c.h5Side)*4), c.h5Chunk, c.h5Chunk,
		thousands(float64(c.lsCount)), thousands(float64(c.smallCount)), fmtBytes(int64(c.smallSize)), c.reps, c.ttfbReps)
}

// fmtBytes formats n in GiB, MiB or KiB.
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}

// orUnknown returns s, or "version unknown" if s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}

// startRig starts the rig, with MinIO's data on tmpfs when there is room,
// and says where the data is.
func (b *bench) startRig(ctx context.Context) (string, error) {
	if _, err := rig.FindMinIO(); err != nil {
		return "", err
	}
	base := b.cfg.minioTmp
	if base == "" {
		// bench.sh makes a directory on /dev/shm for us and removes it
		// whatever happens to this process.
		base = os.Getenv("BENCH_SHMDIR")
		if base == "" {
			base = "/dev/shm"
		}
		need := 6*b.cfg.objectSize + 512<<20
		var st syscall.Statfs_t
		if err := syscall.Statfs(base, &st); err != nil || int64(st.Bavail)*st.Bsize < need {
			b.notes = append(b.notes, fmt.Sprintf("%s is missing or has less than %s free: MinIO keeps its data in %s, and if that is on disk, dropping the page cache slows the ceiling too.", base, fmtBytes(need), os.TempDir()))
			base = ""
		}
	}
	where := os.TempDir()
	if base != "" {
		dir, err := os.MkdirTemp(base, "s3mount-bench-minio-")
		if err != nil {
			return "", err
		}
		b.minioParent = dir
		where = base
		// StartMinIO makes its data directory with os.MkdirTemp("", ...).
		old, had := os.LookupEnv("TMPDIR")
		os.Setenv("TMPDIR", dir)
		defer func() {
			if had {
				os.Setenv("TMPDIR", old)
			} else {
				os.Unsetenv("TMPDIR")
			}
		}()
	}
	fsType := "on disk"
	var st syscall.Statfs_t
	if err := syscall.Statfs(where, &st); err == nil && st.Type == tmpfsMagic {
		fsType = "tmpfs"
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r, err := rig.Start(sctx, rig.Options{Lifetime: 12 * time.Hour})
	if err != nil {
		return "", fmt.Errorf("start the rig: %w", err)
	}
	b.rig = r
	return fmt.Sprintf("in %s (%s)", where, fsType), nil
}

// s3mountMounter mounts bin with the rig's environment.
func (b *bench) s3mountMounter(bin string) *mounter {
	env := append(environWithout("AWS_", "MAAP_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"), b.rig.Env()...)
	if b.cfg.direct {
		env = append(env, "AWS_ENDPOINT_URL_S3="+b.endpoint)
	}
	return &mounter{
		system: sysS3mount,
		command: func(dir string) *exec.Cmd {
			args := append([]string{"--foreground"}, b.cfg.s3mountArgs...)
			cmd := exec.Command(bin, append(args, dir)...)
			cmd.Env = env
			return cmd
		},
		base: func(dir string) string { return filepath.Join(dir, bucket, strings.TrimSuffix(prefix, "/")) },
	}
}

// peerMounters adds s3fs and rclone to the systems measured when they are
// installed, and returns the report's lines about them.
func (b *bench) peerMounters() [][2]string {
	if !b.cfg.peers {
		why := "BENCH_PEERS=0"
		if b.cfg.quick && os.Getenv("BENCH_PEERS") == "" {
			why = "a quick run leaves them out; BENCH_PEERS=1 brings them in"
		}
		return [][2]string{{"Peers", "s3fs and rclone not measured (" + why + ")"}}
	}
	var lines [][2]string
	base := func(dir string) string { return dir }
	credEnv := append(environWithout("AWS_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "RCLONE_"),
		"AWS_ACCESS_KEY_ID="+b.peerCreds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+b.peerCreds.SecretAccessKey,
		"AWS_SESSION_TOKEN="+b.peerCreds.SessionToken,
	)
	if _, err := exec.LookPath("s3fs"); err != nil {
		lines = append(lines, [2]string{"s3fs", "NOT measured: s3fs is not installed, and scripts/ensure-bench-tools.sh could not install it (Debian package s3fs)"})
	} else {
		opts := "url=" + b.endpoint + ",use_path_request_style,endpoint=" + rig.Region + ",sigv4,use_session_token"
		b.mounters = append(b.mounters, &mounter{
			system: sysS3fs,
			command: func(dir string) *exec.Cmd {
				cmd := exec.Command("s3fs", bucket+":/"+strings.TrimSuffix(prefix, "/"), dir, "-f", "-o", opts)
				cmd.Env = credEnv
				return cmd
			},
			base: base,
		})
		lines = append(lines, [2]string{"s3fs", fmt.Sprintf("%s, `s3fs %s:/%s DIR -f -o %s` (otherwise its defaults: no disk cache)",
			orUnknown(version("s3fs", "--version")), bucket, strings.TrimSuffix(prefix, "/"), strings.Replace(opts, b.endpoint, "ENDPOINT", 1))})
	}
	if _, err := exec.LookPath("rclone"); err != nil {
		lines = append(lines, [2]string{"rclone", "NOT measured: rclone is not installed, and scripts/ensure-bench-tools.sh could not install it (Debian package rclone)"})
	} else {
		conf := filepath.Join(b.workdir, "rclone.conf")
		_ = os.WriteFile(conf, nil, 0o600)
		env := append(environWithout("AWS_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "RCLONE_"),
			"RCLONE_CONFIG_BENCH_TYPE=s3",
			"RCLONE_CONFIG_BENCH_PROVIDER=Minio",
			"RCLONE_CONFIG_BENCH_ENV_AUTH=false",
			"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="+b.peerCreds.AccessKeyID,
			"RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="+b.peerCreds.SecretAccessKey,
			"RCLONE_CONFIG_BENCH_SESSION_TOKEN="+b.peerCreds.SessionToken,
			"RCLONE_CONFIG_BENCH_ENDPOINT="+b.endpoint,
			"RCLONE_CONFIG_BENCH_REGION="+rig.Region,
			"RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true",
		)
		args := []string{"--vfs-cache-mode", "off", "--s3-no-check-bucket"}
		b.mounters = append(b.mounters, &mounter{
			system: sysRclone,
			command: func(dir string) *exec.Cmd {
				cmd := exec.Command("rclone", append([]string{"mount", "bench:" + bucket + "/" + strings.TrimSuffix(prefix, "/"), dir, "--config", conf}, args...)...)
				cmd.Env = env
				return cmd
			},
			base: base,
		})
		lines = append(lines, [2]string{"rclone", fmt.Sprintf("%s, `rclone mount bench:%s/%s DIR %s` (S3 remote, provider Minio; otherwise its defaults; without a VFS cache it streams sequential writes straight to a multipart upload)",
			orUnknown(version("rclone", "version")), bucket, strings.TrimSuffix(prefix, "/"), strings.Join(args, " "))})
	}
	return lines
}

// logf logs progress to stderr.
func logf(format string, args ...any) {
	slog.Info(fmt.Sprintf(format, args...))
}

// Markers of the generated part of a document that BENCH_OUT names.
const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

// splice replaces what lies between the begin and end markers of doc with
// report, keeping the marker lines. It reports false if doc lacks either
// marker, in that order.
func splice(doc, report string) (string, bool) {
	i := strings.Index(doc, beginMarker)
	if i < 0 {
		return "", false
	}
	start := i + len(beginMarker)
	j := strings.Index(doc[start:], endMarker)
	if j < 0 {
		return "", false
	}
	end := start + j
	// The report goes under a heading of the document: one level down.
	report = strings.TrimSpace(report)
	if strings.HasPrefix(report, "## ") {
		report = "#" + report
	}
	return doc[:start] + "\n\n" + report + "\n\n" + doc[end:], true
}
