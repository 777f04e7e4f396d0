package main

// Tests of stopping a mount while files open for writing hold content that
// cannot reach S3: that content must be kept on this machine, in a place
// the log names, and the exit status must say so.

import (
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3mount/s3mount/internal/rig"
)

// heldFile is a file the test keeps open for writing on the mount while
// the mount stops.
type heldFile struct {
	name string // relative to the test's prefix
	want string // what the file holds, all of which must be kept
}

// stopTest is a foreground mount of the shared rig with its own staging
// directory, and files held open on it.
type stopTest struct {
	r       *rig.Rig
	prefix  string
	staging string // --staging-dir
	dir     string
	p       *fgProc
	before  map[string]string // the objects under prefix before the stop
	files   []heldFile
	open    []*os.File
}

// startStopTest mounts the shared rig with a staging directory of its own
// and opens two files for writing, which it keeps open: a new file, whose
// content streams from memory, and an existing object appended to, whose
// content is staged on disk. Neither has reached S3 when it returns.
func startStopTest(t *testing.T, name string) *stopTest {
	t.Helper()
	r := getSharedRig(t)
	s := &stopTest{r: r, prefix: testPrefix(t, r, name), staging: t.TempDir()}
	s.before = map[string]string{"appended.txt": "the object before the test\n"}
	putObjects(t, r, s.prefix, s.before)
	s.dir = mountDir(t)
	// Registered before startForeground, so that the files are closed
	// after the process is gone: closing a file on a mount whose server
	// is stuck would block.
	t.Cleanup(func() { s.closeFiles() })
	s.p = startForeground(t, s.dir, env(r.Env()...), "--foreground", "--staging-dir", s.staging, s.dir)
	s.p.waitMounted(t, s.dir)

	for _, f := range []struct {
		name  string
		flags int
		write string
	}{
		{"new.txt", os.O_WRONLY | os.O_CREATE | os.O_TRUNC, "written to a new file, never uploaded\n"},
		{"appended.txt", os.O_WRONLY | os.O_APPEND, "appended, never uploaded\n"},
	} {
		path := filepath.Join(s.dir, wsBucket, s.prefix, f.name)
		file, err := os.OpenFile(path, f.flags, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		s.open = append(s.open, file)
		if _, err := file.WriteString(f.write); err != nil {
			t.Fatalf("writing %s: %v", path, err)
		}
		s.files = append(s.files, heldFile{name: f.name, want: s.before[f.name] + f.write})
	}
	if got := s3Snapshot(t, r, s.prefix); !maps.Equal(got, s.before) {
		t.Fatalf("before the stop, objects under s3://%s/%s = %s, want %s", wsBucket, s.prefix, showObjects(got), showObjects(s.before))
	}
	return s
}

// closeFiles closes the held files. Once the mount is gone they only
// return errors, which do not matter.
func (s *stopTest) closeFiles() {
	for _, f := range s.open {
		f.Close()
	}
	s.open = nil
}

// unsavedDir is where the content that never reached S3 must be kept.
func (s *stopTest) unsavedDir() string { return filepath.Join(s.staging, "unsaved") }

// uploadFault returns a proxy fault for the uploads of the test's files,
// PUT and POST under its prefix, which calls f for each; other requests
// pass. The request body is read first, so that the proxy notices when the
// client goes away.
func (s *stopTest) uploadFault(f func(w http.ResponseWriter, req *http.Request)) rig.FaultFunc {
	path := "/" + wsBucket + "/" + s.prefix
	return func(w http.ResponseWriter, req *http.Request) bool {
		if (req.Method != http.MethodPut && req.Method != http.MethodPost) || !strings.HasPrefix(req.URL.Path, path) {
			return false
		}
		io.Copy(io.Discard, req.Body)
		f(w, req)
		return true
	}
}

// checkKept checks, once the process has exited, that the log names the
// unsaved directory, that each held file's whole content is in a file
// there whose path the log gives with the file's s3:// URI, and that S3
// holds none of it.
func (s *stopTest) checkKept(t *testing.T) {
	t.Helper()
	log := s.p.stderr.String()
	if !strings.Contains(log, s.unsavedDir()) {
		t.Errorf("the log does not name the directory %s where unsaved files are kept", s.unsavedDir())
	}
	kept := map[string]string{} // content → path
	filepath.WalkDir(s.unsavedDir(), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if data, err := os.ReadFile(path); err == nil {
				kept[string(data)] = path
			}
		}
		return nil
	})
	for _, f := range s.files {
		uri := "s3://" + wsBucket + "/" + s.prefix + f.name
		path, ok := kept[f.want]
		if !ok {
			t.Errorf("no file in %s holds what was written to %s (%q); kept: %q", s.unsavedDir(), uri, f.want, kept)
			continue
		}
		if !strings.Contains(log, uri) || !strings.Contains(log, path) {
			t.Errorf("the log does not say that %s is kept at %s", uri, path)
		}
	}
	if got := s3Snapshot(t, s.r, s.prefix); !maps.Equal(got, s.before) {
		t.Errorf("after the stop, objects under s3://%s/%s = %s, want them unchanged: %s", wsBucket, s.prefix, showObjects(got), showObjects(s.before))
	}
}

