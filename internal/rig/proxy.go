package rig

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FaultFunc handles a request in place of the proxy. It returns true if it
// wrote a response, and false to let the proxy go on as usual.
type FaultFunc func(w http.ResponseWriter, r *http.Request) bool

// Proxy is a reverse proxy in front of MinIO that rejects requests signed
// with an access key past the expiry declared for it by SetExpiry.
//
// MinIO cannot mint credentials that live less than 15 minutes; the proxy
// lets tests declare much shorter lifetimes and see them enforced with the
// same ExpiredToken error AWS S3 gives.
//
// The proxy also injects faults: errors, dropped and short responses,
// latency and stalls (see Inject), or whatever a function set with SetFault
// does.
type Proxy struct {
	URL string // URL is the proxy's address, http://127.0.0.1:PORT.

	srv       *http.Server
	rp        *httputil.ReverseProxy
	transport *http.Transport

	mu     sync.Mutex           // mu guards expiry, fault and faults.
	expiry map[string]time.Time // expiry maps an access key ID to its declared expiry.
	fault  FaultFunc            // fault, if set, sees every request first.
	faults []*FaultHandle       // faults are the injected faults, in order; never modified in place.
	done   chan struct{}        // done is closed by Close, ending stalls.

	requests atomic.Int64 // requests counts requests forwarded or rejected.
	rejected atomic.Int64 // rejected counts requests answered ExpiredToken.

	closeOnce sync.Once
	closeErr  error // closeErr is the result of the first Close, set inside closeOnce.
}

// StartProxy starts a proxy on a free loopback port that forwards to target,
// an http URL such as MinIO.Endpoint.
func StartProxy(target string) (*Proxy, error) {
	tu, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("proxy target: %w", err)
	}
	if tu.Scheme != "http" && tu.Scheme != "https" || tu.Host == "" {
		return nil, fmt.Errorf("proxy target %q is not an http URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &Proxy{
		URL:    "http://" + ln.Addr().String(),
		expiry: make(map[string]time.Time),
		done:   make(chan struct{}),
		transport: &http.Transport{
			Proxy:               nil, // never route loopback traffic through $HTTP_PROXY
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// Pass bodies through untouched: transparent gzip would change
			// what the client sees.
			DisableCompression: true,
		},
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(tu)
			// SigV4 signs the Host header: MinIO must see the one the
			// client signed, i.e. the proxy's address.
			r.Out.Host = r.In.Host
		},
		Transport:     p.transport,
		FlushInterval: -1, // stream responses as they come; objects can be huge
		ErrorLog:      slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				// The client went away; nobody is left to answer.
				return
			}
			slog.Warn("rig: proxy upstream error", "method", r.Method, "path", r.URL.Path, "err", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("rig: proxy server stopped", "err", err)
		}
	}()
	slog.Info("rig: proxy started", "url", p.URL, "target", target)
	return p, nil
}

// SetExpiry declares that credentials with this access key ID expire at t.
func (p *Proxy) SetExpiry(accessKeyID string, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expiry[accessKeyID] = t
}

// SetFault installs f to see every request before the proxy does; nil
// removes it. If f returns true the request counts as handled by the fault.
func (p *Proxy) SetFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
}

// Rejected returns how many requests were answered ExpiredToken.
func (p *Proxy) Rejected() int64 { return p.rejected.Load() }

// Requests returns how many requests were forwarded or rejected in total.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Close stops the proxy, cutting off requests in flight. It is safe to call
// more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		close(p.done)
		p.closeErr = p.srv.Close()
		p.transport.CloseIdleConnections()
	})
	return p.closeErr
}

// ServeHTTP applies faults, rejects requests signed with an expired key and
// forwards the rest to the target.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	fault := p.fault
	p.mu.Unlock()
	if fault != nil && fault(w, r) {
		return
	}
	if h := p.pickFault(r); h != nil {
		fw, done := p.serveFault(h, w, r)
		if done {
			return
		}
		if bf, ok := fw.(*faultWriter); ok {
			p.forward(bf, r)
			bf.finish()
			return
		}
	}
	p.forward(w, r)
}

// forward rejects a request signed with an expired key and forwards any
// other to the target.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	if akid := AccessKeyID(r); akid != "" {
		p.mu.Lock()
		exp, ok := p.expiry[akid]
		p.mu.Unlock()
		if ok && time.Now().After(exp) {
			p.rejected.Add(1)
			slog.Debug("rig: proxy rejected expired key", "akid", akid, "expired", exp, "method", r.Method, "path", r.URL.Path)
			WriteS3Error(w, http.StatusBadRequest, "ExpiredToken", "The provided token has expired.")
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

// AccessKeyID returns the access key ID a SigV4 request is signed with, from
// the Authorization header or, for presigned URLs, the X-Amz-Credential query
// parameter. It returns "" for unsigned requests.
func AccessKeyID(r *http.Request) string {
	const algo = "AWS4-HMAC-SHA256 "
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, algo) {
		for _, part := range strings.Split(auth[len(algo):], ",") {
			if cred, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
				akid, _, _ := strings.Cut(cred, "/")
				return akid
			}
		}
		return ""
	}
	if cred := r.URL.Query().Get("X-Amz-Credential"); cred != "" {
		akid, _, _ := strings.Cut(cred, "/")
		return akid
	}
	return ""
}

// WriteS3Error writes an S3-style XML error response. Fault functions can use
// it to imitate S3 failures.
func WriteS3Error(w http.ResponseWriter, status int, code, message string) {
	reqID := strings.ToUpper(randomHex(8))
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>")
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(message))
	b.WriteString("</Message><RequestId>")
	b.WriteString(reqID)
	b.WriteString("</RequestId></Error>")
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", fmt.Sprint(b.Len()))
	h.Set("X-Amz-Request-Id", reqID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}
