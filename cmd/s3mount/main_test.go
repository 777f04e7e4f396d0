package main

// End-to-end tests of the s3mount command: they build the binary, run it as
// a separate process against the test rig (a real MinIO, a MAAP emulator and
// an expiry-enforcing S3 proxy) and use the mount with ordinary tools.
//
// The mounts are served by s3mount processes, never by the test process, so
// the CLONE_VFORK deadlock described in fs/mount_test.go cannot happen here.
// Still, no command is ever given a Dir inside a mount: paths are passed as
// arguments.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/internal/rig"
)

// Generous deadlines: the tests must pass on a loaded two-core machine.
const (
	mountDeadline   = 30 * time.Second // for a mount to appear or disappear
	exitDeadline    = 30 * time.Second // for a process to exit
	commandDeadline = 60 * time.Second // for any one command to finish
	pollInterval    = 50 * time.Millisecond
)

// binPath is the s3mount binary TestMain builds.
var binPath string

// sharedRig is one seeded rig for the tests that do not change its
// settings. TestMain stops it.
var sharedRig struct {
	once sync.Once
	rig  *rig.Rig
	err  error
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "s3mount-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The binary's own path, with symlinks resolved, is what
	// /proc/PID/exe shows for the processes it runs.
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binPath = filepath.Join(dir, "s3mount")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", binPath, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build -o %s .: %v\n%s", binPath, err, out)
		return 1
	}

	code := m.Run()

	if sharedRig.rig != nil {
		sharedRig.rig.Close()
	}
	return code
}

// getSharedRig returns the shared seeded rig, starting it on first use.
func getSharedRig(t *testing.T) *rig.Rig {
	t.Helper()
	rig.RequireMinIO(t)
	sharedRig.once.Do(func() {
		sharedRig.rig, sharedRig.err = rig.Start(context.Background(), rig.Options{Seed: true})
	})
	if sharedRig.err != nil {
		t.Fatal(sharedRig.err)
	}
	return sharedRig.rig
}

// env returns the environment to run s3mount in: this process's, without
// any AWS_*, MAAP_* or XDG_STATE_HOME variable, then extra in order. A later
// NAME=value replaces an earlier one, and a bare NAME (no "=") removes it.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "MAAP_") ||
			strings.HasPrefix(kv, "XDG_STATE_HOME=") || strings.HasPrefix(kv, daemonEnv+"=") {
			continue
		}
		out = append(out, kv)
	}
	for _, kv := range extra {
		name, _, hasValue := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(s string) bool { return strings.HasPrefix(s, name+"=") })
		if hasValue {
			out = append(out, kv)
		}
	}
	return out
}

// mountDir returns a fresh, empty directory to mount on. Its cleanup, which
// runs after every cleanup registered later, kills any s3mount process
// still serving it and unmounts it if it is still mounted, so that nothing
// is left behind even when the test fails.
func mountDir(t *testing.T) string {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	guardMount(t, dir)
	return dir
}

// guardMount registers the cleanup described at mountDir for dir. It runs
// before t.TempDir removes dir, which must never recurse into a live mount.
func guardMount(t *testing.T, dir string) {
	t.Helper()
	t.Cleanup(func() {
		for _, pid := range s3mountPIDs(dir) {
			t.Logf("cleanup: s3mount pid %d still serves %s; stopping it", pid, dir)
			stopPID(t, pid, dir)
		}
		if isMounted(dir) {
			t.Logf("cleanup: %s is still mounted; unmounting it", dir)
			forceUnmount(t, dir)
		}
	})
}

// forceUnmount unmounts dir: plainly if it can; else after aborting its
// FUSE connection, which MNT_FORCE does and which frees a server stuck on a
// request to its own mount; else by detaching it (umount -l).
func forceUnmount(t *testing.T, dir string) {
	t.Helper()
	unmount := func() bool {
		for i := 0; i < 20 && isMounted(dir); i++ {
			if syscall.Unmount(dir, 0) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return !isMounted(dir)
	}
	if unmount() {
		return
	}
	_ = syscall.Unmount(dir, syscall.MNT_FORCE)
	if unmount() {
		return
	}
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		t.Errorf("cleanup: umount -l %s: %v", dir, err)
	}
}

// isMounted reports whether dir is a mount point in /proc/self/mountinfo.
func isMounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		panic(err) // Linux only; without mountinfo nothing here can work.
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMountinfo(f[4]) == dir {
			return true
		}
	}
	return false
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// waitFor polls cond until it is true or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// procRunning reports whether any thread of pid has yet to exit. A process
// whose main thread is a zombie can still have a thread stuck exiting, such
// as one closing a file on the FUSE mount the process itself served.
func procRunning(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue
		}
		// "pid (comm) S ...": the state follows the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) {
			continue
		}
		if st := stat[i+2]; st != 'Z' && st != 'X' {
			return true
		}
	}
	return false
}

// isOurs reports whether pid runs the s3mount binary of this test run,
// which guards against signalling a reused pid.
func isOurs(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && exe == binPath
}

