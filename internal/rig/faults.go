package rig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind says what an injected fault does to a request.
type FaultKind int

const (
	// FaultSlowDown answers 503 SlowDown, as S3 does when throttling,
	// without forwarding the request.
	FaultSlowDown FaultKind = iota + 1
	// FaultInternalError answers 500 InternalError without forwarding the
	// request.
	FaultInternalError
	// FaultReset forwards the request, passes the response headers and
	// After bytes of its body, then resets the connection (TCP RST).
	FaultReset
	// FaultShortBody forwards the request, passes the response headers and
	// After bytes of its body, then closes the connection cleanly, short of
	// the Content-Length the headers declared.
	FaultShortBody
	// FaultLatency waits Delay, then handles the request as usual.
	FaultLatency
	// FaultStall holds the request before reading its body or answering,
	// like a server that stopped: a client that sends a body larger than
	// the socket buffers stalls in its upload, any other waits for the
	// response headers. When the stall ends the request goes on as usual.
	FaultStall
	// FaultStallBody forwards the request, passes the response headers and
	// After bytes of its body, then holds the rest until the stall ends.
	FaultStallBody
)

var faultNames = map[FaultKind]string{
	FaultSlowDown:      "SlowDown",
	FaultInternalError: "InternalError",
	FaultReset:         "Reset",
	FaultShortBody:     "ShortBody",
	FaultLatency:       "Latency",
	FaultStall:         "Stall",
	FaultStallBody:     "StallBody",
}

// String returns the kind's name, such as "SlowDown".
func (k FaultKind) String() string {
	if s, ok := faultNames[k]; ok {
		return s
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Fault describes a fault for Proxy.Inject.
//
// A fault hits a request that Match accepts, at most Times times, each with
// probability Rate. The body faults (FaultReset, FaultShortBody,
// FaultStallBody) act after After bytes of the response body, or before the
// last byte if the body is not longer than After, so the client never gets
// a whole body; on a HEAD or an empty body they act right after the headers.
//
// A stall (FaultStall, FaultStallBody) lasts Delay, or until the fault is
// removed if Delay is 0; it also ends when the client goes away (which the
// proxy notices only once the request body, if any, has been read), and
// when the proxy closes. A stall that ends by time or removal lets the
// request go on as usual.
type Fault struct {
	Kind FaultKind
	// Match selects the requests the fault may hit; nil selects all.
	Match Match
	// Times bounds how many requests the fault hits; 0 means no bound.
	Times int
	// Rate is the probability that the fault hits a matching request, in
	// (0, 1]; 0 means 1.
	Rate float64
	// Seed seeds the random draws of Rate, so that the same sequence of
	// requests meets the same faults on every run.
	Seed uint64
	// After is how many response body bytes the body faults pass first.
	After int64
	// Delay is FaultLatency's added latency and the stalls' length (0:
	// until removed).
	Delay time.Duration
}

// FaultHandle is an injected fault. Its methods are safe for concurrent use.
type FaultHandle struct {
	p        *Proxy
	f        Fault
	released chan struct{} // released is closed by Remove.
	remove   sync.Once

	mu   sync.Mutex // mu guards rng, hits and held.
	rng  *rand.Rand
	hits int
	held int
}

// Inject adds a fault to the proxy. Faults are tried in the order they were
// injected, after the function set with SetFault; the first that hits a
// request handles it, so a request meets at most one of them.
//
// Inject panics if f.Kind or f.Rate is not valid.
func (p *Proxy) Inject(f Fault) *FaultHandle {
	if _, ok := faultNames[f.Kind]; !ok {
		panic(fmt.Sprintf("rig: Inject: unknown fault kind %d", f.Kind))
	}
	if f.Rate < 0 || f.Rate > 1 {
		panic(fmt.Sprintf("rig: Inject: rate %v is not in [0, 1]", f.Rate))
	}
	h := &FaultHandle{
		p:        p,
		f:        f,
		released: make(chan struct{}),
		rng:      rand.New(rand.NewPCG(f.Seed, 0x5eed)),
	}
	p.mu.Lock()
	p.faults = append(p.faults, h)
	p.mu.Unlock()
	return h
}

// ClearFaults removes every injected fault, ending their stalls, and the
// function set with SetFault.
func (p *Proxy) ClearFaults() {
	p.mu.Lock()
	faults := p.faults
	p.faults = nil
	p.fault = nil
	p.mu.Unlock()
	for _, h := range faults {
		h.release()
	}
}

// Remove removes the fault, ending the stalls it holds. It is safe to call
// more than once.
func (h *FaultHandle) Remove() {
	h.p.mu.Lock()
	for i, g := range h.p.faults {
		if g == h {
			h.p.faults = append(h.p.faults[:i:i], h.p.faults[i+1:]...)
			break
		}
	}
	h.p.mu.Unlock()
	h.release()
}

func (h *FaultHandle) release() {
	h.remove.Do(func() { close(h.released) })
}

// Count returns how many requests the fault has hit.
func (h *FaultHandle) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits
}

// Held returns how many requests the fault holds now, in a stall or an
// added latency.
func (h *FaultHandle) Held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// take reports whether the fault hits r, and counts it if so.
func (h *FaultHandle) take(r *http.Request) bool {
	if h.f.Match != nil && !h.f.Match(r) {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f.Times > 0 && h.hits >= h.f.Times {
		return false
	}
	if h.f.Rate > 0 && h.f.Rate < 1 && h.rng.Float64() >= h.f.Rate {
		return false
	}
	h.hits++
	return true
}

// hold waits d (until the fault is removed if d is 0). It returns false if
// the client went away or the proxy closed first.
func (h *FaultHandle) hold(ctx context.Context, d time.Duration) bool {
	h.mu.Lock()
	h.held++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.held--
		h.mu.Unlock()
	}()
	var elapsed <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		elapsed = t.C
	}
	select {
	case <-elapsed:
		return true
	case <-h.released:
		return true
	case <-ctx.Done():
		return false
	case <-h.p.done:
		return false
	}
}

