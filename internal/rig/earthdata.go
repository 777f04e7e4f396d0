package rig

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Earthdata emulator paths and layouts.
const (
	EarthdataCredentialsPath = "/s3credentials"
	EarthdataTokenPath       = "/api/users/find_or_create_token"
	EarthdataAuthorizePath   = "/oauth/authorize"
	// EarthdataExpiresLayout writes TEA's expiration, 2021-01-27 00:50:09+00:00.
	EarthdataExpiresLayout = "2006-01-02 15:04:05-07:00"
	// EarthdataTokenDateLayout writes Earthdata Login's expiration_date.
	EarthdataTokenDateLayout = "01/02/2006"
	// EarthdataEULAResolutionURL is the resolution_url of EarthdataEULA.
	EarthdataEULAResolutionURL = "https://urs.earthdata.nasa.gov/approve_app?client_id=rig-tea&eula_id=rig-eula"
)

// EarthdataMode selects how the DAAC endpoint answers.
type EarthdataMode int

// Earthdata emulator behaviours.
const (
	EarthdataOK           EarthdataMode = iota // EarthdataOK answers normally, as application/json.
	EarthdataJSONAsHTML                        // EarthdataJSONAsHTML answers credentials as text/html, as TEA has been seen to.
	EarthdataEULA                              // EarthdataEULA answers 403 JSON with a resolution_url to signed-in requests.
	EarthdataForbidden                         // EarthdataForbidden answers a 403 HTML page to signed-in requests.
	EarthdataBackendError                      // EarthdataBackendError answers 424, a Cumulus backend failure, to signed-in requests.
	EarthdataDisabled                          // EarthdataDisabled answers 503 to everyone.
	EarthdataRedirectAll                       // EarthdataRedirectAll redirects every request to sign in, valid tokens too.
)

// String returns the mode's name.
func (m EarthdataMode) String() string {
	switch m {
	case EarthdataOK:
		return "ok"
	case EarthdataJSONAsHTML:
		return "json-as-html"
	case EarthdataEULA:
		return "eula"
	case EarthdataForbidden:
		return "forbidden"
	case EarthdataBackendError:
		return "backend-error"
	case EarthdataDisabled:
		return "disabled"
	case EarthdataRedirectAll:
		return "redirect-all"
	}
	return fmt.Sprintf("EarthdataMode(%d)", int(m))
}

// EarthdataOptions configures StartEarthdata.
type EarthdataOptions struct {
	MinIO    *MinIO           // MinIO is the STS endpoint; its root credentials call AssumeRole.
	Proxy    *Proxy           // Proxy, if non-nil, is told the declared expiry of every key minted.
	Username string           // Username and Password are the account the login service accepts.
	Password string           //
	Tokens   []string         // Tokens are user tokens accepted besides those the login service issues.
	Paths    []AuthorizedPath // Paths are the S3 paths the credentials open, always read-only.
	Lifetime time.Duration    // Lifetime is the declared lifetime written into the expiry; default 1h.
	// RedirectStatus is the status of the sign-in redirect: 302 as TEA
	// (default) or 307 as Cumulus.
	RedirectStatus int
}

// Earthdata is a running emulator of a DAAC's /s3credentials endpoint (TEA
// or Cumulus) and of the Earthdata Login token API, on two loopback ports so
// that the sign-in redirect points at a different host, as in production.
type Earthdata struct {
	URL            string // URL is the DAAC's base URL, http://127.0.0.1:PORT.
	CredentialsURL string // CredentialsURL is URL + /s3credentials.
	LoginURL       string // LoginURL is the Earthdata Login base URL, for EARTHDATA_LOGIN_URL.

	minter *MAAP
	paths  []AuthorizedPath
	user   string
	pass   string
	srv    *http.Server
	login  *http.Server

	mu       sync.Mutex      // mu guards the fields below.
	mode     EarthdataMode   // mode is how /s3credentials answers.
	lifetime time.Duration   // lifetime is the declared lifetime of minted credentials.
	redirect int             // redirect is the status of the sign-in redirect.
	tokens   map[string]bool // tokens are the accepted user tokens.
	current  string          // current is the token the login service hands out, "" until one is created.
	appName  string          // appName is the app-name header of the latest credentials request.
	agent    string          // agent is the User-Agent of the latest credentials request.

	issued       atomic.Int64 // issued counts successful credential responses.
	tokensIssued atomic.Int64 // tokensIssued counts tokens created by the login service.

	closeOnce sync.Once
	closeErr  error // closeErr is the result of the first Close, set inside closeOnce.
}

// StartEarthdata starts the DAAC endpoint and the login service on free
// loopback ports.
func StartEarthdata(opts EarthdataOptions) (_ *Earthdata, err error) {
	if opts.MinIO == nil {
		return nil, errors.New("rig: EarthdataOptions.MinIO is required")
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	if opts.RedirectStatus == 0 {
		opts.RedirectStatus = http.StatusFound
	}
	daacLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("earthdata listen: %w", err)
	}
	loginLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		daacLn.Close()
		return nil, fmt.Errorf("earthdata login listen: %w", err)
	}
	e := &Earthdata{
		URL:      "http://" + daacLn.Addr().String(),
		LoginURL: "http://" + loginLn.Addr().String(),
		minter:   newMinter(opts.MinIO, opts.Proxy),
		user:     opts.Username,
		pass:     opts.Password,
		lifetime: opts.Lifetime,
		redirect: opts.RedirectStatus,
		tokens:   map[string]bool{},
	}
	e.CredentialsURL = e.URL + EarthdataCredentialsPath
	for _, p := range opts.Paths {
		p.Access = AccessReadOnly
		e.paths = append(e.paths, p)
	}
	for _, t := range opts.Tokens {
		if t != "" {
			e.tokens[t] = true
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+EarthdataCredentialsPath, e.serveCredentials)
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	loginMux := http.NewServeMux()
	loginMux.HandleFunc("POST "+EarthdataTokenPath, e.serveToken)
	loginMux.HandleFunc("GET "+EarthdataAuthorizePath, e.serveAuthorize)
	e.login = &http.Server{Handler: loginMux, ReadHeaderTimeout: 10 * time.Second}
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{e.srv, daacLn}, {e.login, loginLn}} {
		go func() {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("rig: earthdata server stopped", "err", err)
			}
		}()
	}
	slog.Info("rig: earthdata emulator started", "url", e.URL, "login", e.LoginURL)
	return e, nil
}