// s3mountPIDs returns the running s3mount processes of this test run that
// have dir among their arguments.
func s3mountPIDs(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !isOurs(pid) || !procRunning(pid) {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(cmdline), "\x00"), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopPID stops an s3mount process of this test run that serves dir and is
// not this process's child: SIGTERM, then SIGKILL, then, if it is stuck
// exiting, aborting the FUSE connection of dir.
func stopPID(t *testing.T, pid int, dir string) {
	t.Helper()
	if !procRunning(pid) {
		return
	}
	if isOurs(pid) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if waitFor(exitDeadline, func() bool { return !procRunning(pid) }) {
			return
		}
		t.Errorf("s3mount pid %d ignored SIGTERM for %v; killing it", pid, exitDeadline)
		if isOurs(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if waitFor(10*time.Second, func() bool { return !procRunning(pid) }) {
			return
		}
	}
	if !isMounted(dir) {
		return // not, or no longer, an s3mount of this test run
	}
	t.Errorf("s3mount pid %d is stuck exiting; aborting the FUSE connection of %s", pid, dir)
	_ = syscall.Unmount(dir, syscall.MNT_FORCE)
	if !waitFor(exitDeadline, func() bool { return !procRunning(pid) }) {
		t.Errorf("s3mount pid %d still has not exited", pid)
	}
}

// tail returns the last lines of a log for a failure message.
func tail(log string) string {
	const keep = 60
	lines := strings.SplitAfter(log, "\n")
	if len(lines) <= keep {
		return log
	}
	return fmt.Sprintf("[%d earlier lines]\n%s", len(lines)-keep, strings.Join(lines[len(lines)-keep:], ""))
}

// result is how a command that ran to the end went.
type result struct {
	code           int // exit status; -1 if killed by a signal
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit status %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runS3mount runs s3mount to the end (or commandDeadline) and returns how
// it went. A background mount it starts is left running.
func runS3mount(t *testing.T, environ []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = environ
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = rig.ChildProcAttr(syscall.SIGKILL)
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	res := result{code: -1, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("s3mount %q did not finish within %v\n%v", args, commandDeadline, res)
	case err == nil:
		res.code = 0
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	default:
		t.Fatalf("s3mount %q: %v", args, err)
	}
	return res
}

// fgProc is an s3mount process running in the foreground.
type fgProc struct {
	cmd    *exec.Cmd
	stderr *rig.SyncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, set before done closes
}

// startForeground starts s3mount with args, which should include
// --foreground and mount dir. Its cleanup, registered after the caller's
// mountDir and so run before it, stops the process if it is still running
// (see stop) and shows its output if the test failed.
func startForeground(t *testing.T, dir string, environ []string, args ...string) *fgProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = environ
	p := &fgProc{cmd: cmd, stderr: &rig.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.SysProcAttr = rig.ChildProcAttr(syscall.SIGKILL)
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		defer cancel()
		if !p.exited() {
			p.stop(t, dir, cancel)
		}
		if t.Failed() {
			t.Logf("s3mount %q output:\n%s", args, tail(p.stderr.String()))
		}
	})
	return p
}

// stop stops the process: SIGTERM, then SIGKILL (kill), then, if it is
// stuck exiting, aborting the FUSE connection of dir.
func (p *fgProc) stop(t *testing.T, dir string, kill func()) {
	t.Helper()
	pid := p.cmd.Process.Pid
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(exitDeadline):
	}
	t.Errorf("s3mount pid %d ignored SIGTERM for %v; killing it", pid, exitDeadline)
	kill()
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	t.Errorf("s3mount pid %d is stuck exiting; aborting the FUSE connection of %s", pid, dir)
	_ = syscall.Unmount(dir, syscall.MNT_FORCE)
	select {
	case <-p.done:
	case <-time.After(exitDeadline):
		t.Errorf("s3mount pid %d still has not exited", pid)
	}
}

func (p *fgProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitMounted waits until the process has logged that it mounted dir and
// dir is a mount point.
//
// The mount shows in mountinfo before s3mount is done mounting (go-fuse
// then still opens a file on the new mount, its poll hack). Waiting for the
// "mounted" line means the mount is ready for use.
func (p *fgProc) waitMounted(t *testing.T, dir string) {
	t.Helper()
	ok := waitFor(mountDeadline, func() bool {
		return p.exited() || (strings.Contains(p.stderr.String(), "msg=mounted") && isMounted(dir))
	})
	if p.exited() {
		t.Fatalf("s3mount exited before mounting (%v); output:\n%s", p.err, tail(p.stderr.String()))
	}
	if !ok {
		t.Fatalf("%s not mounted after %v; output:\n%s", dir, mountDeadline, tail(p.stderr.String()))
	}
}

// signalAndWait sends sig and waits for the process to exit, returning its
// exit status.
func (p *fgProc) signalAndWait(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(exitDeadline):
		t.Fatalf("s3mount did not exit within %v of %v; output:\n%s", exitDeadline, sig, tail(p.stderr.String()))
	}
	return p.cmd.ProcessState.ExitCode()
}

// run runs a command that is not s3mount and returns its combined output.
// The command never runs with a Dir inside a mount.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within %v", name, args, commandDeadline)
	}
	return string(out), err
}

func mustRunTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runTool(t, name, args...)
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return out
}

