package rig

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// EODH emulator constants.
const (
	// EODHDefaultBucket is the production workspaces bucket.
	EODHDefaultBucket = "workspaces-eodhp"
	// EODHExpiresLayout is the expiration layout of the s3-tokens answer.
	EODHExpiresLayout = time.RFC3339
)

// The plain-text 401 bodies of the EO DataHub workspaces API.
const (
	EODHErrHeaderMissing = "authorization header missing"
	EODHErrTokenFormat   = "invalid token format"
	EODHErrInvalidJWT    = "invalid bearer jwt token"
)

// EODHCredentialsPath returns the s3-tokens path of workspace, unescaped.
func EODHCredentialsPath(workspace string) string {
	return "/api/workspaces/" + workspace + "/me/s3-tokens"
}

// newMinter returns a MAAP value with no server, used only for its Mint:
// AssumeRole against m with a session policy, expiry declared to proxy.
func newMinter(m *MinIO, proxy *Proxy) *MAAP {
	return &MAAP{
		minio: m,
		proxy: proxy,
		sts: sts.New(sts.Options{
			BaseEndpoint: aws.String(m.Endpoint),
			Region:       Region,
			Credentials:  credentials.NewStaticCredentialsProvider(m.RootUser, m.RootPassword, ""),
		}),
	}
}

// EODHOptions configures StartEODH.
type EODHOptions struct {
	MinIO     *MinIO        // MinIO is the STS endpoint; its root credentials call AssumeRole.
	Proxy     *Proxy        // Proxy, if non-nil, is told the declared expiry of every key minted.
	Tokens    []string      // Tokens are the accepted workspace API tokens; with none, every token is invalid.
	Workspace string        // Workspace is the workspace name; required.
	Bucket    string        // Bucket is the workspaces bucket; default workspaces-eodhp.
	Lifetime  time.Duration // Lifetime is the declared lifetime written into the expiry; default 1h.
}

// EODH is a running emulator of the EO DataHub workspaces API's s3-tokens
// endpoint, POST /api/workspaces/{workspace}/me/s3-tokens. It answers
// {"accessKeyId","secretAccessKey","sessionToken","expiration"} with an
// RFC 3339 expiration, and the real plain-text 401 errors. Credentials are
// read-write on Bucket/Workspace/.
type EODH struct {
	URL string // URL is the base URL, http://127.0.0.1:PORT, the value for EODH_API_URL.

	minter    *MAAP
	tokens    map[string]bool
	workspace string
	bucket    string
	srv       *http.Server

	mu        sync.Mutex // mu guards mode, slowDelay and lifetime.
	mode      Mode
	slowDelay time.Duration
	lifetime  time.Duration

	issued atomic.Int64 // issued counts successful credential responses.

	closeOnce sync.Once
	closeErr  error // closeErr is the result of the first Close, set inside closeOnce.
}

// StartEODH starts the EO DataHub emulator on a free loopback port.
func StartEODH(opts EODHOptions) (*EODH, error) {
	if opts.MinIO == nil {
		return nil, errors.New("rig: EODHOptions.MinIO is required")
	}
	if opts.Workspace == "" || strings.ContainsAny(opts.Workspace, "/") {
		return nil, fmt.Errorf("rig: EODHOptions.Workspace %q is not a workspace name", opts.Workspace)
	}
	if opts.Bucket == "" {
		opts.Bucket = EODHDefaultBucket
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("eodh listen: %w", err)
	}
	e := &EODH{
		URL:       "http://" + ln.Addr().String(),
		minter:    newMinter(opts.MinIO, opts.Proxy),
		tokens:    map[string]bool{},
		workspace: opts.Workspace,
		bucket:    opts.Bucket,
		lifetime:  opts.Lifetime,
		slowDelay: 5 * time.Second,
	}
	for _, t := range opts.Tokens {
		if t != "" {
			e.tokens[t] = true
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/workspaces/{ws}/me/s3-tokens", e.serveCredentials)
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("rig: eodh server stopped", "err", err)
		}
	}()
	slog.Info("rig: eodh emulator started", "url", e.URL, "workspace", e.workspace)
	return e, nil
}

// Path returns the workspace path the credentials authorize.
func (e *EODH) Path() AuthorizedPath {
	return AuthorizedPath{Bucket: e.bucket, Prefix: e.workspace, Type: TypeWorkspace, Access: AccessReadWrite}
}

// CredentialsURL returns the full s3-tokens URL of the workspace.
func (e *EODH) CredentialsURL() string { return e.URL + EODHCredentialsPath(e.workspace) }

// SetMode changes how credential requests are answered. ModeUnauthorized
// answers 401 "invalid bearer jwt token" to everyone; ModeServerError
// answers 500 as when STS fails, which is also what an expired token gets.
func (e *EODH) SetMode(mode Mode) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mode = mode
}

// SetSlowDelay sets how long ModeSlow waits before answering (default 5s).
func (e *EODH) SetSlowDelay(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.slowDelay = d
}

// SetLifetime sets the declared lifetime of credentials minted from now on.
func (e *EODH) SetLifetime(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lifetime = d
}

// Issued returns how many successful credential responses were sent.
func (e *EODH) Issued() int64 { return e.issued.Load() }

// Close stops the emulator. It is safe to call more than once.
func (e *EODH) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.srv.Close() })
	return e.closeErr
}

// eodhResponse is the s3-tokens answer.
type eodhResponse struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	Expiration      string `json:"expiration"`
}

// writeText writes a plain-text body with the given status, as the EODH
// workspaces API does for its errors.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// serveCredentials answers POST /api/workspaces/{ws}/me/s3-tokens.
func (e *EODH) serveCredentials(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	mode, delay, lifetime := e.mode, e.slowDelay, e.lifetime
	e.mu.Unlock()

	if mode == ModeSlow {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch mode {
	case ModeUnauthorized:
		writeText(w, http.StatusUnauthorized, EODHErrInvalidJWT)
		return
	case ModeUnavailable:
		writeText(w, http.StatusServiceUnavailable, "service unavailable")
		return
	case ModeHTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(loginPage))
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		writeText(w, http.StatusUnauthorized, EODHErrHeaderMissing)
		return
	}
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		writeText(w, http.StatusUnauthorized, EODHErrTokenFormat)
		return
	}
	if !e.tokens[strings.TrimSpace(token)] {
		writeText(w, http.StatusUnauthorized, EODHErrInvalidJWT)
		return
	}
	if r.PathValue("ws") != e.workspace {
		writeText(w, http.StatusNotFound, "workspace not found")
		return
	}
	switch mode {
	case ModeServerError:
		writeText(w, http.StatusInternalServerError, "failed to assume role: ExpiredTokenException")
		return
	case ModeMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"accessKeyId": "ASIA`))
		return
	}
	creds, err := e.minter.Mint(r.Context(), []AuthorizedPath{e.Path()}, lifetime)
	if err != nil {
		slog.Error("rig: eodh could not mint credentials", "err", err)
		writeText(w, http.StatusInternalServerError, "failed to assume role")
		return
	}
	e.issued.Add(1)
	slog.Debug("rig: eodh issued credentials", "akid", creds.AccessKeyID, "expires", creds.Expires)
	writeJSON(w, http.StatusOK, eodhResponse{
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey,
		SessionToken:    creds.SessionToken,
		Expiration:      creds.Expires.Format(EODHExpiresLayout),
	})
}
