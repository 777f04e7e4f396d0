package creds

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	edToken    = "edl-secret-user-token"
	edUser     = "jdoe"
	edPassword = "hunter2-secret-password"
	edBody     = `{"accessKeyId": "ASIAEDEXAMPLE", "secretAccessKey": "EDSECRETKEY", "sessionToken": "EDSESSIONTOKEN", "expiration": "2021-01-27 00:50:09+00:00"}`
)

// edSecrets are the strings no error may contain.
var edSecrets = []string{edToken, edPassword, "EDSECRETKEY", "EDSESSIONTOKEN", "fresh-token-"}

// isolateEarthdataEnv clears the Earthdata variables and points NETRC at a
// file that does not exist, so the host's settings do not leak in.
func isolateEarthdataEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"EARTHDATA_TOKEN", "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD", "EARTHDATA_LOGIN_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("NETRC", filepath.Join(t.TempDir(), "no-netrc"))
}

// edServer is a fake DAAC endpoint and Earthdata Login in one server.
type edServer struct {
	*httptest.Server
	mu sync.Mutex // guards the fields below
	// valid are the accepted tokens.
	valid map[string]bool
	// status, contentType and body, if status is set, answer every
	// authenticated /s3credentials request.
	status      int
	contentType string
	body        string
	// loginStatus and loginBody, if loginStatus is set, answer every token
	// request.
	loginStatus int
	loginBody   string
	// expirationDate is the token's expiration_date.
	expirationDate string
	// refuseAll refuses every token, even valid ones.
	refuseAll bool
	logins    int
	requests  int
	seen      http.Header
}

func newEDServer(t *testing.T) *edServer {
	t.Helper()
	s := &edServer{valid: map[string]bool{edToken: true}, expirationDate: "12/15/2099"}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *edServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/api/users/find_or_create_token":
		s.logins++
		if r.Method != http.MethodPost {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		if s.loginStatus != 0 {
			w.WriteHeader(s.loginStatus)
			w.Write([]byte(s.loginBody))
			return
		}
		u, p, ok := r.BasicAuth()
		if !ok || u != edUser || p != edPassword {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error": "invalid_credentials", "error_description": "Invalid user credentials"}`))
			return
		}
		tok := fmt.Sprintf("fresh-token-%d", s.logins)
		s.valid[tok] = true
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": %q, "token_type": "Bearer", "expiration_date": %q}`, tok, s.expirationDate)
	case "/s3credentials":
		s.requests++
		s.seen = r.Header.Clone()
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if scheme != "Bearer" || !s.valid[tok] || s.refuseAll {
			w.Header().Set("Location", s.URL+"/oauth/authorize?client_id=abc&response_type=code&state="+tok)
			w.WriteHeader(http.StatusFound)
			return
		}
		if s.status != 0 {
			w.Header().Set("Content-Type", s.contentType)
			w.WriteHeader(s.status)
			w.Write([]byte(s.body))
			return
		}
		// TEA has been seen answering JSON as text/html.
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(edBody))
	default:
		http.NotFound(w, r)
	}
}