// pickFault returns the first injected fault that hits r, or nil.
func (p *Proxy) pickFault(r *http.Request) *FaultHandle {
	p.mu.Lock()
	faults := p.faults
	p.mu.Unlock()
	for _, h := range faults {
		if h.take(r) {
			return h
		}
	}
	return nil
}

// serveFault applies h to r. It returns true if the request is done, and
// otherwise the writer to go on with.
func (p *Proxy) serveFault(h *FaultHandle, w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
	slog.Debug("rig: proxy injects fault", "fault", h.f.Kind, "op", Operation(r), "method", r.Method, "path", r.URL.Path)
	switch h.f.Kind {
	case FaultSlowDown:
		WriteS3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return w, true
	case FaultInternalError:
		WriteS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return w, true
	case FaultLatency, FaultStall:
		if h.f.Kind == FaultLatency && h.f.Delay <= 0 {
			return w, false
		}
		if !h.hold(r.Context(), h.f.Delay) {
			// Nobody is left to answer: drop the connection quietly.
			panic(http.ErrAbortHandler)
		}
		return w, false
	default: // the body faults
		return &faultWriter{ResponseWriter: w, h: h, r: r}, false
	}
}

// errCut is what a body fault's writer returns once it has cut the
// connection.
var errCut = errors.New("rig: connection cut by an injected fault")

// faultWriter passes a response through and applies a body fault to it.
type faultWriter struct {
	http.ResponseWriter
	h *FaultHandle
	r *http.Request

	wroteHeader bool
	cut         int64 // cut is how many body bytes pass before the fault acts.
	written     int64 // written counts the body bytes passed.
	acted       bool
	err         error // err, once set, fails every later Write.
}

// Unwrap lets http.ResponseController reach the server's writer.
func (fw *faultWriter) Unwrap() http.ResponseWriter { return fw.ResponseWriter }

// FlushError flushes the response unless the fault has cut the connection,
// which the server's writer must then not touch.
func (fw *faultWriter) FlushError() error {
	if fw.err != nil {
		return fw.err
	}
	return http.NewResponseController(fw.ResponseWriter).Flush()
}

func (fw *faultWriter) WriteHeader(code int) {
	if code < 200 {
		fw.ResponseWriter.WriteHeader(code) // informational; more to come
		return
	}
	if fw.wroteHeader {
		return
	}
	fw.wroteHeader = true
	fw.cut = max(fw.h.f.After, 0)
	if fw.r.Method == http.MethodHead {
		fw.cut = 0
	} else if cl, err := strconv.ParseInt(fw.Header().Get("Content-Length"), 10, 64); err == nil {
		fw.cut = max(min(fw.cut, cl-1), 0)
	}
	fw.ResponseWriter.WriteHeader(code)
	if fw.cut == 0 {
		fw.act()
	}
}

func (fw *faultWriter) Write(b []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if fw.err != nil {
		return 0, fw.err
	}
	n := 0
	if !fw.acted {
		if room := fw.cut - fw.written; int64(len(b)) >= room {
			k, err := fw.ResponseWriter.Write(b[:room])
			n += k
			fw.written += int64(k)
			if err != nil {
				return n, err
			}
			b = b[room:]
			if err := fw.act(); err != nil {
				return n, err
			}
		}
	}
	k, err := fw.ResponseWriter.Write(b)
	fw.written += int64(k)
	return n + k, err
}

