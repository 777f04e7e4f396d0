package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3mount/s3mount/internal/rig"
)

// mountReadyTimeout bounds how long a mount may take to come up.
const mountReadyTimeout = 60 * time.Second

// mountStopTimeout bounds how long a mount may take to unmount and exit
// after SIGTERM before it is detached and killed.
const mountStopTimeout = 60 * time.Second

// mounter knows how to mount one system.
type mounter struct {
	system string
	// command returns the command that mounts at dir and stays in the
	// foreground until unmounted.
	command func(dir string) *exec.Cmd
	// base returns the directory of a mount at dir that shows
	// s3://bucket/prefix/.
	base func(dir string) string
	// desc describes how the system is mounted, for the report.
	desc string
}

// mount is one running mount.
type mount struct {
	system string
	dir    string // dir is the mountpoint.
	base   string // base shows s3://bucket/prefix/.
	cmd    *exec.Cmd
	log    string        // log is the file the process writes its output to.
	done   chan struct{} // done is closed when the process has exited.
	err    error         // err is the result of cmd.Wait, set before done is closed.
}

// path returns where rel, a key relative to the benchmark prefix, appears
// in the mount.
func (m *mount) path(rel string) string {
	return filepath.Join(m.base, filepath.FromSlash(rel))
}

// peakRSSKiB returns the peak resident memory of the mount's process.
func (m *mount) peakRSSKiB() int64 {
	return peakRSSKiB(m.cmd.Process.Pid)
}

// exited reports whether the process has exited.
func (m *mount) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// mountSet tracks every live mount so that all of them can be stopped at
// the end of the run, or on a signal, whatever happened.
type mountSet struct {
	mu   sync.Mutex      // mu guards live and n.
	live map[*mount]bool // live are the mounts started and not yet stopped.
	n    int             // n counts the mounts started, for unique mountpoints.
}

// next returns a fresh mountpoint name for system under root.
func (s *mountSet) next(root, system string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return filepath.Join(root, fmt.Sprintf("%s-%03d", system, s.n))
}

// start mounts mr at a fresh directory under root and waits until the
// mount answers.
func (s *mountSet) start(ctx context.Context, mr *mounter, root, logDir string) (*mount, error) {
	dir := s.next(root, mr.system)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, mr.system+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := mr.command(dir)
	fmt.Fprintf(logf, "\n==== %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = rig.ChildProcAttr(syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", mr.system, err)
	}
	m := &mount{system: mr.system, dir: dir, base: mr.base(dir), cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		m.err = cmd.Wait()
		close(m.done)
	}()
	s.mu.Lock()
	if s.live == nil {
		s.live = map[*mount]bool{}
	}
	s.live[m] = true
	s.mu.Unlock()
	if err := m.waitReady(ctx); err != nil {
		s.stop(m)
		return nil, fmt.Errorf("%s did not mount: %w (see %s)", mr.system, err, logPath)
	}
	return m, nil
}

// waitReady waits until dir is a mount point and base can be listed.
func (m *mount) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(mountReadyTimeout)
	for {
		if m.exited() {
			return fmt.Errorf("exited: %v", m.err)
		}
		if isMounted(m.dir) {
			if _, err := os.Stat(m.base); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", mountReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop unmounts m: SIGTERM, which each of the systems answers by
// unmounting and exiting; then, if that has not happened in time, a lazy
// unmount and SIGKILL. It removes the mountpoint.
func (s *mountSet) stop(m *mount) error {
	var errs []error
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(mountStopTimeout):
		errs = append(errs, fmt.Errorf("%s did not stop %v after SIGTERM; detached and killed", m.system, mountStopTimeout))
		_ = exec.Command("umount", "-l", m.dir).Run()
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	if isMounted(m.dir) {
		if out, err := exec.Command("umount", "-l", m.dir).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("umount -l %s: %v: %s", m.dir, err, out))
		}
	}
	if err := os.Remove(m.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	s.mu.Lock()
	delete(s.live, m)
	s.mu.Unlock()
	return errors.Join(errs...)
}

// stopAll stops every live mount, in parallel.
func (s *mountSet) stopAll() {
	s.mu.Lock()
	var ms []*mount
	for m := range s.live {
		ms = append(ms, m)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			if err := s.stop(m); err != nil {
				slog.Warn("stopping a mount", "system", m.system, "dir", m.dir, "err", err)
			}
		})
	}
	wg.Wait()
}

// isMounted reports whether dir is a mount point, by /proc/self/mountinfo.
func isMounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	// mountinfo escapes space, tab, newline and backslash as octal.
	esc := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(dir)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == esc {
			return true
		}
	}
	return false
}

// environWithout returns os.Environ without the variables whose names start
// with any of prefixes (compared case-insensitively).
func environWithout(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if len(kv) >= len(p) && strings.EqualFold(kv[:len(p)], p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
