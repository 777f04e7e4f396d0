package fs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3mount/s3mount/internal/rig"
)

// TestReadsOutliveCredentials reads continuously for 30 seconds through a
// mount whose credentials are declared to last 5 seconds. The proxy rejects
// every key after its declared expiry, so the reads only succeed if the
// mount renews in time.
func TestReadsOutliveCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("30-second soak")
	}
	r := rig.StartForTest(t, rig.Options{Seed: true, Lifetime: 5 * time.Second})
	first := fetchMAAPCredentials(t, r)
	m := mountRig(t, r, time.Second)
	ws := filepath.Join(m.dir, "maap-ops-workspace", "jdoe")
	sample := rig.SampleBin()
	readme, err := os.ReadFile(filepath.Join(ws, "README.txt"))
	if err != nil {
		t.Fatal(err)
	}

	var (
		ops      atomic.Int64
		failures atomic.Int64
		errMu    sync.Mutex // guards errs
		errs     []string
	)
	fail := func(format string, a ...any) {
		failures.Add(1)
		errMu.Lock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
		errMu.Unlock()
	}
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup

	// One handle kept open the whole time, read sequentially with O_DIRECT
	// so that every read reaches the filesystem, wrapping around.
	wg.Go(func() {
		f, err := os.OpenFile(filepath.Join(ws, "data", "sample.bin"), os.O_RDONLY|syscall.O_DIRECT, 0)
		if err != nil {
			fail("open: %v", err)
			return
		}
		defer f.Close()
		buf := make([]byte, 256<<10)
		off := int64(0)
		for time.Now().Before(deadline) {
			n, err := f.ReadAt(buf, off)
			if err != nil && err != io.EOF {
				fail("ReadAt(%d): %v", off, err)
				return
			}
			if !bytes.Equal(buf[:n], sample[off:off+int64(n)]) {
				fail("ReadAt(%d): wrong bytes", off)
				return
			}
			ops.Add(1)
			if off += int64(n); off >= int64(len(sample)) {
				off = 0
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	// Files opened, read and closed again and again.
	wg.Go(func() {
		for time.Now().Before(deadline) {
			f, err := os.OpenFile(filepath.Join(ws, "README.txt"), os.O_RDONLY|syscall.O_DIRECT, 0)
			if err != nil {
				fail("open README: %v", err)
				continue
			}
			data, err := io.ReadAll(f)
			f.Close()
			if err != nil || !bytes.Equal(data, readme) {
				fail("read README: %v", err)
			}
			ops.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	})
	// Listings and attributes, which expire every second.
	wg.Go(func() {
		for time.Now().Before(deadline) {
			if _, err := os.ReadDir(filepath.Join(ws, "results")); err != nil {
				fail("ReadDir: %v", err)
			}
			if _, err := os.Stat(filepath.Join(ws, "results", "run1.csv")); err != nil {
				fail("Stat: %v", err)
			}
			ops.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
	})
	wg.Wait()

	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d operations failed across credential renewals; first: %q", n, ops.Load(), errs)
	}
	renewals := m.provider.Renewals()
	t.Logf("%d operations, %d renewals, %d credential sets issued, %d proxy requests", ops.Load(), renewals, r.MAAP.Issued(), r.Proxy.Requests())
	// About one renewal every 2.5 seconds; ask for half of that.
	if renewals < 6 {
		t.Errorf("%d renewals in 30s of 5-second credentials, want at least 6", renewals)
	}
	if n := r.Proxy.Rejected(); n != 0 {
		t.Errorf("the mount sent %d requests with expired credentials", n)
	}
	// The proxy does reject the old keys: the first set is long expired.
	old := rig.NewS3Client(r.Proxy.URL, first.AccessKeyID, first.SecretAccessKey, first.SessionToken)
	_, err = old.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("maap-ops-workspace"), Prefix: aws.String("jdoe/")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ExpiredToken" {
		t.Errorf("request with the first credentials: %v, want ExpiredToken", err)
	}
}

// fetchMAAPCredentials asks the rig's MAAP emulator for credentials, as a
// user would with curl.
func fetchMAAPCredentials(t *testing.T, r *rig.Rig) rig.Credentials {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.MAAP.URL+rig.MAAPCredentialsPath, nil)
	req.Header.Set("proxy-ticket", r.Ticket)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Credentials struct {
			AccessKeyID     string `json:"aws_access_key_id"`
			SecretAccessKey string `json:"aws_secret_access_key"`
			SessionToken    string `json:"aws_session_token"`
		} `json:"credentials"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("MAAP credentials: HTTP %d, %v", resp.StatusCode, err)
	}
	c := body.Credentials
	return rig.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
}

// TestPathsFollowThePlatform changes the authorized paths the platform
// hands out, and checks that the mount follows at the next renewal: a new
// path appears, a removed one disappears (and a file open there fails with
// EACCES), and a read-only path becomes writable.
func TestPathsFollowThePlatform(t *testing.T) {
	r := rig.StartForTest(t, rig.Options{Seed: true, Lifetime: 3 * time.Second})
	m := mountRig(t, r, time.Second)
	open, err := os.Open(filepath.Join(m.dir, "shared-project-bucket/team-data/notes.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	ro := filepath.Join(m.dir, "public-reference-data/smap/v9/now-writable.txt")
	if err := os.WriteFile(ro, []byte("x"), 0o644); !isErrno(err, syscall.EROFS) {
		t.Fatalf("write to the read-only path before the change: %v, want EROFS", err)
	}

	paths := []rig.AuthorizedPath{
		r.Paths[0], // the workspace, unchanged
		{Bucket: "public-reference-data", Prefix: "smap/v9", Type: rig.TypeOrg, Access: rig.AccessReadWrite},
		{Bucket: "maap-ops-workspace", Prefix: "shared-scratch", Type: rig.TypeOrg, Access: rig.AccessReadWrite},
	}
	r.MAAP.SetPaths(paths)
	before := m.provider.Renewals()
	deadline := time.Now().Add(30 * time.Second)
	for m.provider.Renewals() < before+2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if m.provider.Renewals() < before+2 {
		t.Fatalf("no renewal within 30s")
	}

	if got := readDirNames(t, m.dir); !slices.Equal(got, []string{"maap-ops-workspace/", "public-reference-data/"}) {
		t.Errorf("mount root = %q, want the removed bucket gone", got)
	}
	if got := readDirNames(t, filepath.Join(m.dir, "maap-ops-workspace")); !slices.Equal(got, []string{"jdoe/", "shared-scratch/"}) {
		t.Errorf("maap-ops-workspace = %q, want the new path", got)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "shared-project-bucket/team-data")); !os.IsNotExist(err) {
		t.Errorf("removed path: Stat = %v, want not-exist", err)
	}
	if _, err := open.Read(make([]byte, 10)); !isErrno(err, syscall.EACCES) {
		t.Errorf("read of a file open on a removed path: %v, want EACCES", err)
	}
	if err := os.WriteFile(ro, []byte("now writable\n"), 0o644); err != nil {
		t.Errorf("write to the path made read-write: %v", err)
	} else if got := getObject(t, r, "public-reference-data", "smap/v9/now-writable.txt"); string(got) != "now writable\n" {
		t.Errorf("object = %q", got)
	}
	if err := os.WriteFile(filepath.Join(m.dir, "maap-ops-workspace/shared-scratch/new.txt"), []byte("new"), 0o644); err != nil {
		t.Errorf("write to the new path: %v", err)
	}
}

// TestUploadSpansRotations writes a three-part file slowly enough that the
// credentials rotate at least twice during the upload: each part is signed
// when it is sent, so the upload completes with the right bytes.
func TestUploadSpansRotations(t *testing.T) {
	r := rig.StartForTest(t, rig.Options{Seed: true, Lifetime: 3 * time.Second})
	m := mountRig(t, r, time.Minute)
	data := make([]byte, 3*8<<20+12345)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	f, err := os.Create(filepath.Join(m.dir, "maap-ops-workspace/jdoe/rotated.bin"))
	if err != nil {
		t.Fatal(err)
	}
	start := m.provider.Renewals()
	const chunk = 8 << 20
	for off := 0; off < len(data); off += chunk {
		if _, err := f.Write(data[off:min(off+chunk, len(data))]); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
		time.Sleep(2 * time.Second) // past the next renewal
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := m.provider.Renewals() - start; n < 2 {
		t.Errorf("%d renewals during the upload, want at least 2", n)
	}
	got := getObject(t, r, "maap-ops-workspace", "jdoe/rotated.bin")
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("uploaded object (%d bytes) differs from the %d bytes written", len(got), len(data))
	}
	if n := r.Proxy.Rejected(); n != 0 {
		t.Logf("%d requests were refused and retried with new credentials", n)
	}
}

// TestSoak reads, writes and lists continuously for three minutes through
// a mount whose credentials are declared to last 5 seconds, with the
// credentials endpoint down (503) for 20 seconds in the middle. The set
// handed out just before the outage lasts 30 seconds, so the mount must
// ride out the outage on valid credentials while its renewals fail and
// retry: no operation may fail, before, during or after.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("three-minute soak")
	}
	r := rig.StartForTest(t, rig.Options{Seed: true, Lifetime: 5 * time.Second})
	m := mountRig(t, r, time.Second)
	ws := filepath.Join(m.dir, "maap-ops-workspace", "jdoe")
	sample := rig.SampleBin()
	start := time.Now()
	deadline := start.Add(3 * time.Minute)

	var (
		ops, failures atomic.Int64
		errMu         sync.Mutex // guards errs
		errs          []string
	)
	fail := func(format string, a ...any) {
		failures.Add(1)
		errMu.Lock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf("%v: ", time.Since(start).Round(time.Second))+fmt.Sprintf(format, a...))
		}
		errMu.Unlock()
	}
	var wg sync.WaitGroup
	// Reads that reach S3 every time.
	wg.Go(func() {
		buf := make([]byte, 1<<20)
		for off := int64(0); time.Now().Before(deadline); off = (off + int64(len(buf))) % int64(len(sample)) {
			f, err := os.OpenFile(filepath.Join(ws, "data", "sample.bin"), os.O_RDONLY|syscall.O_DIRECT, 0)
			if err != nil {
				fail("open: %v", err)
				continue
			}
			n, err := f.ReadAt(buf, off)
			f.Close()
			if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], sample[off:off+int64(n)]) {
				fail("read at %d: %v", off, err)
			}
			ops.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	})
	// Writes of small and multipart files, read back through S3.
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; time.Now().Before(deadline); i++ {
				size := 1 + rng.IntN(64<<10)
				if i%10 == 0 {
					size = 9<<20 + rng.IntN(1<<20) // two parts
				}
				data := make([]byte, size)
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				name := filepath.Join(ws, "soak", fmt.Sprintf("w%d-%d.bin", w, i%20))
				if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					fail("mkdir: %v", err)
				}
				if err := os.WriteFile(name, data, 0o644); err != nil {
					fail("write %s: %v", filepath.Base(name), err)
					continue
				}
				if got := getObject(t, r, "maap-ops-workspace", "jdoe/soak/"+filepath.Base(name)); !bytes.Equal(got, data) {
					fail("object %s differs from what was written", filepath.Base(name))
				}
				ops.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	// Listings and attributes, which expire every second.
	wg.Go(func() {
		for time.Now().Before(deadline) {
			if _, err := os.ReadDir(filepath.Join(ws, "results")); err != nil {
				fail("ReadDir: %v", err)
			}
			if _, err := os.Stat(filepath.Join(ws, "README.txt")); err != nil {
				fail("Stat: %v", err)
			}
			ops.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
	})
	// The outage.
	wg.Go(func() {
		time.Sleep(80 * time.Second)
		// Credentials that outlive the 20-second outage first. Waiting
		// for the next renewal is not enough: one asked for before the
		// lifetime changed may be the next to land, with 5 seconds.
		r.MAAP.SetLifetime(30 * time.Second)
		for time.Until(m.provider.Expiry()) < 25*time.Second && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		r.MAAP.SetMode(rig.ModeUnavailable)
		r.MAAP.SetLifetime(5 * time.Second)
		time.Sleep(20 * time.Second)
		r.MAAP.SetMode(rig.ModeOK)
	})
	wg.Wait()

	renewals := m.provider.Renewals()
	t.Logf("%d operations in %v, %d renewals, %d requests refused and retried", ops.Load(), time.Since(start).Round(time.Second), renewals, r.Proxy.Rejected())
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d operations failed; first: %q", n, ops.Load(), errs)
	}
	// About one renewal every 2.5 s outside the outage: ask for half.
	if renewals < 30 {
		t.Errorf("%d renewals in 3 minutes of 5-second credentials, want at least 30", renewals)
	}
	if !strings.Contains(m.logs.String(), "credential renewal failed; still using the current credentials") {
		t.Errorf("the outage was not logged")
	}
	if !strings.Contains(m.logs.String(), "credentials renewed after failures") {
		t.Errorf("the recovery was not logged")
	}
}