// caBundle returns an existing CA bundle file, or writes a self-signed
// certificate to a temporary file if the system has none.
func caBundle(t *testing.T) string {
	t.Helper()
	const system = "/etc/ssl/certs/ca-certificates.crt"
	if fi, err := os.Stat(system); err == nil && fi.Mode().IsRegular() {
		return system
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "s3mount test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// seeded returns the body of a seeded object.
func seeded(t *testing.T, r *rig.Rig, bucket, key string) string {
	t.Helper()
	for _, o := range rig.SeedObjects(r.Paths) {
		if o.Bucket == bucket && o.Key == key {
			return string(o.Body)
		}
	}
	t.Fatalf("no seeded object s3://%s/%s", bucket, key)
	return ""
}

// defaultBuckets returns the sorted bucket names of rig.DefaultPaths.
func defaultBuckets() []string {
	var names []string
	for _, p := range rig.DefaultPaths() {
		if !slices.Contains(names, p.Bucket) {
			names = append(names, p.Bucket)
		}
	}
	sort.Strings(names)
	return names
}

// checkReads checks the mount at dir lists the rig's buckets and serves the
// seeded README.txt and sample.bin.
func checkReads(t *testing.T, r *rig.Rig, dir string) {
	t.Helper()
	ls := strings.Fields(mustRunTool(t, "ls", "-1", dir))
	if want := defaultBuckets(); !slices.Equal(ls, want) {
		t.Errorf("ls %s = %q, want %q", dir, ls, want)
	}
	readme := mustRunTool(t, "cat", filepath.Join(dir, "maap-ops-workspace/jdoe/README.txt"))
	if want := seeded(t, r, "maap-ops-workspace", "jdoe/README.txt"); readme != want {
		t.Errorf("cat README.txt = %q, want %q", readme, want)
	}
	sum := mustRunTool(t, "sha256sum", filepath.Join(dir, "maap-ops-workspace/jdoe/data/sample.bin"))
	want := sha256.Sum256(rig.SampleBin())
	if got, _, _ := strings.Cut(sum, " "); got != hex.EncodeToString(want[:]) {
		t.Errorf("sha256sum sample.bin = %q, want %q", got, hex.EncodeToString(want[:]))
	}
}

var mountedPID = regexp.MustCompile(`mounted at (\S+) \(pid (\d+), log (\S+)\)`)

func TestBackgroundMount(t *testing.T) {
	r := getSharedRig(t)
	dir := mountDir(t)
	state := t.TempDir()
	logPath := filepath.Join(state, "s3mount", "s3mount.log")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("%s:\n%s", logPath, tail(string(data)))
		}
	})

	res := runS3mount(t, env(append(r.Env(), "AWS_CA_BUNDLE="+caBundle(t), "XDG_STATE_HOME="+state)...), dir)
	if res.code != 0 {
		t.Fatalf("s3mount %s: got exit status %d, want 0\n%v", dir, res.code, res)
	}
	m := mountedPID.FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("stdout = %q, want a line like %q", res.stdout, "mounted at DIR (pid N, log FILE)")
	}
	if m[1] != dir {
		t.Errorf("mounted at %q, want %q", m[1], dir)
	}
	if m[3] != logPath {
		t.Errorf("log %q, want %q", m[3], logPath)
	}
	pid, _ := strconv.Atoi(m[2])
	t.Cleanup(func() { stopPID(t, pid, dir) })
	if !isOurs(pid) || !procRunning(pid) {
		t.Fatalf("background s3mount pid %d is not running", pid)
	}
	if !waitFor(mountDeadline, func() bool { return isMounted(dir) }) {
		t.Fatalf("%s not mounted after %v", dir, mountDeadline)
	}

	checkReads(t, r, dir)

	logData, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	log := string(logData)
	if !strings.Contains(log, "mounted") {
		t.Errorf("log %s does not say %q:\n%s", logPath, "mounted", log)
	}
	for line := range strings.Lines(log) {
		if strings.Contains(strings.ToLower(line), "checksum") {
			t.Errorf("log line mentions checksums: %q", line)
		}
	}
	for name, secret := range map[string]string{"the MAAP ticket": r.Ticket, "the MinIO root password": r.MinIO.RootPassword} {
		if strings.Contains(log, secret) || strings.Contains(res.stdout+res.stderr, secret) {
			t.Errorf("%s appears in the output or the log", name)
		}
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM pid %d: %v", pid, err)
	}
	if !waitFor(mountDeadline, func() bool { return !isMounted(dir) }) {
		t.Errorf("%s still mounted %v after SIGTERM", dir, mountDeadline)
	}
	if !waitFor(exitDeadline, func() bool { return !procRunning(pid) }) {
		t.Errorf("pid %d still running %v after SIGTERM", pid, exitDeadline)
	}
	// The daemon is not this process's child, so its exit status is out of
	// reach; its last log line says it unmounted cleanly.
	if logData, err = os.ReadFile(logPath); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logData), "msg=unmounted") {
		t.Errorf("log %s does not say it unmounted after SIGTERM:\n%s", logPath, logData)
	}
}

