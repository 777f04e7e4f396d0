package rig

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// bodyOf returns n bytes of a pattern, so that a misplaced byte shows.
func bodyOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// faultBackend is an upstream for a proxy under test. GET /b/sized/N
// answers N bytes with a Content-Length, GET /b/chunked/N the same N bytes
// chunked; anything else answers "ok".
type faultBackend struct {
	srv  *httptest.Server
	hits atomic.Int64 // hits counts requests that reached the backend.
}

// startFaultProxy starts a backend and a proxy in front of it, and an
// HTTP client of its own; all stop when t ends.
func startFaultProxy(t *testing.T) (*Proxy, *faultBackend, *http.Client) {
	t.Helper()
	be := &faultBackend{}
	be.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		be.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(parts) == 3 && r.Method == http.MethodGet {
			n, err := strconv.Atoi(parts[2])
			if err == nil {
				body := bodyOf(n)
				switch parts[1] {
				case "sized":
					w.Header().Set("Content-Length", strconv.Itoa(n))
					_, _ = w.Write(body)
					return
				case "chunked":
					// Two writes with a flush between force chunking.
					_, _ = w.Write(body[:n/2])
					http.NewResponseController(w).Flush()
					_, _ = w.Write(body[n/2:])
					return
				}
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(be.srv.Close)
	p, err := StartProxy(be.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close proxy: %v", err)
		}
	})
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return p, be, &http.Client{Transport: tr}
}

// get GETs path through the proxy and returns the status, the body bytes it
// got and the error reading them.
func get(ctx context.Context, c *http.Client, p *Proxy, method, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.URL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// pollUntil polls cond until it holds or timeout passes.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFaultErrorResponses checks that the error faults answer S3's XML
// errors for Times requests and then let requests through.
func TestFaultErrorResponses(t *testing.T) {
	p, be, c := startFaultProxy(t)
	for _, tc := range []struct {
		kind   FaultKind
		status int
		code   string
	}{
		{FaultSlowDown, http.StatusServiceUnavailable, "SlowDown"},
		{FaultInternalError, http.StatusInternalServerError, "InternalError"},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			h := p.Inject(Fault{Kind: tc.kind, Times: 2})
			defer h.Remove()
			before := be.hits.Load()
			for i := range 2 {
				status, body, err := get(context.Background(), c, p, http.MethodGet, "/b/key")
				if err != nil {
					t.Fatal(err)
				}
				var e struct{ Code, Message, RequestId string }
				if err := xml.Unmarshal(body, &e); err != nil {
					t.Fatalf("request %d: error body %q: %v", i, body, err)
				}
				if status != tc.status || e.Code != tc.code || e.RequestId == "" {
					t.Errorf("request %d: status %d, code %q, request ID %q; want %d, %q and an ID", i, status, e.Code, e.RequestId, tc.status, tc.code)
				}
			}
			if status, body, err := get(context.Background(), c, p, http.MethodGet, "/b/key"); err != nil || status != 200 || string(body) != "ok" {
				t.Errorf("third request: %d %q %v, want 200 ok: Times is 2", status, body, err)
			}
			if got := h.Count(); got != 2 {
				t.Errorf("Count() = %d, want 2", got)
			}
			if got := be.hits.Load() - before; got != 1 {
				t.Errorf("backend saw %d requests, want 1", got)
			}
		})
	}
}

