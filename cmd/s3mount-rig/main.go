// Command s3mount-rig runs s3mount against a local test rig: a real MinIO,
// a MAAP-compatible credentials endpoint and an expiry-enforcing S3 proxy,
// all on loopback, seeded with sample data. It is what `make demo` runs.
//
// Usage:
//
//	s3mount-rig [--lifetime 1h] [--flat] [--s3mount bin/s3mount] MOUNTPOINT
//
// It starts the rig, prints its endpoints, then runs
// `s3mount --foreground MOUNTPOINT` with the rig's environment. On SIGINT or
// SIGTERM it sends SIGTERM to s3mount, waits for it to unmount, stops the rig
// and exits. If s3mount exits on its own, it stops the rig and exits with
// s3mount's status.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/s3mount/s3mount/internal/rig"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	os.Exit(run())
}

// run does the work of main and returns the exit status.
func run() int {
	fs := flag.NewFlagSet("s3mount-rig", flag.ContinueOnError)
	lifetime := fs.Duration("lifetime", time.Hour, "declared lifetime of the credentials MAAP hands out (the proxy enforces it)")
	flat := fs.Bool("flat", false, "serve MAAP's older flat response shape")
	s3mountBin := fs.String("s3mount", "bin/s3mount", "path of the s3mount binary")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: s3mount-rig [--lifetime 1h] [--flat] [--s3mount PATH] MOUNTPOINT\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	mountpoint, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		slog.Error("bad mountpoint", "err", err)
		return 1
	}
	if fi, err := os.Stat(*s3mountBin); err != nil || fi.IsDir() {
		slog.Error("s3mount binary not found: build it first, or pass --s3mount PATH", "path", *s3mountBin)
		return 1
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		slog.Error("create mountpoint", "err", err)
		return 1
	}

	// Catch signals before starting anything, so an early Ctrl-C still
	// stops the rig cleanly.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	r, err := rig.Start(ctx, rig.Options{Lifetime: *lifetime, Flat: *flat, Seed: true})
	cancel()
	if err != nil {
		slog.Error("start rig", "err", err)
		return 1
	}
	defer func() {
		if err := r.Close(); err != nil {
			slog.Warn("stop rig", "err", err)
		}
	}()
	printEndpoints(r, *lifetime, *flat)

	select {
	case sig := <-sigs:
		slog.Info("signal before mounting, stopping", "signal", sig)
		return 0
	default:
	}

	child := exec.Command(*s3mountBin, "--foreground", mountpoint)
	// Drop the caller's own AWS and MAAP settings (a real profile or keys
	// would confuse the demo) and add the rig's.
	child.Env = append(environWithout("AWS_", "MAAP_"), r.Env()...)
	child.Stdout = os.Stdout
	child.Stderr = os.Stderr
	// Its own process group: Ctrl-C reaches only us, and we forward SIGTERM
	// so s3mount unmounts. If we die, it gets SIGTERM too.
	child.SysProcAttr = rig.ChildProcAttr(syscall.SIGTERM)
	if err := child.Start(); err != nil {
		slog.Error("start s3mount", "err", err)
		return 1
	}
	slog.Info("s3mount started", "pid", child.Process.Pid, "mountpoint", mountpoint)
	var waitErr error // waitErr is written before exited is closed.
	exited := make(chan struct{})
	go func() {
		waitErr = child.Wait()
		close(exited)
	}()

	go func() {
		if waitMounted(mountpoint, 15*time.Second, exited) {
			printTry(r, mountpoint)
		}
	}()

	stopping := false
	for {
		select {
		case <-exited:
			code := exitCode(waitErr)
			if stopping {
				slog.Info("s3mount stopped; stopping the rig", "status", code)
				if code == 0 || code == 128+int(syscall.SIGTERM) {
					return 0
				}
				return code
			}
			slog.Info("s3mount exited; stopping the rig", "status", code)
			return code
		case sig := <-sigs:
			if !stopping {
				stopping = true
				slog.Info("stopping s3mount (SIGTERM); press Ctrl-C again to kill it", "signal", sig)
				_ = child.Process.Signal(syscall.SIGTERM)
				continue
			}
			slog.Warn("killing s3mount; if the mount is left behind, run: fusermount -u " + mountpoint)
			_ = child.Process.Kill()
		}
	}
}