func TestForegroundMount(t *testing.T) {
	r := getSharedRig(t)
	tests := []struct {
		name     string
		args     func(dir string) []string
		readOnly bool
	}{
		{"flags before mountpoint", func(dir string) []string { return []string{"--foreground", dir} }, false},
		{"flags after mountpoint", func(dir string) []string { return []string{dir, "--foreground", "--read-only"} }, true},
		{"flags around mountpoint", func(dir string) []string { return []string{"--read-only", dir, "--foreground"} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := mountDir(t)
			p := startForeground(t, dir, env(r.Env()...), tt.args(dir)...)
			p.waitMounted(t, dir)

			checkReads(t, r, dir)

			newFile := filepath.Join(dir, "maap-ops-workspace/jdoe/x")
			out, err := runTool(t, "touch", newFile)
			if tt.readOnly {
				if err == nil || !strings.Contains(out, "Read-only file system") {
					t.Errorf("touch %s: got %v %q, want an error saying %q", newFile, err, out, "Read-only file system")
				}
			} else if strings.Contains(out, "Read-only file system") {
				t.Errorf("touch %s without --read-only: got %q, want no %q", newFile, out, "Read-only file system")
			}
			// Whatever the mode, a read-only authorized path refuses changes.
			roFile := filepath.Join(dir, "public-reference-data/smap/v9/x")
			if out, err := runTool(t, "touch", roFile); err == nil || !strings.Contains(out, "Read-only file system") {
				t.Errorf("touch %s: got %v %q, want an error saying %q", roFile, err, out, "Read-only file system")
			}

			if code := p.signalAndWait(t, syscall.SIGINT); code != 0 {
				t.Errorf("exit status after SIGINT: got %d, want 0; output:\n%s", code, tail(p.stderr.String()))
			}
			if isMounted(dir) {
				t.Errorf("%s still mounted after s3mount exited", dir)
			}
		})
	}
}

// TestDebugLoggingOnSignal turns debug logging on and off in a running
// mount with SIGUSR2: reads log their GETs at debug level only while it is
// on.
func TestDebugLoggingOnSignal(t *testing.T) {
	r := getSharedRig(t)
	dir := mountDir(t)
	p := startForeground(t, dir, env(r.Env()...), "--foreground", "--log-level", "info", dir)
	p.waitMounted(t, dir)
	read := func(name string) {
		t.Helper()
		if _, err := os.ReadFile(filepath.Join(dir, "maap-ops-workspace/jdoe", name)); err != nil {
			t.Fatal(err)
		}
	}
	signal := func(wantLine string) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		if !waitFor(10*time.Second, func() bool { return strings.Contains(p.stderr.String(), wantLine) }) {
			t.Fatalf("no %q in the log after SIGUSR2:\n%s", wantLine, tail(p.stderr.String()))
		}
	}
	read("README.txt")
	signal("debug logging on")
	read("results/run1.csv")
	signal("debug logging off")
	read("data/sample.bin")
	if code := p.signalAndWait(t, syscall.SIGINT); code != 0 {
		t.Errorf("exit status after SIGINT: got %d, want 0", code)
	}

	log := p.stderr.String()
	on, off := strings.Index(log, "debug logging on"), strings.Index(log, "debug logging off")
	if strings.Contains(log[:on], "level=DEBUG") {
		t.Errorf("debug lines before SIGUSR2, at --log-level info:\n%s", log[:on])
	}
	if !strings.Contains(log[on:off], "level=DEBUG msg=GET") {
		t.Errorf("no GET logged at debug level while debug logging was on:\n%s", log[on:off])
	}
	if strings.Contains(log[off:], "level=DEBUG") {
		t.Errorf("debug lines after the second SIGUSR2:\n%s", log[off:])
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	r := rig.StartForTest(t, rig.Options{})
	const wrongTicket = "PGT-wrong-secret-123"
	tests := []struct {
		name       string
		mode       rig.Mode // MAAP's mode during the case
		env        []string // added to r.Env(); a bare NAME removes it
		fileTarget bool     // the mountpoint is a regular file
		want       string   // in the message
	}{
		{name: "wrong ticket", env: []string{"MAAP_PGT=" + wrongTicket}, want: "proxy ticket is missing, wrong or expired"},
		{name: "MAAP unavailable", mode: rig.ModeUnavailable, want: "unavailable"},
		{name: "MAAP answers HTML", mode: rig.ModeHTML, want: "HTML"},
		{name: "MAAP answers malformed JSON", mode: rig.ModeMalformedJSON, want: "not valid JSON"},
		{name: "MAAP endpoint down", env: []string{"MAAP_API_HOST=127.0.0.1:1"}, want: "cannot reach"},
		{name: "no MAAP_PGT", env: []string{"MAAP_PGT"}, want: "MAAP_PGT"},
		{name: "mountpoint is a file", fileTarget: true, want: "not a directory"},
	}
	for _, background := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.name + "/foreground"
			if background {
				name = tt.name + "/background"
			}
			t.Run(name, func(t *testing.T) {
				if tt.mode != rig.ModeOK {
					r.MAAP.SetMode(tt.mode)
					t.Cleanup(func() { r.MAAP.SetMode(rig.ModeOK) })
				}
				dir := mountDir(t)
				if tt.fileTarget {
					dir = filepath.Join(filepath.Dir(dir), "file")
					if err := os.WriteFile(dir, []byte("not a directory\n"), 0o644); err != nil {
						t.Fatal(err)
					}
					guardMount(t, dir)
				}
				state := t.TempDir()
				args := []string{dir}
				if !background {
					args = []string{"--foreground", dir}
				}
				environ := env(append(append(r.Env(), "XDG_STATE_HOME="+state), tt.env...)...)

				res := runS3mount(t, environ, args...)
				if res.code != 1 {
					t.Errorf("got exit status %d, want 1\n%v", res.code, res)
				}
				if !strings.Contains(res.stderr, tt.want) {
					t.Errorf("stderr = %q, want it to mention %q", res.stderr, tt.want)
				}
				if background && !strings.HasPrefix(res.stderr, "s3mount: ") {
					t.Errorf("stderr = %q, want the child's message relayed as %q", res.stderr, "s3mount: ...")
				}
				if strings.Contains(res.stdout, "mounted at") {
					t.Errorf("stdout = %q, want no %q", res.stdout, "mounted at")
				}
				logData, _ := os.ReadFile(filepath.Join(state, "s3mount", "s3mount.log"))
				for _, secret := range []string{r.Ticket, wrongTicket} {
					if strings.Contains(res.stdout+res.stderr, secret) {
						t.Errorf("output contains the ticket %q:\n%v", secret, res)
					}
					if strings.Contains(string(logData), secret) {
						t.Errorf("log file contains the ticket %q:\n%s", secret, logData)
					}
				}
				if isMounted(dir) {
					t.Errorf("%s is mounted after a failed start", dir)
				}
				if pids := s3mountPIDs(dir); len(pids) > 0 {
					t.Errorf("s3mount processes %v still running after a failed start", pids)
				}
			})
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{"no mountpoint", nil, 2, "", "Run 's3mount --help' for usage"},
		{"no mountpoint, only flags", []string{"--foreground", "--read-only"}, 2, "", "expected exactly one MOUNTPOINT, got 0"},
		{"two mountpoints", []string{a, b}, 2, "", "expected exactly one MOUNTPOINT, got 2"},
		{"two mountpoints around a flag", []string{a, "--foreground", b}, 2, "", "Run 's3mount --help' for usage"},
		{"unknown flag", []string{"--no-such-flag", a}, 2, "", "Run 's3mount --help' for usage"},
		{"unknown flag after mountpoint", []string{a, "--no-such-flag"}, 2, "", "flag provided but not defined"},
		{"bad file mode", []string{"--file-mode", "01000", a}, 2, "", "--file-mode"},
		{"memory limit too small", []string{"--memory-limit", "8", a}, 2, "", "--memory-limit must be at least 16"},
		{"memory limit too small, by its old name", []string{"--write-memory", "8", a}, 2, "", "--memory-limit must be at least 16"},
		{"unknown log level", []string{"--log-level", "loud", a}, 2, "", "--log-level"},
		{"version", []string{"--version"}, 0, "s3mount", ""},
		{"help", []string{"--help"}, 0, "", "Usage: s3mount"},
		{"short help", []string{"-h"}, 0, "", "Usage: s3mount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runS3mount(t, env("XDG_STATE_HOME="+t.TempDir()), tt.args...)
			if res.code != tt.code {
				t.Errorf("s3mount %q: got exit status %d, want %d\n%v", tt.args, res.code, tt.code, res)
			}
			if !strings.Contains(res.stdout, tt.wantStdout) {
				t.Errorf("s3mount %q: stdout = %q, want it to contain %q", tt.args, res.stdout, tt.wantStdout)
			}
			if !strings.Contains(res.stderr, tt.wantStderr) {
				t.Errorf("s3mount %q: stderr = %q, want it to contain %q", tt.args, res.stderr, tt.wantStderr)
			}
		})
	}
	for _, d := range []string{a, b} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("usage errors created %s (Stat: %v)", d, err)
		}
	}
}

