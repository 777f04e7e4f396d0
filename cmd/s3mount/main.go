// Command s3mount mounts the S3 paths a science platform authorizes as
// ordinary directories, and keeps their credentials fresh for as long as the
// mount lives.
//
// Usage:
//
//	s3mount [flags] MOUNTPOINT
//	s3mount credentials [--provider NAME] [--credentials-url URL]
//
// See README.md for the flags, the path mapping and the read-only rule.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3mount/s3mount/creds"
	"github.com/s3mount/s3mount/fs"
	"github.com/s3mount/s3mount/internal/s3bucket"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// daemonEnv marks the background child of a mount started without
// --foreground; its value is the readiness pipe's file descriptor.
const daemonEnv = "S3MOUNT_DAEMON_READY_FD"

// config is what the command line says.
type config struct {
	mountpoint     string
	foreground     bool
	provider       string
	credentialsURL string
	endpointURL    string
	region         string
	forcePathStyle bool
	readOnly       bool
	debug          bool
	logLevel       slog.Level
	debugFUSE      bool
	allowOther     bool
	uid, gid       int
	fileMode       octalMode
	dirMode        octalMode
	metadataTTL    time.Duration
	negativeTTL    time.Duration
	logFile        string
	stagingDir     string
	renameLimit    int
	memoryLimitMiB int
	readAheadKiB   int
	pprofAddr      string
	// Provider settings.
	workspace string
	bucket    string
	tokenFile string
	daac      string
	profile   string
	paths     pathFlags
}

// octalMode is a permission-bits flag, read and shown in octal.
type octalMode uint32

func (m *octalMode) String() string { return fmt.Sprintf("%04o", uint32(*m)) }

func (m *octalMode) Set(v string) error {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("%q is not permission bits in octal, such as 0644", v)
	}
	*m = octalMode(n)
	return nil
}

// pathFlags collects repeated --path s3://bucket/prefix[:ro|:rw] flags.
type pathFlags []creds.Path

func (p *pathFlags) String() string { return fmt.Sprint(*p) }

func (p *pathFlags) Set(v string) error {
	access := creds.ReadWrite
	if rest, ok := strings.CutSuffix(v, ":ro"); ok {
		v, access = rest, creds.ReadOnly
	} else if rest, ok := strings.CutSuffix(v, ":rw"); ok {
		v = rest
	}
	path, err := creds.ParseS3URI(v)
	if err != nil {
		return err
	}
	path.Access = access
	*p = append(*p, path)
	return nil
}

// providerFlags adds the flags that choose and configure the credentials
// provider, shared by mounting and by s3mount credentials.
func providerFlags(f *flag.FlagSet, cfg *config) {
	f.StringVar(&cfg.provider, "provider", "", "where credentials come from: maap, eodh, earthdata or aws (default: maap if MAAP_PGT is set, eodh if EODH_API_TOKEN and a workspace are, else aws)")
	f.StringVar(&cfg.credentialsURL, "credentials-url", "", "the platform's credentials URL (maap, earthdata) or base URL (eodh), replacing the default")
	f.StringVar(&cfg.workspace, "workspace", "", "EO DataHub workspace (default: EODH_WORKSPACE)")
	f.StringVar(&cfg.bucket, "bucket", "", "EO DataHub workspaces bucket (default: workspaces-eodhp)")
	f.StringVar(&cfg.tokenFile, "token-file", "", "file holding the EO DataHub workspace API token (default: EODH_API_TOKEN), or a MAAP bearer token used when MAAP_PGT is unset")
	f.StringVar(&cfg.daac, "daac", "", "NASA Earthdata DAAC whose /s3credentials to use: "+strings.Join(creds.DAACNames(), ", "))
	f.StringVar(&cfg.profile, "profile", "", "AWS shared-config profile for the aws provider (default: AWS_PROFILE)")
	f.Var(&cfg.paths, "path", "S3 path to mount, s3://bucket/prefix[:ro|:rw] (repeatable; earthdata and aws)")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	creds.Version = version
	if len(args) > 0 && args[0] == "credentials" {
		return printCredentials(args[1:])
	}
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3mount: %v\nRun 's3mount --help' for usage.\n", err)
		return 2
	}
	if cfg == nil { // --version
		fmt.Println("s3mount", version)
		return 0
	}
	if !cfg.foreground && os.Getenv(daemonEnv) == "" {
		return daemonize(cfg, args)
	}
	return mount(cfg)
}