// environWithout returns os.Environ without the variables whose names start
// with any of prefixes.
func environWithout(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// exitCode turns the result of Cmd.Wait into an exit status, 128+N for a
// child killed by signal N.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

// waitMounted reports whether mountpoint shows up in /proc/self/mountinfo
// within timeout. It gives up early, returning false, once exited is closed.
// Where there is no mountinfo it waits a moment and returns true.
func waitMounted(mountpoint string, timeout time.Duration, exited <-chan struct{}) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		mounted, ok := isMounted(mountpoint)
		if !ok {
			time.Sleep(time.Second)
			return true
		}
		if mounted {
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	slog.Warn("mountpoint still not mounted; s3mount may still be starting", "mountpoint", mountpoint, "waited", timeout)
	return true
}

// isMounted reports whether mountpoint is a mount point according to
// /proc/self/mountinfo; ok is false if that file cannot be read.
func isMounted(mountpoint string) (mounted, ok bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, false
	}
	defer f.Close()
	// mountinfo escapes space, tab, newline and backslash as octal.
	esc := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(mountpoint)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == esc {
			return true, true
		}
	}
	return false, true
}

// printEndpoints prints where the rig's servers listen and how to reach
// them by hand.
func printEndpoints(r *rig.Rig, lifetime time.Duration, flat bool) {
	shape := "current (nested)"
	if flat {
		shape = "older flat"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\ns3mount test rig is up (everything on 127.0.0.1):\n")
	fmt.Fprintf(&b, "  MinIO          %s  (root user %s, password %s)\n", r.MinIO.Endpoint, r.MinIO.RootUser, r.MinIO.RootPassword)
	fmt.Fprintf(&b, "  S3 proxy       %s  (enforces the declared expiry)\n", r.Proxy.URL)
	fmt.Fprintf(&b, "  MAAP emulator  %s%s  (%s shape, credentials declared to last %v)\n", r.MAAP.URL, rig.MAAPCredentialsPath, shape, lifetime)
	fmt.Fprintf(&b, "  authorized paths:\n")
	for _, p := range r.Paths {
		fmt.Fprintf(&b, "    %-45s %-9s %s\n", p.URI(), p.Type, p.Access)
	}
	fmt.Fprintf(&b, "  environment given to s3mount:\n")
	for _, kv := range r.Env() {
		fmt.Fprintf(&b, "    export %s\n", kv)
	}
	fmt.Fprintf(&b, "  fetch credentials by hand:\n    curl -H 'proxy-ticket: %s' %s%s\n\n", r.Ticket, r.MAAP.URL, rig.MAAPCredentialsPath)
	fmt.Print(b.String())
}

// printTry prints a few commands to try against the mount.
func printTry(r *rig.Rig, mountpoint string) {
	dir := func(p rig.AuthorizedPath) string {
		return filepath.Join(mountpoint, p.Bucket, strings.Trim(p.Prefix, "/"))
	}
	var ws, ro *rig.AuthorizedPath
	for i := range r.Paths {
		p := &r.Paths[i]
		if ws == nil && p.Type == rig.TypeWorkspace {
			ws = p
		}
		if ro == nil && !p.ReadWrite() {
			ro = p
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nWhat to try (Ctrl-C here unmounts and stops everything):\n")
	fmt.Fprintf(&b, "  ls %s\n", mountpoint)
	if ws != nil {
		d := dir(*ws)
		sum := sha256.Sum256(rig.SampleBin())
		fmt.Fprintf(&b, "  ls -l %s\n", d)
		fmt.Fprintf(&b, "  cat %s\n", filepath.Join(d, "README.txt"))
		fmt.Fprintf(&b, "  sha256sum %s   # expect %x\n", filepath.Join(d, "data", "sample.bin"), sum)
		fmt.Fprintf(&b, "  find %s -type f | xargs du -b\n", d)
	}
	if ro != nil {
		fmt.Fprintf(&b, "  touch %s   # read-only path: refused\n", filepath.Join(dir(*ro), "new-file"))
		if strings.HasPrefix(strings.Trim(ro.Prefix, "/"), "smap") {
			fmt.Fprintf(&b, "  /usr/bin/python3 -c 'import h5py; f = h5py.File(\"%s\"); print(f[\"Soil_Moisture_Retrieval_Data_AM/soil_moisture\"][30, :8])'   # Debian's python3-h5py\n",
				filepath.Join(dir(*ro), rig.SMAPSampleName))
		}
	}
	fmt.Fprintf(&b, "\n")
	fmt.Print(b.String())
}