func (s *edServer) set(f func(s *edServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *edServer) counts() (logins, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins, s.requests
}

func newTestEarthdata(t *testing.T, s *edServer, opts EarthdataOptions) *Earthdata {
	t.Helper()
	opts.URL = s.URL + "/s3credentials"
	opts.LoginURL = s.URL
	e, err := NewEarthdata(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEarthdataFetch(t *testing.T) {
	isolateEarthdataEnv(t)
	s := newEDServer(t)
	paths := []Path{
		{Bucket: "podaac-ops-cumulus-protected", Prefix: "MUR-JPL-L4-GLOB-v4.1", Access: ReadWrite, Kind: "daac"},
		{Bucket: "podaac-ops-cumulus-public", Prefix: ""},
	}
	e := newTestEarthdata(t, s, EarthdataOptions{Token: edToken, Paths: paths})
	if e.Name() != "NASA Earthdata" {
		t.Errorf("Name = %q", e.Name())
	}
	g, err := e.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	c := g.Credentials
	if c.AccessKeyID != "ASIAEDEXAMPLE" || c.SecretAccessKey != "EDSECRETKEY" || c.SessionToken != "EDSESSIONTOKEN" {
		t.Errorf("credentials = %+v", c)
	}
	if want := time.Date(2021, 1, 27, 0, 50, 9, 0, time.UTC); !c.CanExpire || !c.Expires.Equal(want) {
		t.Errorf("expiry = %v %v, want %v", c.CanExpire, c.Expires, want)
	}
	want := []Path{
		{Bucket: "podaac-ops-cumulus-protected", Prefix: "MUR-JPL-L4-GLOB-v4.1", Access: ReadOnly, Kind: "daac"},
		{Bucket: "podaac-ops-cumulus-public", Access: ReadOnly},
	}
	if len(g.Paths) != len(want) || g.Paths[0] != want[0] || g.Paths[1] != want[1] {
		t.Errorf("paths = %+v, want %+v", g.Paths, want)
	}
	if paths[0].Access != ReadWrite {
		t.Error("NewEarthdata modified the caller's paths")
	}
	s.mu.Lock()
	seen := s.seen
	s.mu.Unlock()
	if got := seen.Get("Authorization"); got != "Bearer "+edToken {
		t.Errorf("Authorization = %q", got)
	}
	if got := seen.Get("app-name"); got != "s3mount" {
		t.Errorf("app-name = %q", got)
	}
	if ua := seen.Get("User-Agent"); !strings.HasPrefix(ua, "s3mount/") {
		t.Errorf("User-Agent = %q", ua)
	}
	if logins, _ := s.counts(); logins != 0 {
		t.Errorf("asked Earthdata Login %d times with a token given", logins)
	}
	// No paths: the grant says nothing about paths.
	g, err = newTestEarthdata(t, s, EarthdataOptions{Token: edToken}).Fetch(context.Background())
	if err != nil || g.Paths != nil {
		t.Errorf("Fetch without paths = %+v, %v; want nil paths", g.Paths, err)
	}
}

func TestEarthdataErrors(t *testing.T) {
	eula := `{"status_code": 403, "error_description": "EULA Acceptance Failure", "resolution_url": "https://urs.earthdata.nasa.gov/approve_app?client_id=abc&eula_id=xyz"}`
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		location    string // "LOGIN" is the login host
		want        []string
	}{
		{"login redirect", 302, "text/html", "", "LOGIN",
			[]string{"not signed in to Earthdata Login, or the token expired", "HTTP 302 to 127.0.0.1", "EARTHDATA_TOKEN", "~/.netrc", "machine 127.0.0.1"}},
		{"cumulus 307", 307, "text/html", "", "https://urs.earthdata.nasa.gov/oauth/authorize?client_id=x&state=" + edToken,
			[]string{"not signed in to Earthdata Login, or the token expired", "HTTP 307 to urs.earthdata.nasa.gov"}},
		{"other redirect", 301, "text/html", "", "https://elsewhere.example/s3credentials",
			[]string{"not signed in to Earthdata Login, or the token expired", "HTTP 301 to elsewhere.example"}},
		{"401", 401, "text/plain", "Unauthorized", "", []string{"not signed in to Earthdata Login, or the token expired", "HTTP 401", "EARTHDATA_TOKEN"}},
		{"eula", 403, "application/json", eula, "",
			[]string{"EULA Acceptance Failure", "https://urs.earthdata.nasa.gov/approve_app?client_id=abc&eula_id=xyz", "accept the EULA"}},
		{"eula as html", 403, "text/html", eula, "", []string{"EULA Acceptance Failure", "approve_app"}},
		{"403 html", 403, "text/html", "<!DOCTYPE html><html><body><h1>Forbidden</h1></body></html>", "",
			[]string{"HTTP 403", "no permission for this DAAC's data"}},
		{"424", 424, "application/json", `{"error": "AssumeRole failed"}`, "", []string{"HTTP 424", "backend failed", "AssumeRole failed"}},
		{"503", 503, "text/html", "<html>disabled</html>", "", []string{"HTTP 503", "disabled"}},
		{"500", 500, "text/plain", "boom", "", []string{"HTTP 500", "try again later", "boom"}},
		{"404", 404, "text/plain", "", "", []string{"HTTP 404", "check the DAAC"}},
		{"html", 200, "text/html", "<!DOCTYPE html><html><body>Sign in</body></html>", "", []string{"HTML page"}},
		{"malformed", 200, "application/json", `{"accessKeyId": "ASIA`, "", []string{"not valid JSON"}},
		{"empty object", 200, "application/json", `{}`, "", []string{"without an access key"}},
		{"bad expiry", 200, "application/json", strings.Replace(edBody, "2021-01-27 00:50:09+00:00", "later", 1), "", []string{"unrecognised expiry"}},
		{"echoed token", 500, "text/plain", "bad token " + edToken, "", []string{"bad token [redacted]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEarthdataEnv(t)
			var s *httptest.Server
			s = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch tt.location {
				case "":
				case "LOGIN":
					w.Header().Set("Location", s.URL+"/oauth/authorize?client_id=abc&state="+edToken)
				default:
					w.Header().Set("Location", tt.location)
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer s.Close()
			e, err := NewEarthdata(EarthdataOptions{URL: s.URL + "/s3credentials", LoginURL: s.URL, Token: edToken})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.Fetch(context.Background())
			if err == nil {
				t.Fatal("Fetch succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Fetch error = %q, want it to contain %q", err, w)
				}
			}
			noSecrets(t, err, edSecrets...)
		})
	}
}

func TestEarthdataTokenFromPassword(t *testing.T) {
	isolateEarthdataEnv(t)
	s := newEDServer(t)
	e := newTestEarthdata(t, s, EarthdataOptions{Username: edUser, Password: edPassword})
	ctx := context.Background()
	if _, err := e.Fetch(ctx); err != nil {
		t.Fatalf("first Fetch: %v", err)
	}
	if _, err := e.Fetch(ctx); err != nil {
		t.Fatalf("second Fetch: %v", err)
	}
	if logins, requests := s.counts(); logins != 1 || requests != 2 {
		t.Errorf("logins, requests = %d, %d; want the token fetched once and cached", logins, requests)
	}

	// The token is revoked: the endpoint redirects to sign in, and the
	// source gets a new token once.
	s.set(func(s *edServer) { s.valid = map[string]bool{} })
	if _, err := e.Fetch(ctx); err != nil {
		t.Fatalf("Fetch after revocation: %v", err)
	}
	if logins, requests := s.counts(); logins != 2 || requests != 4 {
		t.Errorf("logins, requests = %d, %d; want 2, 4", logins, requests)
	}

	// Every token is refused: one new token, then a clear error.
	s.set(func(s *edServer) { s.refuseAll = true })
	_, err := e.Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), "not signed in to Earthdata Login, or the token expired") ||
		!strings.Contains(err.Error(), "even with a token just obtained") {
		t.Errorf("Fetch with every token refused = %v", err)
	}
	if logins, requests := s.counts(); logins != 3 || requests != 6 {
		t.Errorf("logins, requests = %d, %d; want 3, 6 (one retry)", logins, requests)
	}
	noSecrets(t, err, edSecrets...)
}

