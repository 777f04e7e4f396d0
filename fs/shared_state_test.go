package fs_test

// The tests in this file use a file the way several programs do at once: a
// job appends to its log while others list the directory, cat it and tail
// it; two jobs append to one file; a second descriptor reads what the
// first has written; files are unlinked while open; a file being written is
// looked up and listed; a name is reused right after a rename; git works in
// a repository on the mount. Each script also runs on a local disk, the
// oracle, and the results are compared, and the bucket is checked through
// the SDK.
//
// Every command runs under a deadline, in its own process group that is
// killed when the deadline passes, so that a mount that hangs fails the test
// rather than hanging it.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3mount/s3mount/internal/rig"
)

// newSharedTest is newWriteTest with the given metadata TTL. It also creates
// the test's directory in the workspace.
func newSharedTest(t *testing.T, ttl time.Duration) *writeTest {
	t.Helper()
	w := newWriteTestWith(t, func(r *rig.Rig) *testMount { return mountRig(t, r, ttl) })
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// command returns a command that runs under ctx in a process group of its
// own, which is killed as a whole when ctx ends: background children of a
// script (a tail -f, a subshell) die with it. It never sets cmd.Dir inside
// the mount (see sh): scripts change directory themselves.
func command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	if dir := pythonDir(); name == "python3" && dir != "" {
		name = filepath.Join(dir, name)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), env...)
	if dir := pythonDir(); dir != "" {
		cmd.Env = append(cmd.Env, "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return cmd
}

// realPython is the directory of the Python interpreter that python3 runs.
var realPython struct {
	once sync.Once
	dir  string
}

// pythonDir returns the directory of the interpreter that python3 runs, if
// python3 in PATH is not the interpreter itself, or "". A python3 found
// first in PATH may be a wrapper script that picks a version and takes
// seconds to start; the tests start Python hundreds of times, so they run
// the interpreter itself and put its directory first in their commands'
// PATH.
func pythonDir() string {
	realPython.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "python3", "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			return
		}
		dir := filepath.Dir(strings.TrimSpace(string(out)))
		found, _ := exec.LookPath("python3")
		if _, err := os.Stat(filepath.Join(dir, "python3")); err == nil && dir != filepath.Dir(found) {
			realPython.dir = dir
		}
	})
	return realPython.dir
}

// runCmd runs name with args under timeout and returns its combined output.
func runCmd(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := command(ctx, env, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%v: still running after %v, killed", err, timeout)
	}
	return string(out), err
}

// shScript is the start of every script shIn runs: it changes into the
// directory given as the first argument and drops it, so that the script's
// own arguments are $1, $2...
const shScript = "cd \"$1\" || exit 125\nshift\n"

// shIn runs script with sh in dir, under timeout, with extra environment
// variables, and returns its combined output.
func shIn(timeout time.Duration, env []string, dir, script string, args ...string) (string, error) {
	return runCmd(timeout, env, "sh", append([]string{"-c", shScript + script, "sh", dir}, args...)...)
}

// mustShIn is shIn that fails the test if the script fails.
func mustShIn(t *testing.T, timeout time.Duration, env []string, dir, script string, args ...string) string {
	t.Helper()
	out, err := shIn(timeout, env, dir, script, args...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", dir, script, err, out)
	}
	return out
}

// python runs a Python program under timeout and returns its combined
// output. Its arguments are sys.argv[1:].
func python(timeout time.Duration, program string, args ...string) (string, error) {
	return runCmd(timeout, []string{"PYTHONDONTWRITEBYTECODE=1"}, "python3", append([]string{"-c", program}, args...)...)
}