func TestCredentialsAreRenewed(t *testing.T) {
	t.Parallel()
	r := rig.StartForTest(t, rig.Options{Seed: true, Lifetime: 4 * time.Second})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("MinIO output:\n%s", tail(r.MinIO.Output()))
		}
	})
	dir := mountDir(t)
	p := startForeground(t, dir, env(r.Env()...), "--foreground", dir)
	p.waitMounted(t, dir)

	sample := filepath.Join(dir, "maap-ops-workspace/jdoe/data/sample.bin")
	// O_DIRECT bypasses the page cache, so every read reaches S3 and signs
	// with whatever credentials the mount holds at the time.
	const readFor = 15 * time.Second
	reads := 0
	for end := time.Now().Add(readFor); time.Now().Before(end); reads++ {
		out, err := runTool(t, "dd", "if="+sample, "iflag=direct", "of=/dev/null", "bs=1M")
		if err != nil {
			t.Fatalf("read %d: dd: %v\n%s", reads+1, err, out)
		}
		if want := fmt.Sprintf("%d bytes", rig.SampleBinSize); !strings.Contains(out, want) {
			t.Fatalf("read %d: dd said %q, want %q", reads+1, out, want)
		}
	}
	t.Logf("%d reads in %v; MAAP issued %d credentials; the proxy saw %d requests", reads, readFor, r.MAAP.Issued(), r.Proxy.Requests())
	if got := r.MAAP.Issued(); got < 4 {
		t.Errorf("MAAP issued %d credentials in %v of 4s credentials, want at least 4", got, readFor)
	}
	if got := r.Proxy.Rejected(); got != 0 {
		t.Errorf("proxy rejected %d requests signed with expired keys, want 0", got)
	}

	if code := p.signalAndWait(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit status after SIGTERM: got %d, want 0", code)
	}
	if isMounted(dir) {
		t.Errorf("%s still mounted after s3mount exited", dir)
	}
}