func parseFlags(args []string) (*config, error) {
	cfg := &config{}
	f := flag.NewFlagSet("s3mount", flag.ContinueOnError)
	f.SetOutput(os.Stderr)
	f.BoolVar(&cfg.foreground, "foreground", false, "stay in the foreground and log to stderr (default: run in the background once mounted)")
	providerFlags(f, cfg)
	f.StringVar(&cfg.endpointURL, "endpoint-url", "", "S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or AWS S3)")
	f.StringVar(&cfg.region, "region", "", "S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, or the platform's region)")
	f.BoolVar(&cfg.forcePathStyle, "force-path-style", false, "use path-style S3 URLs (on by itself for IP-address and localhost endpoints)")
	f.BoolVar(&cfg.readOnly, "read-only", false, "mount everything read-only")
	f.BoolVar(&cfg.debug, "debug", false, "log debug detail, including every credential renewal (--log-level debug)")
	f.Func("log-level", "what to log: debug, info, warn or error (default info); SIGUSR2 turns debug logging on and off in a running mount", func(v string) error {
		return cfg.logLevel.UnmarshalText([]byte(v))
	})
	f.BoolVar(&cfg.debugFUSE, "debug-fuse", false, "log every FUSE request (very verbose)")
	f.BoolVar(&cfg.allowOther, "allow-other", false, "let other users use the mount, as far as --uid, --gid, --file-mode and --dir-mode allow them")
	f.IntVar(&cfg.uid, "uid", os.Getuid(), "owner of every file")
	f.IntVar(&cfg.gid, "gid", os.Getgid(), "group of every file")
	cfg.fileMode, cfg.dirMode = 0o644, 0o755
	f.Var(&cfg.fileMode, "file-mode", "permission bits of files, in octal (read-only paths lose write bits)")
	f.Var(&cfg.dirMode, "dir-mode", "permission bits of directories, in octal (read-only paths lose write bits)")
	f.DurationVar(&cfg.metadataTTL, "metadata-ttl", 60*time.Second, "how long listings and file attributes are cached")
	f.DurationVar(&cfg.negativeTTL, "negative-ttl", 5*time.Second, "how long a name is known not to exist (at most --metadata-ttl)")
	f.StringVar(&cfg.logFile, "log-file", "", "write logs to this file (default: stderr in the foreground, "+defaultLogFile()+" in the background)")
	f.StringVar(&cfg.stagingDir, "staging-dir", "", "where files open for writing are staged (default: $XDG_CACHE_HOME/s3mount/staging)")
	f.IntVar(&cfg.memoryLimitMiB, "memory-limit", defaultMemoryLimitMiB(), "MiB of memory for file data: reads fetched ahead, the block cache, and parts uploading (the default is an eighth of the RAM or cgroup limit, from 256 to 1024)")
	f.Func("write-memory", "the old name of --memory-limit", func(v string) error {
		n, err := strconv.Atoi(v)
		cfg.memoryLimitMiB = n
		return err
	})
	f.StringVar(&cfg.pprofAddr, "pprof", "", "serve Go's profiler (net/http/pprof) on this loopback address, such as 127.0.0.1:6060")
	f.IntVar(&cfg.readAheadKiB, "kernel-readahead", 0, "the kernel's readahead for the mount, in KiB, set as root through sysfs (0: s3mount's default; -1: leave the kernel's)")
	f.IntVar(&cfg.renameLimit, "rename-limit", 1000, "most objects a directory rename copies; larger renames fail with EXDEV and mv copies instead")
	showVersion := f.Bool("version", false, "print the version and exit")
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage: s3mount [flags] MOUNTPOINT\n\nMounts the S3 paths your platform authorizes at MOUNTPOINT: s3://BUCKET/KEY is MOUNTPOINT/BUCKET/KEY.\n\nFlags:\n")
		f.PrintDefaults()
	}
	// Flags may come before or after the mountpoint.
	var positional []string
	for {
		if err := parseQuietly(f, args); err != nil {
			return nil, err
		}
		if f.NArg() == 0 {
			break
		}
		positional = append(positional, f.Arg(0))
		args = f.Args()[1:]
	}
	if *showVersion {
		return nil, nil
	}
	if len(positional) != 1 {
		return nil, fmt.Errorf("expected exactly one MOUNTPOINT, got %d", len(positional))
	}
	if cfg.memoryLimitMiB < 16 {
		return nil, fmt.Errorf("--memory-limit must be at least 16 (MiB)")
	}
	if cfg.metadataTTL <= 0 {
		return nil, fmt.Errorf("--metadata-ttl must be positive")
	}
	if cfg.negativeTTL <= 0 {
		return nil, fmt.Errorf("--negative-ttl must be positive")
	}
	mp, err := filepath.Abs(positional[0])
	if err != nil {
		return nil, err
	}
	cfg.mountpoint = mp
	return cfg, nil
}