// SetMode changes how credential requests are answered.
func (e *Earthdata) SetMode(mode EarthdataMode) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mode = mode
}

// SetLifetime sets the declared lifetime of credentials minted from now on.
func (e *Earthdata) SetLifetime(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lifetime = d
}

// RevokeTokens makes every user token invalid, as when they expire; the
// login service creates a new one on the next request.
func (e *Earthdata) RevokeTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens = map[string]bool{}
	e.current = ""
}

// Paths returns the paths the credentials open, all read-only.
func (e *Earthdata) Paths() []AuthorizedPath { return append([]AuthorizedPath(nil), e.paths...) }

// LastAppName returns the app-name header of the latest credentials request.
func (e *Earthdata) LastAppName() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.appName
}

// LastUserAgent returns the User-Agent of the latest credentials request.
func (e *Earthdata) LastUserAgent() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.agent
}

// Issued returns how many successful credential responses were sent.
func (e *Earthdata) Issued() int64 { return e.issued.Load() }

// TokensIssued returns how many user tokens the login service created.
func (e *Earthdata) TokensIssued() int64 { return e.tokensIssued.Load() }

// Close stops both servers. It is safe to call more than once.
func (e *Earthdata) Close() error {
	e.closeOnce.Do(func() { e.closeErr = errors.Join(e.srv.Close(), e.login.Close()) })
	return e.closeErr
}

// earthdataResponse is the /s3credentials answer.
type earthdataResponse struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	Expiration      string `json:"expiration"`
}

// serveCredentials answers GET /s3credentials.
func (e *Earthdata) serveCredentials(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	mode, lifetime, redirect := e.mode, e.lifetime, e.redirect
	e.appName, e.agent = r.Header.Get("app-name"), r.Header.Get("User-Agent")
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	signedIn := strings.EqualFold(scheme, "Bearer") && token != "" && e.tokens[strings.TrimSpace(token)]
	e.mu.Unlock()

	if mode == EarthdataDisabled {
		writeText(w, http.StatusServiceUnavailable, "S3 credentials are disabled on this endpoint")
		return
	}
	if !signedIn || mode == EarthdataRedirectAll {
		q := url.Values{
			"client_id":     {"rig-tea"},
			"response_type": {"code"},
			"redirect_uri":  {e.URL + "/login"},
			"state":         {EarthdataCredentialsPath},
		}
		w.Header().Set("Location", e.LoginURL+EarthdataAuthorizePath+"?"+q.Encode())
		w.WriteHeader(redirect)
		return
	}
	switch mode {
	case EarthdataEULA:
		writeJSON(w, http.StatusForbidden, map[string]any{
			"status_code":       http.StatusForbidden,
			"error_description": "EULA Acceptance Failure",
			"resolution_url":    EarthdataEULAResolutionURL,
		})
		return
	case EarthdataForbidden:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(forbiddenPage))
		return
	case EarthdataBackendError:
		writeJSON(w, http.StatusFailedDependency, map[string]string{"message": "Unable to get S3 credentials: STS AssumeRole failed"})
		return
	}
	creds, err := e.minter.Mint(r.Context(), e.paths, lifetime)
	if err != nil {
		slog.Error("rig: earthdata could not mint credentials", "err", err)
		writeJSON(w, http.StatusFailedDependency, map[string]string{"message": "Unable to get S3 credentials"})
		return
	}
	e.issued.Add(1)
	body := earthdataResponse{
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey,
		SessionToken:    creds.SessionToken,
		Expiration:      creds.Expires.Format(EarthdataExpiresLayout),
	}
	if mode == EarthdataJSONAsHTML {
		// The same JSON, labelled as HTML.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintf(w, `{"accessKeyId": %q, "secretAccessKey": %q, "sessionToken": %q, "expiration": %q}`,
			body.AccessKeyID, body.SecretAccessKey, body.SessionToken, body.Expiration)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// serveToken answers POST /api/users/find_or_create_token: the current user
// token for a correct username and password, created if there is none.
func (e *Earthdata) serveToken(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || e.user == "" || user != e.user || pass != e.pass {
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error":             "invalid_credentials",
			"error_description": "Invalid user credentials",
		})
		return
	}
	e.mu.Lock()
	if e.current == "" {
		e.current = "EDL-rig-" + randomHex(24)
		e.tokens[e.current] = true
		e.tokensIssued.Add(1)
	}
	token := e.current
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token":    token,
		"token_type":      "Bearer",
		"expiration_date": time.Now().Add(60 * 24 * time.Hour).UTC().Format(EarthdataTokenDateLayout),
	})
}

// serveAuthorize answers the sign-in page a browser would be sent to.
func (e *Earthdata) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(loginPage))
}

// forbiddenPage is what EarthdataForbidden serves.
const forbiddenPage = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Forbidden</title></head>
<body>
<h1>Forbidden</h1>
<p>You do not have permission to access this data.</p>
</body>
</html>
`