// TestStopUploadsOpenFiles stops a mount while a program still has a file
// open for writing: what it wrote must reach S3 before s3mount exits.
func TestStopUploadsOpenFiles(t *testing.T) {
	r := getSharedRig(t)
	dir := mountDir(t)
	p := startForeground(t, dir, env(r.Env()...), "--foreground", dir)
	p.waitMounted(t, dir)

	path := filepath.Join(dir, "maap-ops-workspace/jdoe/open-at-stop.txt")
	holder := exec.Command("sh", "-c", `exec 3>"$1" && printf 'written before the stop' >&3 && echo ready && exec sleep 120`, "sh", path)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("writer: %q, %v", line, err)
	}

	if code := p.signalAndWait(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit status after SIGTERM: got %d, want 0; output:\n%s", code, tail(p.stderr.String()))
	}
	obj, err := r.MinIO.Client().GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String("maap-ops-workspace"), Key: aws.String("jdoe/open-at-stop.txt")})
	if err != nil {
		t.Fatalf("the open file was not uploaded at stop: %v\n%s", err, tail(p.stderr.String()))
	}
	defer obj.Body.Close()
	if got, _ := io.ReadAll(obj.Body); string(got) != "written before the stop" {
		t.Errorf("object after stop = %q, want %q", got, "written before the stop")
	}
}

// TestCredentialsProcess uses `s3mount credentials` as the AWS SDK's
// credential_process, through a shared-config profile, as the AWS CLI and
// boto3 would.
func TestCredentialsProcess(t *testing.T) {
	r := getSharedRig(t)
	dir := t.TempDir()
	var script strings.Builder
	script.WriteString("#!/bin/sh\n")
	for _, kv := range r.Env() {
		name, value, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&script, "export %s='%s'\n", name, value)
	}
	fmt.Fprintf(&script, "exec '%s' credentials\n", binPath)
	scriptPath := filepath.Join(dir, "platform-login")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o700); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "config")
	profile := "[profile maap]\ncredential_process = " + scriptPath + "\n"
	if err := os.WriteFile(configPath, []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(v, "")
	}
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithSharedConfigFiles([]string{configPath}),
		awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(dir, "none")}),
		awsconfig.WithSharedConfigProfile("maap"), awsconfig.WithRegion(rig.Region))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("credential_process: %v", err)
	}
	if !c.CanExpire || time.Until(c.Expires) < time.Minute || c.SessionToken == "" {
		t.Errorf("credentials = expire %v at %v, session token %v; want an expiry an hour ahead and a token", c.CanExpire, c.Expires, c.SessionToken != "")
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(r.Proxy.URL)
		o.UsePathStyle = true
	})
	out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("maap-ops-workspace"), Prefix: aws.String("jdoe/")})
	if err != nil || len(out.Contents) == 0 {
		t.Errorf("ListObjectsV2 with credential_process credentials: %v, %d objects", err, len(out.Contents))
	}

	// Errors go to stderr, with no secret, and the exit status says so.
	res := runS3mount(t, env("MAAP_PGT=PGT-wrong-secret-9", "MAAP_API_HOST="+r.MAAP.Host, "MAAP_API_HOST_SCHEME=http"), "credentials")
	if res.code != 1 || !strings.Contains(res.stderr, "proxy ticket") || strings.Contains(res.stderr+res.stdout, "PGT-wrong-secret-9") {
		t.Errorf("credentials with a wrong ticket: %v", res)
	}
}