func TestEarthdataEnvTokenRenewedWithPassword(t *testing.T) {
	isolateEarthdataEnv(t)
	t.Setenv("EARTHDATA_TOKEN", "stale-env-token")
	t.Setenv("EARTHDATA_USERNAME", edUser)
	t.Setenv("EARTHDATA_PASSWORD", edPassword)
	s := newEDServer(t)
	e := newTestEarthdata(t, s, EarthdataOptions{})
	if _, err := e.Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if logins, requests := s.counts(); logins != 1 || requests != 2 {
		t.Errorf("logins, requests = %d, %d; want 1, 2", logins, requests)
	}
	// Without a password, the refused token is an error at once.
	t.Setenv("EARTHDATA_USERNAME", "")
	t.Setenv("EARTHDATA_PASSWORD", "")
	e = newTestEarthdata(t, s, EarthdataOptions{})
	_, err := e.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not signed in to Earthdata Login, or the token expired") ||
		!strings.Contains(err.Error(), "set a fresh EARTHDATA_TOKEN") {
		t.Errorf("Fetch = %v", err)
	}
	noSecrets(t, err, "stale-env-token")
}

func TestEarthdataExpiredTokenDate(t *testing.T) {
	isolateEarthdataEnv(t)
	s := newEDServer(t)
	s.set(func(s *edServer) { s.expirationDate = "01/02/2000" })
	e := newTestEarthdata(t, s, EarthdataOptions{Username: edUser, Password: edPassword})
	for range 2 {
		if _, err := e.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if logins, _ := s.counts(); logins != 2 {
		t.Errorf("logins = %d, want a new token for each fetch once the token's date has passed", logins)
	}
}

func TestEarthdataLoginErrors(t *testing.T) {
	tests := []struct {
		name     string
		password string
		status   int
		body     string
		want     []string
	}{
		{"wrong password", "wrong-secret-password", 0, "", []string{"rejected the username \"jdoe\"", "HTTP 401", "the username and password given", "Invalid user credentials"}},
		{"html", edPassword, 200, "<html><body>login</body></html>", []string{"HTML page"}},
		{"no token", edPassword, 200, `{"token_type": "Bearer"}`, []string{"without a token"}},
		{"500", edPassword, 500, "down", []string{"could not issue a user token (HTTP 500)"}},
		{"403", edPassword, 403, `{"error": "max_token_limit", "error_description": "too many tokens"}`, []string{"HTTP 403", "too many tokens"}},
		{"redirect", edPassword, 302, "", []string{"redirected (HTTP 302)", "EARTHDATA_LOGIN_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEarthdataEnv(t)
			s := newEDServer(t)
			s.set(func(s *edServer) { s.loginStatus, s.loginBody = tt.status, tt.body })
			e := newTestEarthdata(t, s, EarthdataOptions{Username: edUser, Password: tt.password})
			_, err := e.Fetch(context.Background())
			if err == nil {
				t.Fatal("Fetch succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Fetch error = %q, want it to contain %q", err, w)
				}
			}
			noSecrets(t, err, append(edSecrets, tt.password, base64.StdEncoding.EncodeToString([]byte(edUser+":"+tt.password)))...)
		})
	}
}