// parseQuietly parses args, printing the full usage only for --help: a
// wrong flag gets one line that names it, written --flag as users type it.
func parseQuietly(f *flag.FlagSet, args []string) error {
	out := f.Output()
	f.SetOutput(io.Discard)
	err := f.Parse(args)
	f.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		f.Usage()
		return err
	}
	if err != nil {
		return errors.New(strings.Replace(err.Error(), " -", " --", 1))
	}
	return nil
}

func defaultLogFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "s3mount", "s3mount.log")
}

// daemonize starts the mount again in the background, waits until it is
// mounted or has failed, and reports which.
func daemonize(cfg *config, args []string) int {
	logPath := cfg.logFile
	if logPath == "" {
		logPath = defaultLogFile()
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "s3mount: creating the log directory: %v\n", err)
		return 1
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3mount: opening the log file: %v\n", err)
		return 1
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3mount: %v\n", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3mount: %v\n", err)
		return 1
	}
	cmd := exec.Command(exe, append(args, "--log-file", logPath)...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "s3mount: starting the background mount: %v\n", err)
		return 1
	}
	w.Close()
	msg, _ := io.ReadAll(r)
	r.Close()
	if strings.TrimSpace(string(msg)) == "ok" {
		fmt.Printf("s3mount: mounted at %s (pid %d, log %s). Unmount with: umount %s\n", cfg.mountpoint, cmd.Process.Pid, logPath, cfg.mountpoint)
		cmd.Process.Release()
		return 0
	}
	cmd.Wait()
	if len(msg) == 0 {
		msg = []byte("the background mount exited without saying why; see " + logPath)
	}
	fmt.Fprintf(os.Stderr, "s3mount: %s\n", strings.TrimSpace(string(msg)))
	return 1
}

// readyPipe returns the pipe to tell the waiting parent about the mount, or
// nil in the foreground.
func readyPipe() *os.File {
	fd, err := strconv.Atoi(os.Getenv(daemonEnv))
	if err != nil || fd < 3 {
		return nil
	}
	os.Unsetenv(daemonEnv)
	return os.NewFile(uintptr(fd), "ready")
}