// TestOtherProviders mounts an EO DataHub workspace and NASA Earthdata
// paths through the binary, each against its emulator in the rig.
func TestOtherProviders(t *testing.T) {
	r := getSharedRig(t)
	ctx := context.Background()
	s3env := []string{"AWS_ENDPOINT_URL_S3=" + r.Proxy.URL, "AWS_REGION=" + rig.Region}

	t.Run("eodh", func(t *testing.T) {
		bucket := rig.EODHDefaultBucket
		if _, err := r.MinIO.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil &&
			!strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") {
			t.Fatal(err)
		}
		if _, err := r.MinIO.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket),
			Key: aws.String("james-workspace/hello.txt"), Body: strings.NewReader("hello from EODH\n")}); err != nil {
			t.Fatal(err)
		}
		e, err := rig.StartEODH(rig.EODHOptions{MinIO: r.MinIO, Proxy: r.Proxy, Tokens: []string{"eodh-token-123"}, Workspace: "james-workspace"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		tokenFile := filepath.Join(t.TempDir(), "token")
		os.WriteFile(tokenFile, []byte("eodh-token-123\n"), 0o600)
		dir := mountDir(t)
		// Chosen without --provider: a token and a workspace mean EO DataHub.
		p := startForeground(t, dir, env(append(s3env, "EODH_API_URL="+e.URL, "EODH_WORKSPACE=james-workspace")...),
			"--foreground", "--token-file", tokenFile, dir)
		p.waitMounted(t, dir)
		if got := mustRunTool(t, "cat", filepath.Join(dir, bucket, "james-workspace/hello.txt")); got != "hello from EODH\n" {
			t.Errorf("cat through the EODH mount = %q", got)
		}
		mustRunTool(t, "cp", "/etc/hostname", filepath.Join(dir, bucket, "james-workspace/copied"))
		if code := p.signalAndWait(t, syscall.SIGTERM); code != 0 {
			t.Errorf("exit status %d", code)
		}
	})

	t.Run("earthdata", func(t *testing.T) {
		path := rig.AuthorizedPath{Bucket: "public-reference-data", Prefix: "smap/v9", Type: rig.TypeOrg, Access: rig.AccessReadOnly}
		e, err := rig.StartEarthdata(rig.EarthdataOptions{MinIO: r.MinIO, Proxy: r.Proxy, Tokens: []string{"edl-token-456"},
			Paths: []rig.AuthorizedPath{path}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		dir := mountDir(t)
		p := startForeground(t, dir, env(append(s3env, "EARTHDATA_TOKEN=edl-token-456", "EARTHDATA_LOGIN_URL="+e.LoginURL)...),
			"--foreground", "--provider", "earthdata", "--credentials-url", e.CredentialsURL,
			"--path", "s3://public-reference-data/smap/v9", dir)
		p.waitMounted(t, dir)
		granule := filepath.Join(dir, "public-reference-data/smap/v9/granules/g001.txt")
		if got := mustRunTool(t, "cat", granule); got != seeded(t, r, "public-reference-data", "smap/v9/granules/g001.txt") {
			t.Errorf("cat through the Earthdata mount = %q", got)
		}
		if out, err := runTool(t, "touch", filepath.Join(dir, "public-reference-data/smap/v9/new")); err == nil || !strings.Contains(out, "Read-only file system") {
			t.Errorf("touch on Earthdata paths: %v %q, want Read-only file system", err, out)
		}
		if e.LastAppName() != "s3mount" || !strings.HasPrefix(e.LastUserAgent(), "s3mount/") {
			t.Errorf("app-name %q, User-Agent %q", e.LastAppName(), e.LastUserAgent())
		}
		if code := p.signalAndWait(t, syscall.SIGTERM); code != 0 {
			t.Errorf("exit status %d", code)
		}
	})
}

// wsBucket is the rig's read-write workspace bucket. Tests that write use
// their own prefix in it (testPrefix), below the authorized jdoe/.
const wsBucket = "maap-ops-workspace"

// testPrefix returns a fresh key prefix under the authorized path in
// wsBucket, such as "jdoe/perm-1a2b3c4d/", and deletes everything under it
// when the test ends. Call it before mountDir, so that the deletion comes
// after every mount and process of the test is gone.
func testPrefix(t *testing.T, r *rig.Rig, name string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "jdoe/" + name + "-" + hex.EncodeToString(b[:]) + "/"
	t.Cleanup(func() {
		for key := range s3Snapshot(t, r, prefix) {
			if _, err := r.MinIO.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{
				Bucket: aws.String(wsBucket), Key: aws.String(prefix + key)}); err != nil {
				t.Errorf("cleanup: DeleteObject s3://%s/%s%s: %v", wsBucket, prefix, key, err)
			}
		}
	})
	return prefix
}

// putObjects stores objects, by key relative to prefix, through the SDK.
func putObjects(t *testing.T, r *rig.Rig, prefix string, objects map[string]string) {
	t.Helper()
	for key, body := range objects {
		if _, err := r.MinIO.Client().PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(wsBucket), Key: aws.String(prefix + key), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("PutObject s3://%s/%s%s: %v", wsBucket, prefix, key, err)
		}
	}
}

// s3Snapshot returns every object under prefix in wsBucket, by key relative
// to prefix, with its body, read through the SDK rather than the mount.
func s3Snapshot(t *testing.T, r *rig.Rig, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	objects := map[string]string{}
	pages := s3.NewListObjectsV2Paginator(r.MinIO.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(wsBucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing s3://%s/%s: %v", wsBucket, prefix, err)
		}
		for _, o := range page.Contents {
			out, err := r.MinIO.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(wsBucket), Key: o.Key})
			if err != nil {
				t.Fatalf("GetObject s3://%s/%s: %v", wsBucket, aws.ToString(o.Key), err)
			}
			body, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatalf("reading s3://%s/%s: %v", wsBucket, aws.ToString(o.Key), err)
			}
			objects[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = string(body)
		}
	}
	return objects
}