// background is a command running while the test does something else.
type background struct {
	cmd    *exec.Cmd
	out    *rig.SyncBuffer
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// startBackground starts a command under timeout. It is killed, and waited
// for, when the test ends. If stdout is not nil, the command's standard
// output goes there and only its standard error to the buffer.
func startBackground(t *testing.T, timeout time.Duration, env []string, stdout *os.File, name string, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	b := &background{out: &rig.SyncBuffer{}, cancel: cancel, done: make(chan struct{})}
	b.cmd = command(ctx, env, name, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if stdout != nil {
		b.cmd.Stdout = stdout
	}
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		b.err = b.cmd.Wait()
		if ctx.Err() == context.DeadlineExceeded {
			b.err = fmt.Errorf("%v: still running after %v, killed", b.err, timeout)
		}
		close(b.done)
	}()
	t.Cleanup(b.stop)
	return b
}

// running reports whether the command has not exited yet.
func (b *background) running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// wait waits for the command to exit and returns its error.
func (b *background) wait() error {
	<-b.done
	return b.err
}

// stop kills the command's process group and waits for it.
func (b *background) stop() {
	b.cancel()
	<-b.done
}

// gitEnv is the environment of every git command: no user or system
// configuration, a fixed identity, and fixed dates, so that the same
// commands make the same commits on a local disk and on the mount.
func gitEnv(t *testing.T) []string {
	return []string{
		"HOME=" + t.TempDir(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Jane Doe", "GIT_AUTHOR_EMAIL=jdoe@example.org",
		"GIT_COMMITTER_NAME=Jane Doe", "GIT_COMMITTER_EMAIL=jdoe@example.org",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
		// No gc in the background, behind the test's back.
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=gc.autoDetach", "GIT_CONFIG_VALUE_0=false",
		"GIT_CONFIG_KEY_1=init.defaultBranch", "GIT_CONFIG_VALUE_1=main",
	}
}

// textDiff explains how got differs from want: sizes, NUL bytes, the first
// difference, and the lines missing from got or not in want (fragments).
func textDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return "equal"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d bytes, want %d", len(got), len(want))
	if n := bytes.Count(got, []byte{0}); n > 0 {
		fmt.Fprintf(&b, "; %d NUL bytes", n)
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	snippet := func(p []byte) string { return quoteNUL(string(p[i:min(len(p), i+48)])) }
	fmt.Fprintf(&b, "; first difference at byte %d: got %s, want %s", i, snippet(got), snippet(want))
	count := func(p []byte) map[string]int {
		m := map[string]int{}
		for _, l := range strings.SplitAfter(string(p), "\n") {
			if l != "" {
				m[l]++
			}
		}
		return m
	}
	gotLines, wantLines := count(got), count(want)
	list := func(a, b map[string]int) (n int, some []string) {
		for l, k := range a {
			if d := k - b[l]; d > 0 {
				n += d
				if len(some) < 5 {
					some = append(some, quoteNUL(l))
				}
			}
		}
		slices.Sort(some)
		return n, some
	}
	if n, some := list(wantLines, gotLines); n > 0 {
		fmt.Fprintf(&b, "; %d lines missing, such as %s", n, strings.Join(some, ", "))
	}
	if n, some := list(gotLines, wantLines); n > 0 {
		fmt.Fprintf(&b, "; %d lines not written (fragments or duplicates), such as %s", n, strings.Join(some, ", "))
	}
	return b.String()
}

// quoteNUL quotes s, writing each run of NUL bytes as <N NULs> so that a
// line after a hole stays readable.
func quoteNUL(s string) string {
	var b strings.Builder
	for s != "" {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			b.WriteString(strconv.Quote(s))
			break
		}
		if i > 0 {
			b.WriteString(strconv.Quote(s[:i]))
		}
		n := len(s[i:]) - len(strings.TrimLeft(s[i:], "\x00"))
		fmt.Fprintf(&b, "<%d NULs>", n)
		s = s[i+n:]
	}
	if b.Len() == 0 {
		return `""`
	}
	return b.String()
}

// objectKeys lists the keys under prefix that are objects, not directory
// markers.
func objectKeys(t *testing.T, w *writeTest, prefix string) []string {
	t.Helper()
	var keys []string
	for _, k := range w.keys(t, wsBucket, prefix) {
		if k != "" && !strings.HasSuffix(k, "/") {
			keys = append(keys, k)
		}
	}
	return keys
}

// downloadPrefix copies every object under prefix, through the SDK, into
// dst, markers as directories, so that local tools can check the tree as
// the bucket stores it.
func downloadPrefix(t *testing.T, w *writeTest, prefix, dst string) {
	t.Helper()
	for _, k := range w.keys(t, wsBucket, prefix) {
		path := filepath.Join(dst, filepath.FromSlash(k))
		if k == "" || strings.HasSuffix(k, "/") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, ok := w.object(t, wsBucket, prefix+k)
		if !ok {
			continue // removed since the listing
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// logText is one line of the job logs the append tests write, a format for
// printf(1), Python's % and fmt alike.
const logText = "line %02d of the job log, which grows one line at a time"

// logLines is the number of lines each job log gets.
const logLines = 50

// expectedLog is the complete log.
func expectedLog() []byte {
	var b bytes.Buffer
	for i := 1; i <= logLines; i++ {
		fmt.Fprintf(&b, logText+"\n", i)
	}
	return b.Bytes()
}

// appendWriters write a job's log one line at a time, with short pauses:
// a shell loop of >>, and a Python job holding the file open with 'a' and
// flushing every line.
var appendWriters = []struct {
	name string
	// args are the command that appends to file, an absolute path.
	args func(file string) []string
}{
	{"shell >>", func(file string) []string {
		return []string{"sh", "-c", `i=1
while [ $i -le ` + strconv.Itoa(logLines) + ` ]; do
	printf '` + logText + `\n' "$i" >> "$1" || exit 1
	sleep 0.01
	i=$((i+1))
done`, "sh", file}
	}},
	{"python append", func(file string) []string {
		return []string{"python3", "-c", `import sys, time
with open(sys.argv[1], "a") as f:
    for i in range(1, ` + strconv.Itoa(logLines+1) + `):
        f.write("` + logText + `\n" % i)
        f.flush()
        time.sleep(0.01)
`, file}
	}},
}

// appendWhileLooking runs one append writer on dir/file while observer looks:
// "ls -l" lists dir in a loop, "cat" reads the file in a loop and checks that
// every read is a prefix of the complete log, "tail -f" follows the file and
// must print every line. It returns what went wrong.
func appendWhileLooking(t *testing.T, dir, file string, writer []string, observer string) (problems []string) {
	path := filepath.Join(dir, file)
	addf := func(format string, args ...any) {
		if p := fmt.Sprintf(format, args...); len(problems) < 6 && !slices.Contains(problems, p) {
			problems = append(problems, p)
		}
	}
	want := expectedLog()
	job := startBackground(t, 30*time.Second, nil, nil, writer[0], writer[1:]...)
	// Look only once the file exists: before, cat and tail fail as they
	// should.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if !job.running() || time.Now().After(deadline) {
			addf("%s never appeared while the job ran (job: %v %s)", path, job.err, job.out.String())
			job.stop()
			return problems
		}
		time.Sleep(5 * time.Millisecond)
	}
	var tail *background
	var tailOut string
	if observer == "tail -f" {
		tailOut = filepath.Join(t.TempDir(), "tail.out")
		f, err := os.Create(tailOut)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tail = startBackground(t, 60*time.Second, nil, f, "tail", "-n", "+1", "-f", path)
	}
	looks := 0
	for job.running() {
		looks++
		switch observer {
		case "ls -l":
			if out, err := runCmd(10*time.Second, nil, "ls", "-l", dir); err != nil {
				addf("ls -l while appending: %v %q", err, out)
			}
		case "cat":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var stderr bytes.Buffer
			cmd := command(ctx, nil, "cat", path)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			cancel()
			switch {
			case err != nil:
				addf("cat while appending: %v %q", err, stderr.String())
			case !bytes.HasPrefix(want, out):
				addf("cat while appending read something that is not a prefix of the log: %s", textDiff(out, want[:min(len(want), len(out))]))
			}
		case "tail -f":
			// tail looks by itself; the test only waits for the job.
			select {
			case <-job.done:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if err := job.wait(); err != nil {
		addf("the job failed: %v\n%s", err, job.out.String())
	}
	if tail != nil {
		// tail polls a FUSE file, about once a second: wait until it
		// prints the last line, or prints nothing new for five seconds, or
		// fifteen seconds pass; then stop it.
		deadline := time.Now().Add(15 * time.Second)
		var got []byte
		changed := time.Now()
		for {
			now, _ := os.ReadFile(tailOut)
			if !bytes.Equal(now, got) {
				got, changed = now, time.Now()
			}
			if bytes.Equal(got, want) || !tail.running() || time.Since(changed) > 5*time.Second || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		running := tail.running()
		tail.stop()
		if !running {
			addf("tail -f exited by itself: %v %s", tail.err, tail.out.String())
		}
		if !bytes.Equal(got, want) {
			addf("tail -n +1 -f printed %s", textDiff(got, want))
		}
	}
	t.Logf("%s: %d looks with %s while the job ran", dir, looks, observer)
	return problems
}

// TestSharedAppendWhileListing appends to a job's log, with a shell loop of
// >> and with a Python job holding it open, while another process runs
// ls -l in the directory in a loop. Every ls must work, and in the end the
// object holds every line, in order, with no fragment and no NUL byte: the
// same bytes as the same job leaves on a local disk.
func TestSharedAppendWhileListing(t *testing.T) { appendWhileLookingTest(t, "ls -l") }

// TestSharedAppendWhileReading is TestSharedAppendWhileListing with cat of
// the file in a loop: every cat must work and read a prefix of the log.
func TestSharedAppendWhileReading(t *testing.T) { appendWhileLookingTest(t, "cat") }

// TestSharedAppendWhileTailing is TestSharedAppendWhileListing with
// tail -n +1 -f following the file: it must print every line.
func TestSharedAppendWhileTailing(t *testing.T) { appendWhileLookingTest(t, "tail -f") }

// rereadProgram appends lines to a log from one process that holds it open
// with 'a' and writes each line with a write(2) of its own, while reader
// processes open, read and close the log as fast as they can. Every read
// must be a prefix of the complete log. It prints what each reader saw,
// and exits 1 if a read was not a prefix.
const rereadProgram = `import os, subprocess, sys, time
path, lines, readers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = "line %d of the job log, which grows one line at a time\n"
want = "".join(text % i for i in range(1, lines + 1)).encode()
if sys.argv[4:] == ["read"]:
    looks, bad = 0, ""
    while not os.path.exists(path + ".done"):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        looks += 1
        if not bad and not want.startswith(data):
            at = next((i for i in range(min(len(data), len(want))) if data[i] != want[i]), len(want))
            bad = "; read %d bytes, and byte %d differs: %r" % (len(data), at, data[at:at + 16])
    print("%d looks%s" % (looks, bad))
    sys.exit(1 if bad else 0)
procs = [subprocess.Popen([sys.executable, sys.argv[0], path, str(lines), "0", "read"]) for _ in range(readers)]
with open(path, "a") as f:
    for i in range(1, lines + 1):
        f.write(text % i)
        f.flush()
        time.sleep(0.001)
open(path + ".done", "w").close()
sys.exit(max(p.wait() for p in procs))
`

// TestSharedAppendWhileReopening appends to a log while other processes
// open, read and close it in a loop: every read must be a prefix of the
// log, and the object must hold the whole log. A reader's open used to drop
// the kernel's cached pages while an append was on its way to the mount;
// the reader then read the page back without the append, and when the
// append landed, the file's new end showed NUL bytes.
func TestSharedAppendWhileReopening(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	program := filepath.Join(t.TempDir(), "reread.py")
	if err := os.WriteFile(program, []byte(rereadProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	const lines, readers = 600, 2
	local := filepath.Join(t.TempDir(), "job.log")
	if out, err := runCmd(2*time.Minute, nil, "python3", program, local, strconv.Itoa(lines), strconv.Itoa(readers)); err != nil {
		t.Fatalf("on a local disk: %v\n%s", err, out)
	}
	oracle, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(2*time.Minute, nil, "python3", program, filepath.Join(w.dir, "job.log"), strconv.Itoa(lines), strconv.Itoa(readers))
	t.Logf("readers on the mount: %s", strings.Join(strings.Fields(out), " "))
	if err != nil {
		t.Errorf("on the mount: %v\n%s", err, out)
	}
	if got, ok := w.object(t, wsBucket, w.prefix+"job.log"); !ok || !bytes.Equal(got, oracle) {
		t.Errorf("the object differs from the same job's log on a local disk: %s", textDiff(got, oracle))
	}
}

func appendWhileLookingTest(t *testing.T, observer string) {
	w := newSharedTest(t, time.Minute)
	local := t.TempDir()
	want := expectedLog()
	for _, writer := range appendWriters {
		t.Run(writer.name, func(t *testing.T) {
			sub := strings.NewReplacer(" ", "-", ">", "gt").Replace(writer.name)
			for _, d := range []string{filepath.Join(local, sub), filepath.Join(w.dir, sub)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// The oracle first: the same job on a local disk.
			if problems := appendWhileLooking(t, filepath.Join(local, sub), "job.log", writer.args(filepath.Join(local, sub, "job.log")), observer); len(problems) > 0 {
				t.Fatalf("on a local disk:\n%s", strings.Join(problems, "\n"))
			}
			oracle, err := os.ReadFile(filepath.Join(local, sub, "job.log"))
			if err != nil || !bytes.Equal(oracle, want) {
				t.Fatalf("on a local disk the log is %s (%v)", textDiff(oracle, want), err)
			}

			began := time.Now()
			problems := appendWhileLooking(t, filepath.Join(w.dir, sub), "job.log", writer.args(filepath.Join(w.dir, sub, "job.log")), observer)
			t.Logf("on the mount in %v", time.Since(began).Round(time.Millisecond))
			for _, p := range problems {
				t.Errorf("on the mount: %s", p)
			}
			key := w.prefix + sub + "/job.log"
			got, ok := w.object(t, wsBucket, key)
			switch {
			case !ok:
				t.Errorf("s3://%s/%s does not exist after the job", wsBucket, key)
			case !bytes.Equal(got, oracle):
				t.Errorf("s3://%s/%s differs from the same job's log on a local disk: %s", wsBucket, key, textDiff(got, oracle))
			}
		})
	}
}

// jobLines checks that text holds exactly n lines of each job, each line
// intact and each job's lines in order. re parses a line; its two groups
// are the job and the line number.
func jobLines(text []byte, re *regexp.Regexp, jobs []string, n int) []string {
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	if k := bytes.Count(text, []byte{0}); k > 0 {
		add("%d NUL bytes", k)
	}
	next := map[string]int{}
	for _, j := range jobs {
		next[j] = 1
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			add("line %d is %s, not a whole line of either job", i+1, quoteNUL(line))
			continue
		}
		k, _ := strconv.Atoi(m[2])
		if k != next[m[1]] {
			add("line %d is %q, want job %s's line %d next", i+1, line, m[1], next[m[1]])
		}
		next[m[1]] = k + 1
	}
	for _, j := range jobs {
		if next[j] != n+1 {
			add("job %s's last line is %d, want %d", j, next[j]-1, n)
		}
	}
	if len(text) > 0 && text[len(text)-1] != '\n' {
		add("the file does not end with a newline")
	}
	return problems
}

// TestSharedTwoAppenders has two jobs append to one file at the same time:
// two shell loops of >>, and two Python jobs each holding the file open with
// 'a'. O_APPEND writes never overwrite each other: every line of both jobs
// must be in the object, intact, and every append must succeed.
func TestSharedTwoAppenders(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	local := t.TempDir()

	t.Run("shell loops", func(t *testing.T) {
		const script = `(for i in $(seq 50); do echo "A $i" >> "$1" || echo "append A $i failed"; done) &
(for i in $(seq 50); do echo "B $i" >> "$1" || echo "append B $i failed"; done) &
wait`
		re := regexp.MustCompile(`^([AB]) (\d+)$`)
		for round := 1; round <= 2; round++ {
			name := fmt.Sprintf("loops-%d.txt", round)
			for _, dir := range []string{local, w.dir} {
				out, err := shIn(30*time.Second, nil, dir, script, name)
				if err != nil || out != "" {
					t.Errorf("round %d in %s: %v; %d appends failed, want none:\n%s", round, dir, err, strings.Count(out, "failed"), summarize(out))
				}
			}
			oracle, err := os.ReadFile(filepath.Join(local, name))
			if err != nil {
				t.Fatal(err)
			}
			if problems := jobLines(oracle, re, []string{"A", "B"}, 50); len(problems) > 0 {
				t.Fatalf("round %d on a local disk:\n%s", round, strings.Join(problems, "\n"))
			}
			got, ok := w.object(t, wsBucket, w.prefix+name)
			if !ok {
				t.Errorf("round %d: s3://%s/%s%s does not exist", round, wsBucket, w.prefix, name)
				continue
			}
			if problems := jobLines(got, re, []string{"A", "B"}, 50); len(problems) > 0 {
				t.Errorf("round %d: s3://%s/%s%s (%d bytes, %d lines, want %d):\n%s", round, wsBucket, w.prefix, name,
					len(got), bytes.Count(got, []byte("\n")), 100, strings.Join(problems, "\n"))
			}
		}
	})

	t.Run("python jobs", func(t *testing.T) {
		// Each job opens the file, waits until the other has it open too,
		// then writes its lines, flushing each.
		const program = `import os, sys, time
path, name, ready = sys.argv[1:4]
with open(path, "a") as f:
    open(os.path.join(ready, name), "w").close()
    deadline = time.time() + 20
    while len(os.listdir(ready)) < 2:
        if time.time() > deadline:
            sys.exit("the other job never opened the file")
        time.sleep(0.002)
    for i in range(1, 201):
        f.write("job %s line %03d\n" % (name, i))
        f.flush()
        if i % 20 == 0:
            time.sleep(0.005)
`
		re := regexp.MustCompile(`^job ([AB]) line (\d+)$`)
		for round := 1; round <= 2; round++ {
			name := fmt.Sprintf("jobs-%d.log", round)
			for _, dir := range []string{local, w.dir} {
				ready := t.TempDir()
				var jobs []*background
				for _, job := range []string{"A", "B"} {
					jobs = append(jobs, startBackground(t, 30*time.Second, nil, nil, "python3", "-c", program, filepath.Join(dir, name), job, ready))
				}
				for i, j := range jobs {
					if err := j.wait(); err != nil {
						t.Errorf("round %d in %s: job %c: %v\n%s", round, dir, 'A'+i, err, j.out.String())
					}
				}
			}
			oracle, err := os.ReadFile(filepath.Join(local, name))
			if err != nil {
				t.Fatal(err)
			}
			if problems := jobLines(oracle, re, []string{"A", "B"}, 200); len(problems) > 0 {
				t.Fatalf("round %d on a local disk:\n%s", round, strings.Join(problems, "\n"))
			}
			got, ok := w.object(t, wsBucket, w.prefix+name)
			if !ok {
				t.Errorf("round %d: s3://%s/%s%s does not exist", round, wsBucket, w.prefix, name)
				continue
			}
			if problems := jobLines(got, re, []string{"A", "B"}, 200); len(problems) > 0 {
				t.Errorf("round %d: s3://%s/%s%s (%d bytes, %d lines, want %d):\n%s", round, wsBucket, w.prefix, name,
					len(got), bytes.Count(got, []byte("\n")), 400, strings.Join(problems, "\n"))
			}
		}
	})
}

// secondReaderProgram writes a file through one descriptor and, before
// closing it, reads it through another: fstat, stat and pread must show
// what was written. Right after the writer closes, dd reads everything. It
// prints what went wrong, one problem a line. Its arguments are the file,
// a local file with the content to write, the mode ("new", "truncate" or
// "in place"), and a local file with the content before, or "".
const secondReaderProgram = `import os, subprocess, sys
path, src, mode, before = sys.argv[1:5]
data = open(src, "rb").read()
problems = []
old = open(before, "rb").read() if before else None
def diff(got, want):
    if got == old:
        return "%d bytes, the content before the write" % len(got)
    i = 0
    while i < min(len(got), len(want)) and got[i] == want[i]:
        i += 1
    return "%d bytes, want %d, first difference at byte %d" % (len(got), len(want), i)
flags = os.O_WRONLY | os.O_CREAT
if mode != "in place":
    flags |= os.O_TRUNC
w = os.open(path, flags, 0o644)
off = 0
while off < len(data):
    off += os.write(w, data[off:off + 4096])
r = os.open(path, os.O_RDONLY)
size = os.fstat(r).st_size
if size != len(data):
    problems.append("fstat of a second descriptor: size %d, want %d" % (size, len(data)))
size = os.stat(path).st_size
if size != len(data):
    problems.append("stat while the writer holds it open: size %d, want %d" % (size, len(data)))
got = b""
while len(got) <= len(data):
    chunk = os.pread(r, 65536, len(got))
    if not chunk:
        break
    got += chunk
if got != data:
    problems.append("pread through a second descriptor: " + diff(got, data))
os.close(r)
os.close(w)
dd = subprocess.run(["dd", "if=" + path, "bs=65536", "status=none"], capture_output=True, timeout=30)
if dd.returncode != 0:
    problems.append("dd right after close failed: %r" % dd.stderr)
elif dd.stdout != data:
    problems.append("dd right after close: " + diff(dd.stdout, data))
print("\n".join(problems), end="")
`

// TestSharedSecondDescriptorReads writes 100,000 bytes through one
// descriptor and, before closing it, opens the file again: the second
// descriptor must see the size and read the bytes. dd right after close
// reads everything, and the bucket holds it. The writer makes a new file,
// truncates an existing one, or overwrites one in place.
func TestSharedSecondDescriptorReads(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	local := t.TempDir()
	src, before := filepath.Join(t.TempDir(), "src.bin"), filepath.Join(t.TempDir(), "before.bin")
	for _, mode := range []string{"new", "truncate", "in place"} {
		t.Run(mode, func(t *testing.T) {
			for round := 1; round <= 4; round++ {
				data := randomBytes(100000, byte(round))
				if err := os.WriteFile(src, data, 0o644); err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("%s-%d.bin", strings.ReplaceAll(mode, " ", "-"), round)
				beforeArg := ""
				if mode != "new" {
					old := randomBytes(100000, byte(100+round))
					for _, p := range []string{before, filepath.Join(local, name)} {
						if err := os.WriteFile(p, old, 0o644); err != nil {
							t.Fatal(err)
						}
					}
					putObject(t, w.r, wsBucket, w.prefix+name, old)
					beforeArg = before
				}
				if out, err := python(30*time.Second, secondReaderProgram, filepath.Join(local, name), src, mode, beforeArg); err != nil || out != "" {
					t.Fatalf("round %d on a local disk: %v\n%s", round, err, out)
				}
				if out, err := python(30*time.Second, secondReaderProgram, filepath.Join(w.dir, name), src, mode, beforeArg); err != nil || out != "" {
					t.Errorf("round %d on the mount: %v\n%s", round, err, out)
				}
				if got, ok := w.object(t, wsBucket, w.prefix+name); !ok || !bytes.Equal(got, data) {
					t.Errorf("round %d: s3://%s/%s%s (exists %v) is %s, want the %s written", round, wsBucket, w.prefix, name, ok, describe(got), describe(data))
				}
			}
		})
	}
}

// TestSharedGitCloneAndPush clones a local repository with binary blobs into
// the mount (as a pack, --no-local), commits there, and pushes from the
// local repository and from the clone to a bare repository on the mount.
// Every git command must succeed, git fsck must be clean, the commits must
// be the ones the same commands make on a local disk, and the repositories
// as the bucket stores them (downloaded through the SDK) must pass git fsck
// too.
func TestSharedGitCloneAndPush(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	env := gitEnv(t)
	srcParent := t.TempDir()
	mustShIn(t, 60*time.Second, env, srcParent, `set -e
git init -q src
cd src
for i in 1 2 3 4 5; do
	head -c 300000 /dev/urandom > "blob-$i.bin"
	echo "commit $i" >> history.txt
	git add -A
	git commit -q -m "commit $i"
done`)
	src := filepath.Join(srcParent, "src")
	const script = `set -ex
git clone -q --no-local "file://$1" clone
git -C clone fsck --full --no-progress
git init -q --bare bare.git
git -C "$1" push -q "$PWD/bare.git" main
cd clone
echo "made in the clone" > made.txt
git add made.txt
git commit -q -m "made in the clone"
git push -q ../bare.git main
cd ..
git --git-dir=bare.git fsck --full --no-progress
git -C clone fsck --full --no-progress
echo "result: bare $(git --git-dir=bare.git rev-parse main)"
echo "result: clone $(git -C clone rev-parse HEAD)"
echo "result: files $(git -C clone ls-files | tr '\n' ' ')"
`
	oracle := mustShIn(t, 60*time.Second, env, t.TempDir(), script, src)
	began := time.Now()
	out, err := shIn(90*time.Second, env, w.dir, script, src)
	t.Logf("on the mount in %v", time.Since(began).Round(time.Millisecond))
	if err != nil {
		t.Errorf("git on the mount: %v\n%s", err, out)
	} else if got, want := resultLines(out), resultLines(oracle); !slices.Equal(got, want) {
		t.Errorf("git on the mount:\n%s\nwant, as on a local disk:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantNoLockFiles(t, w)
	if err == nil {
		checkStoredRepos(t, w, env, []string{"bare.git/", "clone/.git/"}, resultLines(oracle))
	}
}

// resultLines returns the lines of a script's output that start with
// "result: ", the ones to compare with the oracle's.
func resultLines(out string) []string {
	var r []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "result: ") {
			r = append(r, l)
		}
	}
	return r
}

// wantNoLockFiles fails the test if a lock file is left under the test's
// prefix in the bucket.
func wantNoLockFiles(t *testing.T, w *writeTest) {
	t.Helper()
	for _, k := range objectKeys(t, w, w.prefix) {
		if strings.HasSuffix(k, ".lock") {
			t.Errorf("lock file left in the bucket: s3://%s/%s%s", wsBucket, w.prefix, k)
		}
	}
}

// checkStoredRepos downloads the git directories under the test's prefix
// at gitDirs from the bucket, through the SDK, and runs git fsck on them:
// the bucket must hold valid repositories. want are the oracle's result
// lines, which name the commit each repository's HEAD must be.
func checkStoredRepos(t *testing.T, w *writeTest, env []string, gitDirs []string, want []string) {
	t.Helper()
	for _, repo := range gitDirs {
		dl := filepath.Join(t.TempDir(), "repo")
		downloadPrefix(t, w, w.prefix+repo, dl)
		gitDir := "--git-dir=" + dl
		out, err := runCmd(60*time.Second, env, "git", gitDir, "fsck", "--full", "--no-progress")
		if err != nil {
			t.Errorf("git fsck of s3://%s/%s%s as stored: %v\n%s", wsBucket, w.prefix, repo, err, out)
			continue
		}
		head, err := runCmd(10*time.Second, env, "git", gitDir, "rev-parse", "HEAD")
		head = strings.TrimSpace(head)
		if err != nil || !slices.ContainsFunc(want, func(l string) bool { return strings.HasSuffix(l, " "+head) }) {
			t.Errorf("HEAD of s3://%s/%s%s as stored = %s (%v), want one of the oracle's %q", wsBucket, w.prefix, repo, head, err, want)
		}
	}
}

// TestSharedUnlinkedWhileOpen opens files, writes them, unlinks them and only
// then closes them: unlinked files must never be stored, whatever their size.
func TestSharedUnlinkedWhileOpen(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	const program = `import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = b"written, then unlinked while open\n" * (size // 34 + 1)
for i in range(n):
    p = os.path.join(d, "gone-%d.bin" % i)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    off = 0
    while off < size:
        off += os.write(fd, data[off:size])
    os.unlink(p)
    if os.path.exists(p):
        print("%s exists after unlink" % p)
    os.close(fd)
`
	for _, tc := range []struct {
		name    string
		n, size int
	}{
		{"small", 10, 1000},
		// Over one part: a multipart upload is under way at unlink.
		{"over one part", 2, 9 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := strings.ReplaceAll(tc.name, " ", "-")
			for _, d := range []string{filepath.Join(t.TempDir(), sub), filepath.Join(w.dir, sub)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if out, err := python(60*time.Second, program, d, strconv.Itoa(tc.n), strconv.Itoa(tc.size)); err != nil || out != "" {
					t.Errorf("in %s: %v\n%s", d, err, out)
				}
			}
			wantNoObjectsCameBack(t, w, w.prefix+sub+"/", tc.n)
			if ups := s3Uploads(t, w.r, wsBucket, w.prefix+sub+"/"); len(ups) != 0 {
				t.Errorf("multipart uploads left behind: %q", ups)
			}
			if out := mustShIn(t, 10*time.Second, nil, filepath.Join(w.dir, sub), "ls -A"); out != "" {
				t.Errorf("ls -A of the directory through the mount = %q, want nothing", out)
			}
		})
	}
}

// wantNoObjectsCameBack fails the test if any object is under prefix, now or
// in the next two seconds: a late upload must not bring a removed file
// back. cycles is how many files the test created and removed.
func wantNoObjectsCameBack(t *testing.T, w *writeTest, prefix string, cycles int) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, k := range objectKeys(t, w, prefix) {
			seen[k] = true
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) > 0 {
		keys := slices.Sorted(maps.Keys(seen))
		t.Errorf("%d removed files came back as objects (of %d created and removed) under s3://%s/%s: %q",
			len(keys), cycles, wsBucket, prefix, keys[:min(len(keys), 20)])
	}
}

// TestSharedTemporaryFile uses Python's tempfile.TemporaryFile in the mount:
// an unlinked file that is written, read back and closed. It must read back
// what was written, and no tmp* object may be left.
func TestSharedTemporaryFile(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	const program = `import os, sys, tempfile
problems = []
for i in range(10):
    data = os.urandom(1000 + 10000 * i)
    with tempfile.TemporaryFile(dir=sys.argv[1]) as f:
        f.write(data)
        f.seek(0)
        got = f.read()
        if got != data:
            problems.append("round %d read back %d bytes, want the %d written" % (i, len(got), len(data)))
left = [n for n in os.listdir(sys.argv[1]) if n.startswith("tmp")]
if left:
    problems.append("left in the directory: %r" % left)
print("\n".join(problems), end="")
`
	if out, err := python(30*time.Second, program, t.TempDir()); err != nil || out != "" {
		t.Fatalf("on a local disk: %v\n%s", err, out)
	}
	if out, err := python(30*time.Second, program, w.dir); err != nil || out != "" {
		t.Errorf("on the mount: %v\n%s", err, out)
	}
	wantNoObjectsCameBack(t, w, w.prefix, 10)
}

// TestSharedCreateRemoveCycles creates an empty file and removes it at once,
// up to 500 times, with the shell, mktemp and Python's mkstemp: none may
// come back, even late. A local disk never brings a file back, so there is
// no oracle run; each tool gets a time budget instead, so that a slow
// machine runs fewer cycles rather than a longer test.
func TestSharedCreateRemoveCycles(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	const (
		cycles = 500
		batch  = 50
		budget = 6 * time.Second
	)
	for _, tc := range []struct {
		name string
		sh   string // a script run in the directory with the number of cycles, or
		py   string // a Python program given the directory and the number of cycles
	}{
		{name: "shell", sh: `i=0
while [ $i -lt $1 ]; do
	: > f || exit 1
	rm f || exit 1
	i=$((i+1))
done`},
		{name: "mktemp", sh: `i=0
while [ $i -lt $1 ]; do
	f=$(mktemp -p .) || exit 1
	rm "$f" || exit 1
	i=$((i+1))
done`},
		{name: "mkstemp", py: `import os, sys, tempfile
for i in range(int(sys.argv[2])):
    fd, p = tempfile.mkstemp(dir=sys.argv[1])
    os.close(fd)
    os.remove(p)
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(w.dir, tc.name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			done := 0
			for done < cycles && time.Since(began) < budget {
				n := strconv.Itoa(min(batch, cycles-done))
				var out string
				var err error
				if tc.sh != "" {
					out, err = shIn(30*time.Second, nil, dir, tc.sh, n)
				} else {
					out, err = python(30*time.Second, tc.py, dir, n)
				}
				if err != nil || out != "" {
					t.Fatalf("after %d cycles: %v\n%s", done, err, out)
				}
				done += min(batch, cycles-done)
			}
			t.Logf("%d cycles took %v", done, time.Since(began).Round(time.Millisecond))
			wantNoObjectsCameBack(t, w, w.prefix+tc.name+"/", done)
			if out := mustShIn(t, 10*time.Second, nil, dir, "ls -A"); out != "" {
				t.Errorf("ls -A of the directory through the mount = %q, want nothing", summarize(out))
			}
		})
	}
}

// summarize shortens a long output for a failure message: its first lines
// and how many there are.
func summarize(out string) string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) <= 6 {
		return out
	}
	return fmt.Sprintf("%s\n... (%d lines in all)", strings.Join(lines[:6], "\n"), len(lines))
}

// TestSharedOpenFileVisible holds a new file open for writing, with nothing
// uploaded yet, on a mount whose metadata TTL is one second: ls must list it
// and stat must work on it for longer than the TTL, with the size written so
// far, and right after close stat shows the final size.
func TestSharedOpenFileVisible(t *testing.T) {
	const ttl = time.Second
	w := newSharedTest(t, ttl)
	const program = `import sys
f = open(sys.argv[1], "wb")
f.write(b"a" * 1000)
f.flush()
print("written", flush=True)
sys.stdin.readline()
f.write(b"b" * 500)
f.close()
print("closed", flush=True)
sys.stdin.readline()
`
	for _, tc := range []struct {
		name string
		// listedBefore lists the directory before the file is created, so
		// that the mount holds a listing that the new file must join.
		listedBefore bool
	}{
		{"not listed before", false},
		{"listed before", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-") + ".txt"
			path := filepath.Join(w.dir, name)
			if tc.listedBefore {
				mustShIn(t, 10*time.Second, nil, w.dir, "ls -l")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := command(ctx, nil, "python3", "-c", program, path)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr := &rig.SyncBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close()
				cancel()
				cmd.Wait()
			}()
			lines := make(chan string, 2)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			expect := func(want string) {
				t.Helper()
				select {
				case l, ok := <-lines:
					if !ok || l != want {
						t.Fatalf("the writer said %q (open %v), want %q; stderr: %s", l, ok, want, stderr.String())
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("the writer did not say %q within 30s; stderr: %s", want, stderr.String())
				}
			}
			expect("written")
			if _, ok := w.object(t, wsBucket, w.prefix+name); ok {
				t.Logf("s3://%s/%s%s already exists while open", wsBucket, w.prefix, name)
			}

			// Look for three TTLs: the kernel's entry and the mount's
			// listing expire, and the file must still be there.
			began := time.Now()
			var lsFail, statFail string
			for looks := 0; time.Since(began) < 3*ttl; looks++ {
				if lsFail == "" {
					out, err := runCmd(10*time.Second, nil, "ls", w.dir)
					if err != nil || !slices.Contains(strings.Split(out, "\n"), name) {
						lsFail = fmt.Sprintf("after %v open (look %d): ls = %q (%v), want it to list %s",
							time.Since(began).Round(time.Millisecond), looks, out, err, name)
					}
				}
				if statFail == "" {
					out, err := runCmd(10*time.Second, nil, "stat", "-c", "%s", path)
					if err != nil || strings.TrimSpace(out) != "1000" {
						statFail = fmt.Sprintf("after %v open (look %d): stat -c %%s = %q (%v), want 1000",
							time.Since(began).Round(time.Millisecond), looks, strings.TrimSpace(out), err)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, f := range []string{lsFail, statFail} {
				if f != "" {
					t.Error(f)
				}
			}

			if _, err := stdin.Write([]byte("close\n")); err != nil {
				t.Fatal(err)
			}
			expect("closed")
			// close has returned, and with it the flush; the kernel may
			// release the file later.
			if out, err := runCmd(10*time.Second, nil, "stat", "-c", "%s", path); err != nil || strings.TrimSpace(out) != "1500" {
				t.Errorf("stat -c %%s right after close = %q (%v), want 1500", strings.TrimSpace(out), err)
			}
			w.wantObject(t, wsBucket, w.prefix+name, append(bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 500)...))
		})
	}
}

// TestSharedTwoFilesOneInode reuses a name right after renaming it, as
// editors and installers do (write x.tmp, mv x.tmp x, write x.tmp again):
// the two names are two files, with two inode numbers and their own
// contents, and cp and Python's shutil.copy from one to the other work.
func TestSharedTwoFilesOneInode(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	local := t.TempDir()
	const setup = `echo one > "$1.tmp" && mv "$1.tmp" "$1" && echo two > "$1.tmp" &&
echo "inodes $(stat -c %i "$1" "$1.tmp" | sort -u | wc -l)" &&
if cmp -s "$1" "$1.tmp"; then echo same; else echo differ; fi &&
cat "$1" "$1.tmp"`
	const wantSetup = "inodes 2\ndiffer\none\ntwo\n"
	for _, tc := range []struct {
		tool string
		copy string // copies $1.tmp over $1
	}{
		{"cp", `cp "$1.tmp" "$1"`},
		{"shutil", `python3 -c 'import shutil, sys; shutil.copy(sys.argv[1] + ".tmp", sys.argv[1])' "$1"`},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			for round := 1; round <= 3; round++ {
				name := fmt.Sprintf("%s-%d", tc.tool, round)
				if out := mustShIn(t, 10*time.Second, nil, local, setup, name); out != wantSetup {
					t.Fatalf("on a local disk: %q, want %q", out, wantSetup)
				}
				if out, err := shIn(10*time.Second, nil, w.dir, setup, name); err != nil || out != wantSetup {
					t.Errorf("round %d: %q (%v), want %q (two inodes, different contents)", round, out, err, wantSetup)
				}
				w.wantObject(t, wsBucket, w.prefix+name, []byte("one\n"))
				w.wantObject(t, wsBucket, w.prefix+name+".tmp", []byte("two\n"))

				mustShIn(t, 10*time.Second, nil, local, tc.copy, name)
				if out, err := shIn(10*time.Second, nil, w.dir, tc.copy, name); err != nil {
					t.Errorf("round %d: %s: %v\n%s", round, tc.copy, err, out)
				}
				if out, err := shIn(10*time.Second, nil, w.dir, `cat "$1" "$1.tmp"`, name); err != nil || out != "two\ntwo\n" {
					t.Errorf("round %d: after the copy, cat of both = %q (%v), want %q", round, out, err, "two\ntwo\n")
				}
				for _, n := range []string{name, name + ".tmp"} {
					oracle, err := os.ReadFile(filepath.Join(local, n))
					if err != nil {
						t.Fatal(err)
					}
					w.wantObject(t, wsBucket, w.prefix+n, oracle)
				}
			}
		})
	}
}

// TestSharedGitWorkspace works in a git repository on the mount the way
// people do: 50 rounds of change, git status, git add, git commit, then git
// gc twice, a stash and its pop. Every command must succeed, the commits
// must be the ones a local disk gets, git fsck must be clean through the
// mount and on the repository as the bucket stores it, and no lock file may
// be left.
func TestSharedGitWorkspace(t *testing.T) {
	w := newSharedTest(t, time.Minute)
	env := gitEnv(t)
	const script = `set -e
git init -q ws
cd ws
i=1
while [ $i -le 50 ]; do
	echo "round $i" >> notes.txt
	printf 'value %d\n' "$i" > "data-$((i % 5)).txt"
	git status --porcelain > /dev/null
	git add -A
	git commit -q -m "round $i"
	i=$((i+1))
done
git gc -q
git gc -q
echo "work in progress" >> notes.txt
git stash -q
git stash pop -q
git fsck --full --no-progress
echo "result: head $(git rev-parse HEAD)"
echo "result: commits $(git rev-list --count HEAD)"
echo "result: status $(git status --porcelain | tr '\n' ' ')"
echo "result: stashes $(git stash list | wc -l)"
echo "result: notes $(tail -n 2 notes.txt | tr '\n' ' ')"
`
	oracle := resultLines(mustShIn(t, 60*time.Second, env, t.TempDir(), script))
	began := time.Now()
	out, err := shIn(120*time.Second, env, w.dir, script)
	t.Logf("on the mount in %v", time.Since(began).Round(time.Millisecond))
	if err != nil {
		t.Errorf("git on the mount: %v\n%s", err, out)
	} else if got := resultLines(out); !slices.Equal(got, oracle) {
		t.Errorf("git on the mount:\n%s\nwant, as on a local disk:\n%s", strings.Join(got, "\n"), strings.Join(oracle, "\n"))
	}
	wantNoLockFiles(t, w)
	if err == nil {
		checkStoredRepos(t, w, env, []string{"ws/.git/"}, oracle)
	}
}

// TestSharedControlCharacterKey lists a directory holding an object whose
// name has a control character, written by another client: S3's XML
// listing cannot carry it raw, so the mount asks for URL-encoded keys. The
// whole directory lists, and the file reads.
func TestSharedControlCharacterKey(t *testing.T) {
	w := newWriteTest(t)
	odd := "a\x01b\x7f.txt"
	putObject(t, w.r, wsBucket, w.prefix+odd, []byte("odd"))
	putObject(t, w.r, wsBucket, w.prefix+"ok.txt", []byte("ok"))
	putObject(t, w.r, wsBucket, w.prefix+"sub\x01dir/inner.txt", []byte("inner"))
	if got, want := readDirNames(t, w.dir), []string{odd, "ok.txt", "sub\x01dir/"}; !slices.Equal(got, want) {
		t.Errorf("ReadDir = %q, want %q", got, want)
	}
	for name, want := range map[string]string{odd: "odd", "ok.txt": "ok", "sub\x01dir/inner.txt": "inner"} {
		if data, err := os.ReadFile(filepath.Join(w.dir, name)); err != nil || string(data) != want {
			t.Errorf("ReadFile(%q) = %q, %v; want %q", name, data, err, want)
		}
	}
	if out, err := sh(t, w.dir, "ls -l >/dev/null"); err != nil {
		t.Errorf("ls -l: %v\n%s", err, out)
	}
}
