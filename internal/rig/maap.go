package rig

import (
	"context"
	"encoding/json"
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

// MAAP endpoint paths served by the emulator.
const (
	MAAPCredentialsPath = "/api/members/self/awsAccess/workspaceBucket"
	MAAPConfigPath      = "/api/environment/config"
)

// Expiry layouts of the two MAAP response shapes.
const (
	MAAPExpiresLayout     = "2006-01-02T15:04:05-0700" // current nested shape, expires_at
	MAAPFlatExpiresLayout = "2006-01-02 15:04:05-0700" // older flat shape, aws_session_expiration
)

// minSTSDuration is the shortest lifetime MinIO's AssumeRole accepts.
const minSTSDuration = 900 * time.Second

// Mode selects how the MAAP emulator answers credential requests.
type Mode int

// MAAP emulator behaviours.
const (
	ModeOK            Mode = iota // ModeOK answers normally.
	ModeUnauthorized              // ModeUnauthorized answers 401 {"message":"Unauthorized"} to everyone.
	ModeUnavailable               // ModeUnavailable answers 503, as when the auth backend is down.
	ModeServerError               // ModeServerError answers 500 to authenticated requests, as when STS fails.
	ModeMalformedJSON             // ModeMalformedJSON answers 200 with a truncated JSON body to authenticated requests.
	ModeHTML                      // ModeHTML answers 200 with an HTML login page to everyone.
	ModeSlow                      // ModeSlow waits SlowDelay, or until the request is cancelled, then answers normally.
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeOK:
		return "ok"
	case ModeUnauthorized:
		return "unauthorized"
	case ModeUnavailable:
		return "unavailable"
	case ModeServerError:
		return "server-error"
	case ModeMalformedJSON:
		return "malformed-json"
	case ModeHTML:
		return "html"
	case ModeSlow:
		return "slow"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MAAPOptions configures StartMAAP.
type MAAPOptions struct {
	MinIO    *MinIO           // MinIO is the STS endpoint; its root credentials call AssumeRole.
	Proxy    *Proxy           // Proxy, if non-nil, is told the declared expiry of every key minted.
	Tickets  []string         // Tickets are the accepted proxy-ticket, bearer token and X-MAAP-API-Key values; with none, every request is 401.
	Paths    []AuthorizedPath // Paths are the authorized S3 paths; the first is the workspace.
	Lifetime time.Duration    // Lifetime is the declared lifetime written into the expiry; default 1h.
	Flat     bool             // Flat selects the older flat response shape.
}

// MAAP is a running emulator of the MAAP API's credentials endpoint.
type MAAP struct {
	URL  string // URL is the base URL, http://127.0.0.1:PORT.
	Host string // Host is 127.0.0.1:PORT, the value for MAAP_API_HOST.

	minio   *MinIO
	proxy   *Proxy
	tickets map[string]bool
	sts     *sts.Client
	srv     *http.Server

	mu        sync.Mutex // mu guards mode, slowDelay, paths, flat and lifetime.
	mode      Mode
	slowDelay time.Duration
	paths     []AuthorizedPath
	flat      bool
	lifetime  time.Duration

	issued atomic.Int64 // issued counts successful credential responses.

	closeOnce sync.Once
	closeErr  error // closeErr is the result of the first Close, set inside closeOnce.
}

// StartMAAP starts the MAAP emulator on a free loopback port.
func StartMAAP(opts MAAPOptions) (*MAAP, error) {
	if opts.MinIO == nil {
		return nil, errors.New("rig: MAAPOptions.MinIO is required")
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("maap listen: %w", err)
	}
	m := &MAAP{
		URL:       "http://" + ln.Addr().String(),
		Host:      ln.Addr().String(),
		minio:     opts.MinIO,
		proxy:     opts.Proxy,
		tickets:   make(map[string]bool),
		paths:     append([]AuthorizedPath(nil), opts.Paths...),
		flat:      opts.Flat,
		lifetime:  opts.Lifetime,
		slowDelay: 5 * time.Second,
		sts: sts.New(sts.Options{
			BaseEndpoint: aws.String(opts.MinIO.Endpoint),
			Region:       Region,
			Credentials:  credentials.NewStaticCredentialsProvider(opts.MinIO.RootUser, opts.MinIO.RootPassword, ""),
		}),
	}
	for _, t := range opts.Tickets {
		if t != "" {
			m.tickets[t] = true
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+MAAPCredentialsPath, m.serveCredentials)
	mux.HandleFunc("GET "+MAAPConfigPath, m.serveConfig)
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("rig: maap server stopped", "err", err)
		}
	}()
	slog.Info("rig: maap emulator started", "url", m.URL)
	return m, nil
}

// SetMode changes how credential requests are answered.
func (m *MAAP) SetMode(mode Mode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode = mode
}

// SetSlowDelay sets how long ModeSlow waits before answering (default 5s).
func (m *MAAP) SetSlowDelay(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slowDelay = d
}

// SetPaths replaces the authorized paths of credentials minted from now on.
func (m *MAAP) SetPaths(paths []AuthorizedPath) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paths = append([]AuthorizedPath(nil), paths...)
}