// showObjects formats objects as sorted key=body pairs, for messages.
func showObjects(objects map[string]string) string {
	keys := slices.Sorted(maps.Keys(objects))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, objects[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// otherUser is the unprivileged uid and gid that the permission tests act
// as (nobody and nogroup on most systems).
const otherUser = 65534

// requireOtherUser skips the test unless this process can run commands as
// otherUser.
func requireOtherUser(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("acting as another user needs root")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("acting as another user needs setpriv (util-linux)")
	}
}

// asOtherUser runs a shell script as otherUser, with no supplementary
// groups and args as $1, $2..., and returns its combined output.
func asOtherUser(t *testing.T, script string, args ...string) (string, error) {
	t.Helper()
	id := strconv.Itoa(otherUser)
	return runTool(t, "setpriv", append([]string{"--reuid", id, "--regid", id, "--clear-groups", "sh", "-c", script, "sh"}, args...)...)
}

// openMountDir returns mountDir(t) with the directories above it, up to the
// temporary directory, opened to every user: another user then reaches the
// mount point, and only the mount itself can turn it away.
func openMountDir(t *testing.T) string {
	t.Helper()
	dir := mountDir(t)
	top, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(dir); strings.HasPrefix(d, top+string(filepath.Separator)); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := asOtherUser(t, `ls -a "$1"`, dir); err != nil {
		t.Fatalf("before mounting, uid %d cannot list %s: %v %s", otherUser, dir, err, out)
	}
	return dir
}

// TestOtherUsers checks that the kernel enforces the owner and modes the
// mount shows (default_permissions): without them, --allow-other would let
// every local user change and delete objects with the mount owner's
// credentials. It acts as a second user and checks the bucket through the
// SDK, so that a refusal that still reached S3 would show.
func TestOtherUsers(t *testing.T) {
	requireOtherUser(t)
	r := getSharedRig(t)
	id := strconv.Itoa(otherUser)
	// The changes the other user tries, each applied to the objects the
	// test starts with when it is allowed. $1 is the test's directory.
	changes := []struct {
		name, script string
		apply        func(objects map[string]string)
	}{
		{"create", `touch "$1/new.txt"`, func(o map[string]string) { o["new.txt"] = "" }},
		{"overwrite", `printf 'changed\n' > "$1/existing.txt"`, func(o map[string]string) { o["existing.txt"] = "changed\n" }},
		{"append", `printf 'more\n' >> "$1/appended.txt"`, func(o map[string]string) { o["appended.txt"] += "more\n" }},
		{"remove", `rm -f "$1/victim.txt"`, func(o map[string]string) { delete(o, "victim.txt") }},
		{"mkdir", `mkdir "$1/newdir"`, func(o map[string]string) { o["newdir/"] = "" }},
		{"rename", `mv "$1/moveme.txt" "$1/moved.txt"`, func(o map[string]string) {
			o["moved.txt"] = o["moveme.txt"]
			delete(o, "moveme.txt")
		}},
	}
	tests := []struct {
		name  string
		flags []string
		// sees is whether the other user may use the mount at all, and
		// writes whether the owner and modes shown let it change files.
		sees, writes bool
	}{
		{name: "without allow-other"},
		{name: "without allow-other, owned by the other user", flags: []string{"--uid", id, "--gid", id}},
		{name: "allow-other", flags: []string{"--allow-other"}, sees: true},
		{name: "allow-other, owned by the other user", flags: []string{"--allow-other", "--uid", id, "--gid", id}, sees: true, writes: true},
		{name: "allow-other, group-writable for the other user", flags: []string{"--allow-other", "--gid", id, "--file-mode", "0664", "--dir-mode", "0775"}, sees: true, writes: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := testPrefix(t, r, "others")
			objects := map[string]string{"existing.txt": "existing\n", "appended.txt": "appended\n", "victim.txt": "victim\n", "moveme.txt": "moveme\n"}
			putObjects(t, r, prefix, objects)
			dir := openMountDir(t)
			p := startForeground(t, dir, env(r.Env()...), append(append([]string{"--foreground"}, tt.flags...), dir)...)
			p.waitMounted(t, dir)
			work := filepath.Join(dir, wsBucket, prefix)

			if !tt.sees {
				// FUSE turns away every user but the one who mounted.
				if out, err := asOtherUser(t, `stat "$1"`, dir); err == nil || !strings.Contains(out, "Permission denied") {
					t.Errorf("stat %s as uid %d = %v %q, want Permission denied", dir, otherUser, err, out)
				}
			} else {
				// Every mode here lets anyone read.
				out, err := asOtherUser(t, `ls "$1" && cat "$1/existing.txt"`, work)
				if want := "appended.txt\nexisting.txt\nmoveme.txt\nvictim.txt\nexisting\n"; err != nil || out != want {
					t.Errorf("ls and cat as uid %d = %v %q, want %q", otherUser, err, out, want)
				}
				for _, c := range changes {
					out, err := asOtherUser(t, c.script, work)
					switch {
					case tt.writes && err != nil:
						t.Errorf("%s as uid %d, allowed by the owner and modes: %v %q, want success", c.name, otherUser, err, out)
					case !tt.writes && (err == nil || !strings.Contains(out, "Permission denied")):
						t.Errorf("%s as uid %d, not allowed by the owner and modes: %v %q, want Permission denied", c.name, otherUser, err, out)
					}
					if tt.writes {
						c.apply(objects)
					}
				}
				// Root, who mounted here, may change files whoever owns
				// them.
				mustRunTool(t, "touch", filepath.Join(work, "by-root.txt"))
				objects["by-root.txt"] = ""
			}
			if got := s3Snapshot(t, r, prefix); !maps.Equal(got, objects) {
				t.Errorf("objects under s3://%s/%s = %s, want %s", wsBucket, prefix, showObjects(got), showObjects(objects))
			}
			if code := p.signalAndWait(t, syscall.SIGTERM); code != 0 {
				t.Errorf("exit status after SIGTERM: got %d, want 0; output:\n%s", code, tail(p.stderr.String()))
			}
		})
	}
}