// mount mounts and serves until unmounted or signalled.
func mount(cfg *config) int {
	ready := readyPipe()
	fail := func(format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		if ready != nil {
			fmt.Fprintln(ready, msg)
			ready.Close()
		}
		slog.Error(msg)
		return 1
	}

	// Catch signals before mounting: go-fuse opens a file on the new mount
	// while mounting, and a process killed while holding a file on its own
	// mount hangs for good in the kernel, flushing it to a server that is
	// gone. A signal caught early unmounts cleanly once mounted.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)

	logOut := io.Writer(os.Stderr)
	if cfg.logFile != "" {
		lf, err := os.OpenFile(cfg.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fail("opening the log file: %v", err)
		}
		defer lf.Close()
		logOut = lf
	}
	level := cfg.logLevel
	if cfg.debug {
		level = slog.LevelDebug
	}
	var levelVar slog.LevelVar
	levelVar.Set(level)
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: &levelVar}))
	slog.SetDefault(logger)
	go debugOnSignal(usr2, &levelVar, level, logger)

	if fi, err := os.Stat(cfg.mountpoint); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(cfg.mountpoint, 0o755); err != nil {
			return fail("creating the mountpoint: %v", err)
		}
	} else if err != nil {
		return fail("mountpoint %s: %v (if a previous mount died, run: umount %s)", cfg.mountpoint, err, cfg.mountpoint)
	} else if !fi.IsDir() {
		return fail("mountpoint %s is not a directory", cfg.mountpoint)
	}

	src, defaultRegion, err := newSource(cfg)
	if err != nil {
		return fail("%v", err)
	}
	provider := creds.NewProvider(src, creds.Options{Logger: logger})
	startCtx, cancelStart := context.WithTimeout(context.Background(), 90*time.Second)
	err = provider.Start(startCtx)
	cancelStart()
	if err != nil {
		return fail("cannot get credentials from %s: %v", src.Name(), err)
	}
	paths := provider.Paths()
	if len(paths) == 0 {
		return fail("%s authorized no S3 paths", src.Name())
	}

	region := firstNonEmpty(cfg.region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), defaultRegion)
	endpoint := firstNonEmpty(cfg.endpointURL, os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"))
	client, err := s3bucket.New(context.Background(), s3bucket.Options{
		Logger:      logger,
		Credentials: provider.Credentials(),
		Region:      region,
		Endpoint:    endpoint,
		PathStyle:   cfg.forcePathStyle,
		UserAgent:   "s3mount-" + version,
		Rejected:    provider.Rejected,
		// A 403 right after expiry (clock skew) is renewed and retried too.
		DeniedNearExpiry: provider.DeniedNearExpiry,
	})
	if err != nil {
		return fail("%v", err)
	}

	roots := toRoots(paths, cfg.readOnly)
	for _, r := range roots {
		access := "read-write"
		if r.ReadOnly {
			access = "read-only"
		}
		logger.Info("authorized path", "bucket", r.Bucket, "prefix", r.Prefix, "access", access, "at", filepath.Join(cfg.mountpoint, r.Bucket, r.Prefix))
	}
	setGoMemoryLimit(cfg.memoryLimitMiB)
	if cfg.pprofAddr != "" {
		if err := servePprof(cfg.pprofAddr, logger); err != nil {
			return fail("--pprof: %v", err)
		}
	}
	fsys, err := fs.New(fs.Options{
		Roots:       roots,
		Bucket:      client.Bucket,
		ReadOnly:    cfg.readOnly,
		UID:         uint32(cfg.uid),
		GID:         uint32(cfg.gid),
		FileMode:    os.FileMode(cfg.fileMode),
		DirMode:     os.FileMode(cfg.dirMode),
		MetadataTTL: cfg.metadataTTL,
		NegativeTTL: cfg.negativeTTL,
		Logger:      logger,
		StagingDir:  cfg.stagingDir,
		RenameLimit: cfg.renameLimit,
		MemoryLimit: int64(cfg.memoryLimitMiB) << 20,
	})
	if err != nil {
		return fail("%v", err)
	}
	srv, err := fsys.Mount(cfg.mountpoint, fs.MountOptions{AllowOther: cfg.allowOther, Debug: cfg.debugFUSE, ReadAhead: max(-1, cfg.readAheadKiB<<10)})
	if err != nil {
		fsys.Close()
		return fail("%v", err)
	}

	// The platform may change the authorized paths at any renewal.
	provider.OnPaths(func(paths []creds.Path) { fsys.SetRoots(toRoots(paths, cfg.readOnly)) })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go provider.Run(ctx)

	logger.Info("mounted", "mountpoint", cfg.mountpoint, "credentials", src.Name(), "region", region, "endpoint", firstNonEmpty(endpoint, "AWS"))
	if ready != nil {
		fmt.Fprintln(ready, "ok")
		ready.Close()
		os.Stdin.Close()
	}

	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	code := 0
	select {
	case <-done:
		logger.Info("unmounted from outside; exiting", "mountpoint", cfg.mountpoint)
	case sig := <-sigs:
		logger.Info("stopping: uploading what open files hold, then unmounting (signal again to stop waiting for the uploads)", "signal", sig.String(), "mountpoint", cfg.mountpoint)
		code = stopMount(fsys, srv, cfg.mountpoint, done, sigs, logger)
	}
	// Close keeps what never reached S3 in the unsaved directory, which
	// outlives the mount, and says which files those are.
	if err := fsys.Close(); errors.Is(err, fs.ErrUnsaved) {
		logger.Error("some files never reached S3; their content is kept on this machine: copy them back once S3 is reachable",
			"kept_in", fsys.UnsavedDir(), "files", err.Error())
		code = 1
	} else if err != nil {
		logger.Error("cleaning up the staging directory", "error", err.Error(), "unsaved_dir", fsys.UnsavedDir())
		code = 1
	}
	if code != 0 {
		logger.Error("stopped with errors (see above); exiting with status 1", "mountpoint", cfg.mountpoint)
	}
	return code
}