func TestEarthdataUnreachable(t *testing.T) {
	isolateEarthdataEnv(t)
	s := newEDServer(t)
	e := newTestEarthdata(t, s, EarthdataOptions{Token: edToken})
	s.Close()
	_, err := e.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach the NASA Earthdata credentials endpoint") {
		t.Errorf("Fetch error = %v, want an unreachable error", err)
	}
	noSecrets(t, err, edSecrets...)
}

func TestNewEarthdata(t *testing.T) {
	dir := t.TempDir()
	netrc := filepath.Join(dir, "netrc")
	if err := os.WriteFile(netrc, []byte("machine urs.earthdata.nasa.gov login nuser password npass\nmachine 127.0.0.1 login luser password lpass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	onlyLogin := filepath.Join(dir, "onlylogin")
	if err := os.WriteFile(onlyLogin, []byte("default login someone\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		env          map[string]string
		opts         EarthdataOptions
		wantErr      string
		wantURL      string
		user, pass   string
		token        string
		wantLoginURL string
	}{
		{name: "daac", env: map[string]string{"EARTHDATA_TOKEN": "t"}, opts: EarthdataOptions{DAAC: "PO.DAAC"},
			wantURL: "https://archive.podaac.earthdata.nasa.gov/s3credentials", token: "t", wantLoginURL: "https://urs.earthdata.nasa.gov"},
		{name: "daac with space", env: map[string]string{"EARTHDATA_TOKEN": "t"}, opts: EarthdataOptions{DAAC: "LP DAAC"},
			wantURL: "https://data.lpdaac.earthdatacloud.nasa.gov/s3credentials", token: "t"},
		{name: "url wins", env: map[string]string{"EARTHDATA_TOKEN": "t"}, opts: EarthdataOptions{DAAC: "nsidc", URL: "https://x.example/s3credentials"},
			wantURL: "https://x.example/s3credentials", token: "t"},
		{name: "unknown daac", env: map[string]string{"EARTHDATA_TOKEN": "t"}, opts: EarthdataOptions{DAAC: "nope"}, wantErr: `unknown DAAC "nope": use one of asdc, asf,`},
		{name: "no endpoint", env: map[string]string{"EARTHDATA_TOKEN": "t"}, wantErr: "needs a credentials endpoint"},
		{name: "bad url", env: map[string]string{"EARTHDATA_TOKEN": "t"}, opts: EarthdataOptions{URL: "ftp://x/s3credentials"}, wantErr: "not an http(s) URL"},
		{name: "nothing to sign in with", opts: EarthdataOptions{DAAC: "asf"}, wantErr: "set EARTHDATA_TOKEN"},
		{name: "env user", env: map[string]string{"EARTHDATA_USERNAME": "u", "EARTHDATA_PASSWORD": "p", "NETRC": netrc}, opts: EarthdataOptions{DAAC: "asf"},
			user: "u", pass: "p"},
		{name: "netrc", env: map[string]string{"NETRC": netrc}, opts: EarthdataOptions{DAAC: "asf"}, user: "nuser", pass: "npass"},
		{name: "netrc for login host", env: map[string]string{"NETRC": netrc, "EARTHDATA_LOGIN_URL": "http://127.0.0.1:9/"}, opts: EarthdataOptions{DAAC: "asf"},
			user: "luser", pass: "lpass", wantLoginURL: "http://127.0.0.1:9"},
		{name: "netrc without password", env: map[string]string{"NETRC": onlyLogin}, opts: EarthdataOptions{DAAC: "asf"}, wantErr: "set EARTHDATA_TOKEN"},
		{name: "netrc is a directory", env: map[string]string{"NETRC": dir}, opts: EarthdataOptions{DAAC: "asf"}, wantErr: "reading " + dir},
		{name: "username without password", env: map[string]string{"EARTHDATA_USERNAME": "u"}, opts: EarthdataOptions{DAAC: "asf"}, wantErr: `username "u" has no password`},
		{name: "options win", env: map[string]string{"EARTHDATA_USERNAME": "u", "EARTHDATA_PASSWORD": "p", "EARTHDATA_TOKEN": "envtok"},
			opts: EarthdataOptions{DAAC: "asf", Token: "opttok", Username: "ou", Password: "op"}, user: "ou", pass: "op", token: "opttok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEarthdataEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			e, err := NewEarthdata(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewEarthdata error = %v, want %q", err, tt.wantErr)
				}
				noSecrets(t, err, "npass", "lpass")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantURL != "" && e.URL() != tt.wantURL {
				t.Errorf("URL = %q, want %q", e.URL(), tt.wantURL)
			}
			if tt.wantLoginURL != "" && e.login.String() != tt.wantLoginURL {
				t.Errorf("login URL = %q, want %q", e.login, tt.wantLoginURL)
			}
			if e.username != tt.user || e.password != tt.pass || e.token != tt.token {
				t.Errorf("username, password, token = %q, %q, %q; want %q, %q, %q", e.username, e.password, e.token, tt.user, tt.pass, tt.token)
			}
		})
	}
}

