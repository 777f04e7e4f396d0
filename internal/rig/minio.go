package rig

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the AWS region every client of the rig uses.
const Region = "us-east-1"

// minioStartTimeout bounds how long StartMinIO waits for MinIO to report
// itself live.
const minioStartTimeout = 60 * time.Second

// minioStopGrace is how long Stop waits after SIGTERM before SIGKILL.
const minioStopGrace = 5 * time.Second

// FindMinIO returns the path of the minio binary. It looks at $S3MOUNT_MINIO
// first, then at $(go env GOPATH)/bin/minio, then on $PATH. The error says to
// run scripts/install-minio.sh.
func FindMinIO() (string, error) {
	if p := os.Getenv("S3MOUNT_MINIO"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("S3MOUNT_MINIO=%s is not an executable file", p)
	}
	for _, dir := range gopathDirs() {
		p := filepath.Join(dir, "bin", "minio")
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errors.New("minio binary not found (looked at $S3MOUNT_MINIO, $(go env GOPATH)/bin and $PATH): run scripts/install-minio.sh")
}

// gopathDirs returns the GOPATH entries to search, from `go env GOPATH`, then
// $GOPATH, then ~/go.
func gopathDirs() []string {
	var raw string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		raw = strings.TrimSpace(string(out))
	}
	if raw == "" {
		raw = os.Getenv("GOPATH")
	}
	if raw == "" {
		if home, err := os.UserHomeDir(); err == nil {
			raw = filepath.Join(home, "go")
		}
	}
	var dirs []string
	for _, d := range filepath.SplitList(raw) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// isExecutable reports whether p is a regular file with an execute bit set.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// MinIO is a running MinIO server on loopback.
type MinIO struct {
	Endpoint     string // Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	RootUser     string // RootUser is the random root access key.
	RootPassword string // RootPassword is the random root secret key.

	cmd     *exec.Cmd
	dataDir string
	out     *tailBuffer
	done    chan struct{} // done is closed when the process has exited.
	waitErr error         // waitErr is the result of cmd.Wait, set before done closes.

	stopOnce sync.Once
	stopErr  error // stopErr is the result of the first Stop, set inside stopOnce.
}

// StartMinIO starts a MinIO server on a free loopback port, with a temporary
// data directory, random root credentials, the browser off and the console
// on another free loopback port. It waits until GET /minio/health/live
// answers 200, failing early with the tail of MinIO's output if the process
// exits. The process runs in its own process group and, on Linux, is killed
// when its parent dies.
func StartMinIO(ctx context.Context) (*MinIO, error) {
	bin, err := FindMinIO()
	if err != nil {
		return nil, err
	}
	// The ports are picked by binding :0 and closing, so another process may
	// grab one before MinIO binds it. Retry a few times on that race.
	for attempt := 1; ; attempt++ {
		m, err := startMinIOOnce(ctx, bin)
		if err == nil {
			return m, nil
		}
		// MinIO says "Specified port is already in use".
		if attempt >= 3 || !strings.Contains(err.Error(), "already in use") || ctx.Err() != nil {
			return nil, err
		}
		slog.Warn("rig: minio port was taken, retrying", "attempt", attempt)
	}
}

// startMinIOOnce makes one attempt at starting MinIO.
func startMinIOOnce(ctx context.Context, bin string) (*MinIO, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "s3mount-rig-minio-")
	if err != nil {
		return nil, fmt.Errorf("minio data dir: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	m := &MinIO{
		Endpoint:     "http://" + addr,
		RootUser:     "rig" + randomHex(8),
		RootPassword: randomHex(20),
		dataDir:      dataDir,
		out:          newTailBuffer(16 << 10),
		done:         make(chan struct{}),
	}

	cmd := exec.Command(bin, "server",
		"--address", addr,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		dataDir)
	cmd.Env = append(environWithout("MINIO_"),
		"MINIO_ROOT_USER="+m.RootUser,
		"MINIO_ROOT_PASSWORD="+m.RootPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout = m.out
	cmd.Stderr = m.out
	cmd.SysProcAttr = ChildProcAttr(syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dataDir)
		return nil, fmt.Errorf("start minio: %w", err)
	}
	m.cmd = cmd
	go func() {
		m.waitErr = cmd.Wait()
		close(m.done)
	}()

	start := time.Now()
	if err := m.waitLive(ctx); err != nil {
		m.Stop()
		return nil, err
	}
	slog.Info("rig: minio started", "endpoint", m.Endpoint, "pid", cmd.Process.Pid, "took", time.Since(start).Round(time.Millisecond))
	return m, nil
}

// waitLive polls MinIO's liveness endpoint until it answers 200 and then
// ListBuckets until it succeeds, until the process exits, ctx ends or
// minioStartTimeout passes.
func (m *MinIO) waitLive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, minioStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url := m.Endpoint + "/minio/health/live"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	live := false
	for {
		if !live {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				live = resp.StatusCode == http.StatusOK
			}
		}
		// MinIO is live before it serves S3 requests (it answers 503
		// XMinioServerNotInitialized for a while); wait for a real one.
		if live {
			if _, err := m.Client().ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
				return nil
			}
		}
		select {
		case <-m.done:
			return fmt.Errorf("minio exited before becoming live (%v); output:\n%s", m.waitErr, m.out.String())
		case <-ctx.Done():
			return fmt.Errorf("minio not live at %s: %w; output:\n%s", url, ctx.Err(), m.out.String())
		case <-tick.C:
		}
	}
}

// Stop terminates MinIO with SIGTERM, then SIGKILL after a few seconds,
// waits for it to exit and removes its data directory. It is safe to call
// more than once; later calls return the first call's result.
func (m *MinIO) Stop() error {
	m.stopOnce.Do(func() {
		if m.cmd != nil && m.cmd.Process != nil {
			pid := m.cmd.Process.Pid
			// The negative pid signals MinIO's whole process group.
			_ = syscall.Kill(-pid, syscall.SIGTERM)
			select {
			case <-m.done:
			case <-time.After(minioStopGrace):
				slog.Warn("rig: minio did not stop after SIGTERM, killing", "pid", pid)
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				<-m.done
			}
		}
		if err := os.RemoveAll(m.dataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.stopErr = fmt.Errorf("remove minio data dir: %w", err)
		}
	})
	return m.stopErr
}

// Output returns the last few KiB of MinIO's stdout and stderr.
func (m *MinIO) Output() string {
	return m.out.String()
}

// Client returns an S3 client that talks to MinIO directly with the root
// credentials.
func (m *MinIO) Client() *s3.Client {
	return NewS3Client(m.Endpoint, m.RootUser, m.RootPassword, "")
}

// NewS3Client returns an S3 client for endpoint with static credentials,
// configured the way the rig's servers need: path-style addressing, region
// us-east-1, and checksums only when an operation requires them.
func NewS3Client(endpoint, accessKeyID, secretAccessKey, sessionToken string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     Region,
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, sessionToken),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		DisableLogOutputChecksumValidationSkipped: true,
	})
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// environWithout returns os.Environ without variables whose names start with
// prefix.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms.
	}
	return hex.EncodeToString(b)
}

// tailBuffer is an io.Writer that keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	mu  sync.Mutex // mu guards buf.
	buf []byte
}

// newTailBuffer returns a tailBuffer that keeps the last max bytes.
func newTailBuffer(max int) *tailBuffer {
	return &tailBuffer{max: max}
}

// Write appends p, dropping the oldest bytes beyond the limit.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes, starting at a line boundary when it can.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) == t.max {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