// flushGrace is how long a cancelled flush may take to stop before the
// mount is taken down anyway.
const flushGrace = 5 * time.Second

// stopMount uploads what files open for writing hold, then unmounts. A
// second signal cancels the uploads still running and detaches the mount at
// once, rather than waiting for programs to close their files; what was not
// uploaded stays staged for fsys.Close to keep. It returns the exit status:
// non-zero if an upload failed or was cancelled, or the unmount failed.
func stopMount(fsys *fs.FS, srv *fuse.Server, mountpoint string, done <-chan struct{}, sigs <-chan os.Signal, logger *slog.Logger) int {
	hurry, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case sig := <-sigs:
			logger.Warn("signalled again: stopping now; uploads still running are cancelled and what they hold is kept on this machine", "signal", sig.String())
			cancel()
		case <-stopped:
		}
	}()
	code := 0
	flushed := make(chan error, 1)
	go func() { flushed <- fsys.FlushAll(hurry) }()
	var err error
	select {
	case err = <-flushed:
	case <-hurry.Done():
		select {
		case err = <-flushed:
		case <-time.After(flushGrace):
			err = fmt.Errorf("the uploads did not stop within %v of being cancelled", flushGrace)
		}
	}
	if err != nil {
		// FlushAll fails when it is cancelled, so this covers that too.
		logger.Error("some open files could not be uploaded; what is still unsaved when the mount ends is kept in unsaved_dir", "unsaved_dir", fsys.UnsavedDir(), "error", err.Error())
		code = 1
	}
	if !unmount(hurry, srv, mountpoint, done, logger) {
		code = 1
	}
	return code
}

// unmount unmounts, retrying while the mount is busy, and detaches it lazily
// if it stays busy or once hurry is cancelled. It reports whether the mount
// is gone or detached.
func unmount(hurry context.Context, srv *fuse.Server, mountpoint string, done <-chan struct{}, logger *slog.Logger) bool {
	wait := 10 * time.Second
	for attempt := 0; ; attempt++ {
		err := srv.Unmount()
		if err == nil {
			break
		}
		if attempt == 0 && hurry.Err() == nil {
			logger.Warn("mount is busy (a shell or program is using it); retrying", "error", err.Error())
		}
		if attempt == 10 || hurry.Err() != nil {
			logger.Warn("mount still busy; detaching it, it disappears once nothing uses it")
			if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
				logger.Error("could not unmount", "error", err.Error(), "hint", "umount -l "+mountpoint)
				return false
			}
			// Programs still hold files on the detached mount; they get
			// errors once this process exits.
			wait = time.Second
			break
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-hurry.Done():
		}
	}
	select {
	case <-done:
	case <-time.After(wait):
	}
	logger.Info("unmounted", "mountpoint", mountpoint)
	return true
}

// printCredentials prints fresh credentials as AWS credential_process
// JSON, so that the AWS CLI, boto3 and the SDKs can use the platform login
// through a profile with credential_process = s3mount credentials.
func printCredentials(args []string) int {
	cfg := &config{}
	f := flag.NewFlagSet("s3mount credentials", flag.ContinueOnError)
	providerFlags(f, cfg)
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage: s3mount credentials [flags]\n\nPrints temporary AWS credentials as credential_process JSON. In ~/.aws/config:\n\n  [profile maap]\n  credential_process = s3mount credentials\n\nFlags:\n")
		f.PrintDefaults()
	}
	if err := parseQuietly(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "s3mount credentials: %v\nRun 's3mount credentials --help' for usage.\n", err)
		return 2
	}
	if f.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "s3mount credentials: unexpected argument %q\n", f.Arg(0))
		return 2
	}
	src, _, err := newSource(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3mount credentials: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	g, err := src.Fetch(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3mount credentials: %v\n", err)
		return 1
	}
	out := struct {
		Version         int
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string `json:",omitempty"`
		Expiration      string `json:",omitempty"`
	}{Version: 1, AccessKeyID: g.Credentials.AccessKeyID, SecretAccessKey: g.Credentials.SecretAccessKey, SessionToken: g.Credentials.SessionToken}
	if g.Credentials.CanExpire {
		out.Expiration = g.Credentials.Expires.UTC().Format(time.RFC3339)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "s3mount credentials: %v\n", err)
		return 1
	}
	return 0
}