func TestDAACs(t *testing.T) {
	want := []string{"asdc", "asf", "gesdisc", "ghrc", "laads", "lpdaac", "nsidc", "obdaac", "ornl", "podaac"}
	got := DAACNames()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("DAACNames = %v, want %v", got, want)
	}
	for k, host := range DAACs {
		if strings.ContainsAny(host, "/:") || !strings.Contains(host, ".") {
			t.Errorf("DAACs[%q] = %q is not a host", k, host)
		}
	}
}

func TestParseNetrc(t *testing.T) {
	const m = "urs.earthdata.nasa.gov"
	tests := []struct {
		name       string
		data       string
		user, pass string
		ok         bool
	}{
		{"one line", "machine urs.earthdata.nasa.gov login jdoe password s3cr3t\n", "jdoe", "s3cr3t", true},
		{"several lines", "machine urs.earthdata.nasa.gov\n    login jdoe\n    password s3cr3t\n", "jdoe", "s3cr3t", true},
		{"password first", "machine urs.earthdata.nasa.gov password s3cr3t login jdoe", "jdoe", "s3cr3t", true},
		{"among others", "machine a.example login a password pa\nmachine urs.earthdata.nasa.gov login jdoe password s3cr3t\nmachine b.example login b password pb\n", "jdoe", "s3cr3t", true},
		{"other machines only", "machine a.example login a password pa\n", "", "", false},
		{"default", "machine a.example login a password pa\ndefault login d password pd\n", "d", "pd", true},
		{"machine beats default", "default login d password pd\nmachine urs.earthdata.nasa.gov login jdoe password s3cr3t\n", "jdoe", "s3cr3t", true},
		{"comments", "# my netrc\nmachine urs.earthdata.nasa.gov # the login host\n  login jdoe # me\n  password s3cr3t\n", "jdoe", "s3cr3t", true},
		{"hash inside password", "machine urs.earthdata.nasa.gov login jdoe password pa#ss", "jdoe", "pa#ss", true},
		{"quoted password", `machine urs.earthdata.nasa.gov login jdoe password "with space\"q"`, "jdoe", `with space"q`, true},
		{"account ignored", "machine urs.earthdata.nasa.gov login jdoe account acct password s3cr3t", "jdoe", "s3cr3t", true},
		{"macdef skipped", "macdef init\nmachine urs.earthdata.nasa.gov login evil password evil\n\nmachine urs.earthdata.nasa.gov login jdoe password s3cr3t\n", "jdoe", "s3cr3t", true},
		{"case-insensitive host", "machine URS.Earthdata.NASA.gov login jdoe password s3cr3t", "jdoe", "s3cr3t", true},
		{"no password", "machine urs.earthdata.nasa.gov login jdoe", "jdoe", "", false},
		{"first entry wins", "machine urs.earthdata.nasa.gov login one password p1\nmachine urs.earthdata.nasa.gov login two password p2", "one", "p1", true},
		{"tabs and crlf", "machine\turs.earthdata.nasa.gov\r\n\tlogin\tjdoe\r\n\tpassword\ts3cr3t\r\n", "jdoe", "s3cr3t", true},
		{"truncated", "machine urs.earthdata.nasa.gov login", "", "", false},
		{"empty", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, pass, ok := parseNetrc([]byte(tt.data), m)
			if user != tt.user || pass != tt.pass || ok != tt.ok {
				t.Errorf("parseNetrc = %q, %q, %v; want %q, %q, %v", user, pass, ok, tt.user, tt.pass, tt.ok)
			}
		})
	}
}