// finish applies the fault if the body ended before it could act.
func (fw *faultWriter) finish() {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if !fw.acted {
		fw.act()
	}
}

// act applies the fault where the body stands now.
func (fw *faultWriter) act() error {
	fw.acted = true
	rc := http.NewResponseController(fw.ResponseWriter)
	if err := rc.Flush(); err != nil {
		fw.err = err
		return err
	}
	if fw.h.f.Kind == FaultStallBody {
		if !fw.h.hold(fw.r.Context(), fw.h.f.Delay) {
			fw.err = errCut
			panic(http.ErrAbortHandler)
		}
		return nil
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		fw.err = err
		return err
	}
	if tc, ok := conn.(*net.TCPConn); ok && fw.h.f.Kind == FaultReset {
		// Discard unsent data and send RST instead of FIN.
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	fw.err = errCut
	return fw.err
}

// Op names an S3 operation, as Operation tells it from a request.
type Op string

// The operations Operation tells apart; OpOther is any other.
const (
	OpGetObject               Op = "GetObject"
	OpHeadObject              Op = "HeadObject"
	OpPutObject               Op = "PutObject"
	OpCopyObject              Op = "CopyObject"
	OpDeleteObject            Op = "DeleteObject"
	OpCreateMultipartUpload   Op = "CreateMultipartUpload"
	OpUploadPart              Op = "UploadPart"
	OpUploadPartCopy          Op = "UploadPartCopy"
	OpCompleteMultipartUpload Op = "CompleteMultipartUpload"
	OpAbortMultipartUpload    Op = "AbortMultipartUpload"
	OpListParts               Op = "ListParts"
	OpListObjectsV2           Op = "ListObjectsV2"
	OpListMultipartUploads    Op = "ListMultipartUploads"
	OpOther                   Op = "Other"
)

// Operation tells which S3 operation a path-style request is, from its
// method, path, query and the x-amz-copy-source header.
func Operation(r *http.Request) Op {
	q := r.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	if ObjectKey(r) == "" {
		switch {
		case r.Method == http.MethodGet && q.Get("list-type") == "2":
			return OpListObjectsV2
		case r.Method == http.MethodGet && has("uploads"):
			return OpListMultipartUploads
		}
		return OpOther
	}
	// Sub-resources such as ?tagging or ?acl are other operations.
	for _, sub := range []string{"acl", "tagging", "retention", "legal-hold", "attributes", "torrent", "restore", "select"} {
		if has(sub) {
			return OpOther
		}
	}
	copying := r.Header.Get("X-Amz-Copy-Source") != ""
	switch r.Method {
	case http.MethodGet:
		if has("uploadId") {
			return OpListParts
		}
		return OpGetObject
	case http.MethodHead:
		return OpHeadObject
	case http.MethodPut:
		switch {
		case has("partNumber") && has("uploadId") && copying:
			return OpUploadPartCopy
		case has("partNumber") && has("uploadId"):
			return OpUploadPart
		case copying:
			return OpCopyObject
		}
		return OpPutObject
	case http.MethodPost:
		switch {
		case has("uploads"):
			return OpCreateMultipartUpload
		case has("uploadId"):
			return OpCompleteMultipartUpload
		}
	case http.MethodDelete:
		if has("uploadId") {
			return OpAbortMultipartUpload
		}
		return OpDeleteObject
	}
	return OpOther
}

// ObjectKey returns the object key of a path-style request, or "" for a
// request on a bucket.
func ObjectKey(r *http.Request) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return key
}

// Match selects requests for a fault.
type Match func(r *http.Request) bool

// MatchMethod selects requests with this HTTP method.
func MatchMethod(method string) Match {
	return func(r *http.Request) bool { return r.Method == method }
}

// MatchKey selects requests on objects whose key contains substr.
func MatchKey(substr string) Match {
	return func(r *http.Request) bool {
		key := ObjectKey(r)
		return key != "" && strings.Contains(key, substr)
	}
}

// MatchOp selects requests that are one of ops.
func MatchOp(ops ...Op) Match {
	return func(r *http.Request) bool {
		op := Operation(r)
		for _, o := range ops {
			if o == op {
				return true
			}
		}
		return false
	}
}

// MatchAll selects requests that every one of ms selects.
func MatchAll(ms ...Match) Match {
	return func(r *http.Request) bool {
		for _, m := range ms {
			if m != nil && !m(r) {
				return false
			}
		}
		return true
	}
}