// toRoots turns authorized paths into the filesystem's roots.
func toRoots(paths []creds.Path, readOnly bool) []fs.Root {
	roots := make([]fs.Root, 0, len(paths))
	for _, p := range paths {
		roots = append(roots, fs.Root{Bucket: p.Bucket, Prefix: p.Prefix, ReadOnly: p.Access != creds.ReadWrite || readOnly})
	}
	return roots
}

// newSource picks the credentials source and its default region.
func newSource(cfg *config) (creds.Source, string, error) {
	provider := cfg.provider
	if provider == "" {
		switch {
		case os.Getenv("MAAP_PGT") != "":
			provider = "maap"
		case (os.Getenv("EODH_API_TOKEN") != "" || cfg.tokenFile != "") && firstNonEmpty(cfg.workspace, os.Getenv("EODH_WORKSPACE")) != "":
			provider = "eodh"
		default:
			provider = "aws"
		}
	}
	switch provider {
	case "maap":
		opts := creds.MAAPOptions{URL: cfg.credentialsURL}
		if os.Getenv("MAAP_PGT") == "" && cfg.tokenFile != "" {
			token, err := os.ReadFile(cfg.tokenFile)
			if err != nil {
				return nil, "", fmt.Errorf("reading --token-file: %w", err)
			}
			opts.BearerToken = strings.TrimSpace(string(token))
		}
		src, err := creds.NewMAAP(opts)
		return src, "us-west-2", err
	case "eodh":
		src, err := creds.NewEODH(creds.EODHOptions{BaseURL: cfg.credentialsURL, Workspace: cfg.workspace, TokenFile: cfg.tokenFile, Bucket: cfg.bucket})
		return src, "eu-west-2", err
	case "earthdata":
		if len(cfg.paths) == 0 {
			return nil, "", errors.New("the earthdata provider needs the paths to mount, from the data's CMR links: --path s3://bucket/prefix (repeatable)")
		}
		src, err := creds.NewEarthdata(creds.EarthdataOptions{URL: cfg.credentialsURL, DAAC: cfg.daac, Paths: cfg.paths})
		return src, "us-west-2", err
	case "aws":
		if len(cfg.paths) == 0 {
			return nil, "", errors.New("no credentials provider: set MAAP_PGT (MAAP), EODH_API_TOKEN and --workspace (EO DataHub), or use --provider earthdata or aws with --path s3://bucket/prefix")
		}
		src, err := creds.NewAWS(context.Background(), creds.AWSOptions{Profile: cfg.profile, Paths: cfg.paths})
		if err != nil {
			return nil, "", err
		}
		return src, firstNonEmpty(src.Region(), "us-east-1"), nil
	}
	return nil, "", fmt.Errorf("unknown --provider %q (supported: maap, eodh, earthdata, aws)", provider)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// debugOnSignal turns debug logging on at a SIGUSR2, and back to level at
// the next, so that a running mount can be asked for detail and back. Each
// switch is logged at a level that shows. It returns when sig is closed,
// never in practice: the process exits first.
func debugOnSignal(sig <-chan os.Signal, lv *slog.LevelVar, level slog.Level, logger *slog.Logger) {
	off := level
	if off == slog.LevelDebug {
		off = slog.LevelInfo
	}
	for range sig {
		if lv.Level() == slog.LevelDebug {
			lv.Set(off)
			logger.Log(context.Background(), max(off, slog.LevelInfo), "debug logging off (SIGUSR2 turns it on)", "level", off.String())
		} else {
			lv.Set(slog.LevelDebug)
			logger.Info("debug logging on (SIGUSR2 turns it off)")
		}
	}
}