// SetFlat selects the older flat response shape (true) or the current
// nested one (false).
func (m *MAAP) SetFlat(flat bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flat = flat
}

// SetLifetime sets the declared lifetime of credentials minted from now on.
// Zero or less mints credentials that are already expired.
func (m *MAAP) SetLifetime(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lifetime = d
}

// Issued returns how many successful credential responses were sent.
func (m *MAAP) Issued() int64 { return m.issued.Load() }

// Close stops the emulator. It is safe to call more than once.
func (m *MAAP) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.srv.Close() })
	return m.closeErr
}

// Credentials are temporary credentials minted by the emulator.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time // Expires is the declared expiry, whole seconds in UTC.
}

// Mint mints credentials for paths with the given declared lifetime, without
// going through HTTP, and declares their expiry to the proxy if there is one.
// It does not count towards Issued.
func (m *MAAP) Mint(ctx context.Context, paths []AuthorizedPath, lifetime time.Duration) (Credentials, error) {
	dur := max(lifetime, minSTSDuration)
	in := &sts.AssumeRoleInput{
		// MinIO ignores the role ARN and session name for AssumeRole, but
		// the SDK requires them.
		RoleArn:         aws.String("arn:aws:iam::000000000000:role/maap-workspace"),
		RoleSessionName: aws.String("s3mount-rig"),
		DurationSeconds: aws.Int32(int32(dur.Round(time.Second) / time.Second)),
		Policy:          aws.String(SessionPolicy(paths)),
	}
	out, err := m.sts.AssumeRole(ctx, in)
	// A MinIO that has just started may not serve STS yet.
	for try := 0; err != nil && strings.Contains(err.Error(), "Server not initialized") && try < 50; try++ {
		select {
		case <-ctx.Done():
			return Credentials{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		out, err = m.sts.AssumeRole(ctx, in)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("sts AssumeRole: %w", err)
	}
	if out.Credentials == nil {
		return Credentials{}, errors.New("sts AssumeRole: no credentials in response")
	}
	c := Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
		// The wire formats carry whole seconds; truncating here makes the
		// proxy enforce exactly what the client reads.
		Expires: time.Now().Add(lifetime).UTC().Truncate(time.Second),
	}
	if m.proxy != nil {
		m.proxy.SetExpiry(c.AccessKeyID, c.Expires)
	}
	return c, nil
}

// authorized reports whether r carries an accepted ticket or token.
func (m *MAAP) authorized(r *http.Request) bool {
	if t := r.Header.Get("proxy-ticket"); t != "" && m.tickets[t] {
		return true
	}
	if t := r.Header.Get("X-MAAP-API-Key"); t != "" && m.tickets[t] {
		return true
	}
	if scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if t = strings.TrimSpace(t); t != "" && m.tickets[t] {
			return true
		}
	}
	return false
}