func TestParseS3URI(t *testing.T) {
	tests := []struct {
		in      string
		want    Path
		wantErr bool
	}{
		{"s3://podaac-ops-cumulus-protected/MUR-JPL-L4-GLOB-v4.1/", Path{Bucket: "podaac-ops-cumulus-protected", Prefix: "MUR-JPL-L4-GLOB-v4.1"}, false},
		{"s3://b/a/b/c", Path{Bucket: "b", Prefix: "a/b/c"}, false},
		{"s3://b", Path{Bucket: "b"}, false},
		{"s3://b/", Path{Bucket: "b"}, false},
		{" s3://b/p ", Path{Bucket: "b", Prefix: "p"}, false},
		{"s3://", Path{}, true},
		{"s3:///p", Path{}, true},
		{"https://b/p", Path{}, true},
		{"b/p", Path{}, true},
		{"s3://b/a/../c", Path{}, true},
		{"s3://b/a//c", Path{}, true},
	}
	for _, tt := range tests {
		got, err := ParseS3URI(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseS3URI(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.Access != ReadOnly {
			t.Errorf("ParseS3URI(%q) access = %v", tt.in, got.Access)
		}
	}
}

func FuzzParseNetrc(f *testing.F) {
	f.Add([]byte("machine urs.earthdata.nasa.gov login jdoe password s3cr3t\n"))
	f.Add([]byte("default login d password pd\nmacdef x\nfoo\n\n"))
	f.Add([]byte(`machine "urs.earthdata.nasa.gov" password "a\`))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseNetrc(data, "urs.earthdata.nasa.gov")
	})
}