// waitExit waits up to timeout for the process to exit and returns its
// exit status.
func (s *stopTest) waitExit(t *testing.T, timeout time.Duration, after string) int {
	t.Helper()
	select {
	case <-s.p.done:
	case <-time.After(timeout):
		t.Fatalf("s3mount did not exit within %v of %s; output:\n%s", timeout, after, tail(s.p.stderr.String()))
	}
	return s.p.cmd.ProcessState.ExitCode()
}

// TestStopKeepsUnsavedData stops a mount while S3 refuses every upload of
// two open files: their content must survive the stop in the unsaved
// directory the log names, the exit status must be non-zero, and the next
// mount with the same staging directory must report what it found.
func TestStopKeepsUnsavedData(t *testing.T) {
	s := startStopTest(t, "unsaved")
	var faults atomic.Int64
	s.r.Proxy.SetFault(s.uploadFault(func(w http.ResponseWriter, _ *http.Request) {
		faults.Add(1)
		rig.WriteS3Error(w, http.StatusInternalServerError, "InternalError", "upload refused by the test")
	}))
	t.Cleanup(func() { s.r.Proxy.SetFault(nil) })

	if err := s.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The SDK retries each 500 with backoff, up to about 15 s an upload.
	code := s.waitExit(t, 2*time.Minute, "SIGTERM")
	s.r.Proxy.SetFault(nil)
	s.closeFiles()
	if code <= 0 {
		t.Errorf("exit status after SIGTERM with every upload failing = %d, want an exit with a non-zero status; output:\n%s", code, tail(s.p.stderr.String()))
	}
	if faults.Load() == 0 {
		t.Errorf("no upload reached the fault")
	}
	s.checkKept(t)
	if t.Failed() {
		return
	}

	// The next mount with the same staging directory reports what it
	// found, and leaves it in place.
	dir := mountDir(t)
	p := startForeground(t, dir, env(s.r.Env()...), "--foreground", "--staging-dir", s.staging, dir)
	p.waitMounted(t, dir)
	if line := logLine(p.stderr.String(), "earlier mount"); line == "" {
		t.Errorf("the next mount's log does not report the files found from an earlier mount; output:\n%s", tail(p.stderr.String()))
	} else if rest := strings.ReplaceAll(line, s.unsavedDir(), ""); rest == line || !regexp.MustCompile(`\b2\b`).MatchString(rest) {
		t.Errorf("the next mount's log says %q, want it to name %s and the 2 files there", line, s.unsavedDir())
	}
	if code := p.signalAndWait(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit status of the next mount, which had nothing to save = %d, want 0; output:\n%s", code, tail(p.stderr.String()))
	}
	s.checkKept(t)
}

// TestSecondSignalEndsFlush stops a mount while the uploads of two open
// files hang: a second SIGTERM must end the flush at once, keep the content
// and exit with a non-zero status.
func TestSecondSignalEndsFlush(t *testing.T) {
	s := startStopTest(t, "second-signal")
	stalled := make(chan struct{}, 1)
	testDone := make(chan struct{})
	s.r.Proxy.SetFault(s.uploadFault(func(w http.ResponseWriter, req *http.Request) {
		select {
		case stalled <- struct{}{}:
		default:
		}
		select {
		case <-req.Context().Done(): // s3mount gave up the upload
		case <-testDone:
			// Refuse, so that nothing is stored behind the test's back.
			rig.WriteS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the test is over")
		}
	}))
	// Registered last, so that it runs first: the stalled uploads end
	// before the cleanups stop the process and close the files.
	t.Cleanup(func() {
		close(testDone)
		s.r.Proxy.SetFault(nil)
	})

	if err := s.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-s.p.done:
		t.Fatalf("s3mount exited after one SIGTERM while uploads hang (%v); output:\n%s", s.p.err, tail(s.p.stderr.String()))
	case <-time.After(time.Minute):
		t.Fatalf("no upload started within a minute of SIGTERM; output:\n%s", tail(s.p.stderr.String()))
	}
	if err := s.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// A few seconds, with room for a loaded machine.
	code := s.waitExit(t, 10*time.Second, "the second SIGTERM")
	t.Logf("s3mount exited %v after the second SIGTERM", time.Since(start).Round(time.Millisecond))
	s.closeFiles()
	if code <= 0 {
		t.Errorf("exit status after a second SIGTERM cut the flush short = %d, want an exit with a non-zero status; output:\n%s", code, tail(s.p.stderr.String()))
	}
	s.checkKept(t)
}

// logLine returns the first line of log that contains s, or "".
func logLine(log, s string) string {
	for line := range strings.Lines(log) {
		if strings.Contains(line, s) {
			return strings.TrimSuffix(line, "\n")
		}
	}
	return ""
}