// serveCredentials answers GET /api/members/self/awsAccess/workspaceBucket.
func (m *MAAP) serveCredentials(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	mode, delay := m.mode, m.slowDelay
	paths := append([]AuthorizedPath(nil), m.paths...)
	flat, lifetime := m.flat, m.lifetime
	m.mu.Unlock()

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
		writeJSONMessage(w, http.StatusUnauthorized, "Unauthorized")
		return
	case ModeUnavailable:
		writeJSONMessage(w, http.StatusServiceUnavailable, "Authentication service unavailable")
		return
	case ModeHTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(loginPage))
		return
	}
	if !m.authorized(r) {
		writeJSONMessage(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	switch mode {
	case ModeServerError:
		writeJSONMessage(w, http.StatusInternalServerError, "Unable to generate temporary credentials: STS AssumeRole failed")
		return
	case ModeMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"credentials": {"aws_access_key_id": "ASIA`))
		return
	}
	if len(paths) == 0 {
		writeJSONMessage(w, http.StatusInternalServerError, "No authorized S3 paths")
		return
	}

	creds, err := m.Mint(r.Context(), paths, lifetime)
	if err != nil {
		slog.Error("rig: maap could not mint credentials", "err", err)
		writeJSONMessage(w, http.StatusInternalServerError, "Unable to generate temporary credentials")
		return
	}
	var body any
	if flat {
		body = flatResponse{
			BucketName:      paths[0].Bucket,
			BucketPrefix:    paths[0].prefix(),
			AccessKeyID:     creds.AccessKeyID,
			SecretAccessKey: creds.SecretAccessKey,
			SessionToken:    creds.SessionToken,
			Expiration:      creds.Expires.Format(MAAPFlatExpiresLayout),
		}
	} else {
		resp := nestedResponse{Credentials: nestedCredentials{
			AccessKeyID:     creds.AccessKeyID,
			SecretAccessKey: creds.SecretAccessKey,
			SessionToken:    creds.SessionToken,
			ExpiresAt:       creds.Expires.Format(MAAPExpiresLayout),
		}}
		for _, p := range paths {
			resp.Paths = append(resp.Paths, nestedPath{
				Bucket: p.Bucket, Prefix: p.prefix(), URI: p.URI(), Type: p.Type, Access: p.Access,
			})
		}
		body = resp
	}
	m.issued.Add(1)
	slog.Debug("rig: maap issued credentials", "akid", creds.AccessKeyID, "expires", creds.Expires, "flat", flat)
	writeJSON(w, http.StatusOK, body)
}

// serveConfig answers GET /api/environment/config with a small subset of the
// real configuration document. It needs no authentication.
func (m *MAAP) serveConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"endpoint": map[string]string{
			"member":                       "members/self",
			"workspace_bucket_credentials": strings.TrimPrefix(MAAPCredentialsPath, "/api/"),
		},
		"service": map[string]string{
			"maap_api_root": m.URL + "/api",
		},
	})
}

// nestedResponse is the current response shape.
type nestedResponse struct {
	Credentials nestedCredentials `json:"credentials"`
	Paths       []nestedPath      `json:"authorized_s3_paths"`
}

// nestedCredentials is the credentials object of the current shape.
type nestedCredentials struct {
	AccessKeyID     string `json:"aws_access_key_id"`
	SecretAccessKey string `json:"aws_secret_access_key"`
	SessionToken    string `json:"aws_session_token"`
	ExpiresAt       string `json:"expires_at"`
}

// nestedPath is one entry of authorized_s3_paths.
type nestedPath struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
	URI    string `json:"uri"`
	Type   string `json:"type"`
	Access string `json:"access"`
}

// flatResponse is the older flat response shape.
type flatResponse struct {
	BucketName      string `json:"aws_bucket_name"`
	BucketPrefix    string `json:"aws_bucket_prefix"`
	AccessKeyID     string `json:"aws_access_key_id"`
	SecretAccessKey string `json:"aws_secret_access_key"`
	SessionToken    string `json:"aws_session_token"`
	Expiration      string `json:"aws_session_expiration"`
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("rig: encode json", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeJSONMessage writes {"message": msg} with the given status.
func writeJSONMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// loginPage is what ModeHTML serves, like a single sign-on page put in front
// of the API by a misconfigured proxy.
const loginPage = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in to MAAP</title></head>
<body>
<h1>Sign in to MAAP</h1>
<form method="post" action="/login">
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button>
</form>
</body>
</html>
`