// TestFaultMatch checks which requests each kind of Match selects.
func TestFaultMatch(t *testing.T) {
	p, _, c := startFaultProxy(t)
	for _, tc := range []struct {
		name  string
		match Match
		hit   []string // hit are the requests, "METHOD /path", the fault hits.
		miss  []string
	}{
		{"method", MatchMethod(http.MethodHead), []string{"HEAD /b/x"}, []string{"GET /b/x", "PUT /b/x"}},
		{"key", MatchKey("data/"), []string{"GET /b/data/x", "PUT /b/my-data/y"}, []string{"GET /b/x", "GET /data/", "GET /b/other/data"}},
		{"op", MatchOp(OpGetObject, OpListObjectsV2), []string{"GET /b/x", "GET /b?list-type=2"}, []string{"HEAD /b/x", "GET /b?uploads", "PUT /b/x"}},
		{"all", MatchAll(MatchOp(OpGetObject), MatchKey("a")), []string{"GET /b/a"}, []string{"GET /b/z", "HEAD /b/a"}},
		{"nil", nil, []string{"GET /b/x", "DELETE /b/y"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := p.Inject(Fault{Kind: FaultInternalError, Match: tc.match})
			defer h.Remove()
			for _, req := range append(append([]string(nil), tc.hit...), tc.miss...) {
				method, path, _ := strings.Cut(req, " ")
				status, _, err := get(context.Background(), c, p, method, path)
				if err != nil {
					t.Fatal(err)
				}
				want := http.StatusOK
				if i := indexOf(tc.hit, req); i >= 0 {
					want = http.StatusInternalServerError
				}
				if status != want {
					t.Errorf("%s: status %d, want %d", req, status, want)
				}
			}
			if got := h.Count(); got != len(tc.hit) {
				t.Errorf("Count() = %d, want %d", got, len(tc.hit))
			}
		})
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// TestFaultRateIsSeeded checks that a fault at a rate hits about that share
// of requests, and the same ones for the same seed.
func TestFaultRateIsSeeded(t *testing.T) {
	p, _, c := startFaultProxy(t)
	const n = 200
	pattern := func(seed uint64) string {
		h := p.Inject(Fault{Kind: FaultSlowDown, Rate: 0.25, Seed: seed})
		defer h.Remove()
		var b strings.Builder
		for range n {
			status, _, err := get(context.Background(), c, p, http.MethodGet, "/b/x")
			if err != nil {
				t.Fatal(err)
			}
			if status == http.StatusServiceUnavailable {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		if got := strings.Count(b.String(), "x"); got != h.Count() {
			t.Errorf("seed %d: %d requests failed, Count() = %d", seed, got, h.Count())
		}
		return b.String()
	}
	a, b, other := pattern(7), pattern(7), pattern(8)
	if a != b {
		t.Errorf("seed 7 gave two patterns:\n%s\n%s", a, b)
	}
	if a == other {
		t.Errorf("seeds 7 and 8 gave the same pattern %s", a)
	}
	// 50 expected; 5 standard deviations (about 6 each) either way.
	if got := strings.Count(a, "x"); got < 20 || got > 80 {
		t.Errorf("rate 0.25 hit %d of %d requests", got, n)
	}
}

// TestFaultConcurrentTimes checks that Times holds under concurrent
// requests.
func TestFaultConcurrentTimes(t *testing.T) {
	p, _, c := startFaultProxy(t)
	h := p.Inject(Fault{Kind: FaultSlowDown, Times: 10})
	defer h.Remove()
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				status, _, err := get(context.Background(), c, p, http.MethodGet, "/b/x")
				if err != nil {
					t.Error(err)
					return
				}
				if status == http.StatusServiceUnavailable {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 10 || h.Count() != 10 {
		t.Errorf("%d requests failed and Count() = %d, want 10 and 10", failed.Load(), h.Count())
	}
}

// TestFaultBodyCuts checks that the reset and short-body faults pass the
// headers and After bytes of the body, never a whole body, and then fail
// the client's read.
func TestFaultBodyCuts(t *testing.T) {
	p, _, c := startFaultProxy(t)
	for _, tc := range []struct {
		name  string
		kind  FaultKind
		path  string
		after int64
		want  int // want is how many body bytes arrive.
	}{
		{"short", FaultShortBody, "/b/sized/1000", 100, 100},
		{"short at once", FaultShortBody, "/b/sized/1000", 0, 0},
		{"short past the end", FaultShortBody, "/b/sized/50", 100, 49},
		{"short chunked", FaultShortBody, "/b/chunked/1000", 300, 300},
		{"short chunked past the end", FaultShortBody, "/b/chunked/50", 100, 50},
		{"reset", FaultReset, "/b/sized/1000", 100, -1},
		{"reset chunked", FaultReset, "/b/chunked/1000", 300, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := p.Inject(Fault{Kind: tc.kind, After: tc.after, Times: 1})
			defer h.Remove()
			status, body, err := get(context.Background(), c, p, http.MethodGet, tc.path)
			if status != http.StatusOK {
				t.Fatalf("GET %s: status %d, %v", tc.path, status, err)
			}
			full := bodyOf(len(body))
			if !bytes.Equal(body, full) {
				t.Errorf("GET %s: the %d bytes that arrived differ from the body's start", tc.path, len(body))
			}
			switch {
			case tc.kind == FaultShortBody && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Errorf("GET %s: read error %v, want unexpected EOF", tc.path, err)
			case tc.kind == FaultReset && (err == nil || !strings.Contains(err.Error(), "connection reset")):
				t.Errorf("GET %s: read error %v, want a connection reset", tc.path, err)
			}
			if tc.want >= 0 && len(body) != tc.want {
				t.Errorf("GET %s: %d body bytes arrived, want %d", tc.path, len(body), tc.want)
			}
			if tc.kind == FaultReset && int64(len(body)) > tc.after {
				t.Errorf("GET %s: %d body bytes arrived, want at most %d", tc.path, len(body), tc.after)
			}
			if got := h.Count(); got != 1 {
				t.Errorf("Count() = %d, want 1", got)
			}
			// The next request is not hit.
			if status, body, err := get(context.Background(), c, p, http.MethodGet, tc.path); err != nil || status != 200 || !bytes.Equal(body, bodyOf(len(body))) {
				t.Errorf("second GET %s: %d, %d bytes, %v", tc.path, status, len(body), err)
			}
		})
	}
}

// TestFaultLatency checks that a latency fault delays a request that then
// succeeds.
func TestFaultLatency(t *testing.T) {
	p, _, c := startFaultProxy(t)
	const delay = 300 * time.Millisecond
	h := p.Inject(Fault{Kind: FaultLatency, Delay: delay})
	defer h.Remove()
	began := time.Now()
	status, body, err := get(context.Background(), c, p, http.MethodGet, "/b/sized/10")
	if took := time.Since(began); took < delay {
		t.Errorf("request took %v, want at least %v", took, delay)
	}
	if err != nil || status != 200 || !bytes.Equal(body, bodyOf(10)) {
		t.Errorf("GET: %d %q %v", status, body, err)
	}
}

// TestFaultStall checks the ways a stall ends: by its Delay, by Remove, by
// ClearFaults, by the client going away and by the proxy closing.
func TestFaultStall(t *testing.T) {
	t.Run("Delay", func(t *testing.T) {
		p, _, c := startFaultProxy(t)
		const delay = 300 * time.Millisecond
		h := p.Inject(Fault{Kind: FaultStall, Delay: delay})
		defer h.Remove()
		began := time.Now()
		status, body, err := get(context.Background(), c, p, http.MethodGet, "/b/sized/10")
		if took := time.Since(began); took < delay {
			t.Errorf("request took %v, want at least %v", took, delay)
		}
		if err != nil || status != 200 || !bytes.Equal(body, bodyOf(10)) {
			t.Errorf("GET: %d %q %v", status, body, err)
		}
	})

	for _, end := range []string{"Remove", "ClearFaults"} {
		t.Run(end, func(t *testing.T) {
			p, be, c := startFaultProxy(t)
			h := p.Inject(Fault{Kind: FaultStall, Match: MatchMethod(http.MethodPut)})
			defer h.Remove()
			type result struct {
				status int
				err    error
			}
			done := make(chan result, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodPut, p.URL+"/b/key", strings.NewReader("payload"))
				resp, err := c.Do(req)
				if err != nil {
					done <- result{0, err}
					return
				}
				resp.Body.Close()
				done <- result{resp.StatusCode, nil}
			}()
			pollUntil(t, 5*time.Second, "the PUT to stall", func() bool { return h.Held() == 1 })
			before := be.hits.Load()
			// Other requests pass while one is held.
			if status, _, err := get(context.Background(), c, p, http.MethodGet, "/b/x"); err != nil || status != 200 {
				t.Errorf("GET during the stall: %d %v", status, err)
			}
			select {
			case r := <-done:
				t.Fatalf("stalled PUT returned %d %v", r.status, r.err)
			default:
			}
			if end == "Remove" {
				h.Remove()
			} else {
				p.ClearFaults()
			}
			select {
			case r := <-done:
				if r.err != nil || r.status != 200 {
					t.Errorf("PUT after the stall ended: %d %v, want 200", r.status, r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("PUT still stalled after the fault was removed")
			}
			if got := be.hits.Load() - before; got != 2 {
				t.Errorf("backend saw %d requests, want 2 (the GET and the PUT)", got)
			}
		})
	}

	t.Run("ClientGone", func(t *testing.T) {
		p, be, c := startFaultProxy(t)
		h := p.Inject(Fault{Kind: FaultStall})
		defer h.Remove()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, _, err := get(ctx, c, p, http.MethodGet, "/b/x")
			done <- err
		}()
		pollUntil(t, 5*time.Second, "the GET to stall", func() bool { return h.Held() == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled GET: %v", err)
		}
		pollUntil(t, 5*time.Second, "the proxy to drop the request", func() bool { return h.Held() == 0 })
		h.Remove()
		if got := be.hits.Load(); got != 0 {
			t.Errorf("backend saw %d requests, want 0: the client had gone", got)
		}
	})

	t.Run("ProxyClosed", func(t *testing.T) {
		p, _, c := startFaultProxy(t)
		h := p.Inject(Fault{Kind: FaultStall})
		done := make(chan error, 1)
		go func() {
			_, _, err := get(context.Background(), c, p, http.MethodGet, "/b/x")
			done <- err
		}()
		pollUntil(t, 5*time.Second, "the GET to stall", func() bool { return h.Held() == 1 })
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil {
			t.Error("GET stalled by a proxy that closed succeeded")
		}
		pollUntil(t, 5*time.Second, "the stall to end", func() bool { return h.Held() == 0 })
	})

	t.Run("Body", func(t *testing.T) {
		p, _, c := startFaultProxy(t)
		h := p.Inject(Fault{Kind: FaultStallBody, After: 100})
		defer h.Remove()
		resp, err := c.Get(p.URL + "/b/sized/1000")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, 100)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatal(err)
		}
		pollUntil(t, 5*time.Second, "the body to stall", func() bool { return h.Held() == 1 })
		rest := make(chan []byte, 1)
		go func() {
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Errorf("reading after the stall: %v", err)
			}
			rest <- b
		}()
		select {
		case b := <-rest:
			t.Fatalf("read %d more bytes during the stall", len(b))
		case <-time.After(200 * time.Millisecond):
			// Nothing came, as it should: the proxy holds the rest.
		}
		h.Remove()
		if got := append(first, <-rest...); !bytes.Equal(got, bodyOf(1000)) {
			t.Errorf("body after the stall: %d bytes, not the backend's 1000", len(got))
		}
	})
}

// TestOperation checks that Operation names the requests the SDK makes
// for each operation s3mount uses.
func TestOperation(t *testing.T) {
	var mu sync.Mutex
	var got []Op
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, Operation(r))
		mu.Unlock()
	}))
	defer srv.Close()
	c := NewS3Client(srv.URL, "AKID", "secret", "")
	c = s3.New(c.Options(), func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	b, k, id := aws.String("bucket"), aws.String("dir/key with space"), aws.String("upload-1")
	body := func() io.ReadSeeker { return strings.NewReader("data") }
	for _, tc := range []struct {
		want Op
		call func() error
	}{
		{OpGetObject, func() error {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k, Range: aws.String("bytes=0-9")})
			return err
		}},
		{OpHeadObject, func() error { _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: k}); return err }},
		{OpPutObject, func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: body()})
			return err
		}},
		{OpCopyObject, func() error {
			_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: k, CopySource: aws.String("bucket/src")})
			return err
		}},
		{OpDeleteObject, func() error { _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: k}); return err }},
		{OpCreateMultipartUpload, func() error {
			_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
			return err
		}},
		{OpUploadPart, func() error {
			_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(1), Body: body()})
			return err
		}},
		{OpUploadPartCopy, func() error {
			_, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(1), CopySource: aws.String("bucket/src")})
			return err
		}},
		{OpCompleteMultipartUpload, func() error {
			_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
				MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"e"`)}}}})
			return err
		}},
		{OpAbortMultipartUpload, func() error {
			_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: k, UploadId: id})
			return err
		}},
		{OpListParts, func() error {
			_, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: id})
			return err
		}},
		{OpListObjectsV2, func() error {
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("dir/"), Delimiter: aws.String("/")})
			return err
		}},
		{OpListMultipartUploads, func() error {
			_, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b})
			return err
		}},
		{OpOther, func() error { _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b}); return err }},
		{OpOther, func() error {
			_, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: k})
			return err
		}},
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		_ = tc.call() // the empty answers need not parse; the request is what counts
		mu.Lock()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: Operation saw %v", tc.want, got)
		}
		mu.Unlock()
	}
}

// TestFaultKindString checks the names used in logs.
func TestFaultKindString(t *testing.T) {
	if got := FaultStallBody.String(); got != "StallBody" {
		t.Errorf("FaultStallBody.String() = %q", got)
	}
	if got := FaultKind(99).String(); got != "FaultKind(99)" {
		t.Errorf("FaultKind(99).String() = %q", got)
	}
}
