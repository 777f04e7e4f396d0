package creds

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	eodhToken = "eodh-secret-api-token"
	eodhBody  = `{"accessKeyId": "ASIAEODHEXAMPLE", "secretAccessKey": "EODHSECRETKEY", "sessionToken": "EODHSESSIONTOKEN", "expiration": "2025-05-19T13:23:02Z"}`
)

// eodhPath is where the test servers expect workspace "my-ws".
const eodhPath = "/api/workspaces/my-ws/me/s3-tokens"

// eodhServer serves body with status and content type for POSTs to eodhPath
// and records the request it saw.
func eodhServer(t *testing.T, status int, contentType, body string, seen **http.Request) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.EscapedPath() != eodhPath || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if seen != nil {
			*seen = r.Clone(context.Background())
		}
		if status >= 300 && status < 400 {
			w.Header().Set("Location", "https://login.example.org/auth?token="+eodhToken)
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func newTestEODH(t *testing.T, base string, opts EODHOptions) *EODH {
	t.Helper()
	opts.BaseURL = base
	if opts.Workspace == "" {
		opts.Workspace = "my-ws"
	}
	if opts.Token == "" && opts.TokenFile == "" {
		opts.Token = eodhToken
	}
	e, err := NewEODH(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEODHFetch(t *testing.T) {
	for _, ctype := range []string{"application/json", "text/html"} {
		t.Run(ctype, func(t *testing.T) {
			var seen *http.Request
			s := eodhServer(t, 200, ctype, eodhBody, &seen)
			e := newTestEODH(t, s.URL+"/", EODHOptions{})
			if e.Name() != "EO DataHub" {
				t.Errorf("Name = %q", e.Name())
			}
			g, err := e.Fetch(context.Background())
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			c := g.Credentials
			if c.AccessKeyID != "ASIAEODHEXAMPLE" || c.SecretAccessKey != "EODHSECRETKEY" || c.SessionToken != "EODHSESSIONTOKEN" {
				t.Errorf("credentials = %+v", c)
			}
			if want := time.Date(2025, 5, 19, 13, 23, 2, 0, time.UTC); !c.CanExpire || !c.Expires.Equal(want) {
				t.Errorf("expiry = %v %v, want %v", c.CanExpire, c.Expires, want)
			}
			want := Path{Bucket: "workspaces-eodhp", Prefix: "my-ws", Access: ReadWrite, Kind: "workspace"}
			if len(g.Paths) != 1 || g.Paths[0] != want {
				t.Errorf("paths = %+v, want [%+v]", g.Paths, want)
			}
			if got := seen.Header.Get("Authorization"); got != "Bearer "+eodhToken {
				t.Errorf("Authorization = %q", got)
			}
			if ua := seen.Header.Get("User-Agent"); !strings.HasPrefix(ua, "s3mount/") {
				t.Errorf("User-Agent = %q", ua)
			}
			if seen.ContentLength > 0 {
				t.Errorf("request has a body of %d bytes", seen.ContentLength)
			}
		})
	}
}

func TestEODHWorkspaceEscaped(t *testing.T) {
	var got string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		w.Write([]byte(eodhBody))
	}))
	t.Cleanup(s.Close)
	e := newTestEODH(t, s.URL, EODHOptions{Workspace: "my ws?x", Bucket: "workspaces-eodhp-staging"})
	g, err := e.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := "/api/workspaces/my%20ws%3Fx/me/s3-tokens"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
	if g.Paths[0].Bucket != "workspaces-eodhp-staging" || g.Paths[0].Prefix != "my ws?x" {
		t.Errorf("paths = %+v", g.Paths)
	}
}

func TestEODHErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        []string
	}{
		{"401 missing", 401, "text/plain", "authorization header missing\n",
			[]string{"missing, malformed or invalid", "Workspaces → Credentials → API tokens", "30 days", "authorization header missing"}},
		{"401 format", 401, "text/plain", "invalid token format",
			[]string{"HTTP 401", "API tokens", "invalid token format"}},
		{"401 jwt", 401, "text/plain; charset=utf-8", "invalid bearer jwt token",
			[]string{"HTTP 401", "API tokens", "invalid bearer jwt token"}},
		{"401 echoes token", 401, "text/plain", "invalid bearer jwt token " + eodhToken,
			[]string{"invalid bearer jwt token [redacted]"}},
		{"500", 500, "text/plain", "failed to assume role", []string{"HTTP 500", "STS", "expired", "new one", "failed to assume role"}},
		{"503", 503, "text/plain", "", []string{"unavailable (HTTP 503)"}},
		{"404", 404, "text/plain", "404 page not found", []string{"HTTP 404", `workspace name "my-ws" may be wrong`}},
		{"403", 403, "text/plain", "forbidden", []string{"HTTP 403", "another workspace"}},
		{"redirect", 302, "text/html", "", []string{"redirected (HTTP 302 to login.example.org)", "EODH_API_URL"}},
		{"html", 200, "text/html", "<!DOCTYPE html><html><body>Sign in</body></html>", []string{"HTML page", "check the EO DataHub URL"}},
		{"malformed", 200, "application/json", `{"accessKeyId": "ASIA`, []string{"not valid JSON"}},
		{"empty object", 200, "application/json", `{}`, []string{"without an access key"}},
		{"bad expiry", 200, "application/json", strings.Replace(eodhBody, "2025-05-19T13:23:02Z", "in an hour", 1), []string{"unrecognised expiry"}},
		{"teapot", 418, "text/plain", "short and stout", []string{"answered HTTP 418", "short and stout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := eodhServer(t, tt.status, tt.contentType, tt.body, nil)
			_, err := newTestEODH(t, s.URL, EODHOptions{}).Fetch(context.Background())
			if err == nil {
				t.Fatal("Fetch succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Fetch error = %q, want it to contain %q", err, w)
				}
			}
			noSecrets(t, err, eodhToken, "EODHSECRETKEY", "EODHSESSIONTOKEN")
		})
	}
}

func TestEODHUnreachable(t *testing.T) {
	s := eodhServer(t, 200, "application/json", eodhBody, nil)
	e := newTestEODH(t, s.URL, EODHOptions{})
	s.Close()
	_, err := e.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach the EO DataHub credentials endpoint") {
		t.Errorf("Fetch error = %v, want an unreachable error", err)
	}
	noSecrets(t, err, eodhToken)
}

func TestNewEODH(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("file-token\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		opts    EODHOptions
		wantErr string
		wantURL string
		token   string
	}{
		{"defaults from env", map[string]string{"EODH_WORKSPACE": "ws1", "EODH_API_TOKEN": "env-token"}, EODHOptions{}, "",
			"https://eodatahub.org.uk/api/workspaces/ws1/me/s3-tokens", "env-token"},
		{"EODH_API_URL", map[string]string{"EODH_API_URL": "https://staging.eodatahub.org.uk/", "EODH_WORKSPACE": "ws1", "EODH_API_TOKEN": "t"}, EODHOptions{}, "",
			"https://staging.eodatahub.org.uk/api/workspaces/ws1/me/s3-tokens", "t"},
		{"options win", map[string]string{"EODH_API_URL": "https://env.example", "EODH_WORKSPACE": "ws1", "EODH_API_TOKEN": "t"},
			EODHOptions{BaseURL: "http://127.0.0.1:9", Workspace: "ws2", Token: "opt-token"}, "",
			"http://127.0.0.1:9/api/workspaces/ws2/me/s3-tokens", "opt-token"},
		{"token file", map[string]string{"EODH_WORKSPACE": "ws1"}, EODHOptions{TokenFile: tokenFile}, "",
			"https://eodatahub.org.uk/api/workspaces/ws1/me/s3-tokens", "file-token"},
		{"token file beats env", map[string]string{"EODH_WORKSPACE": "ws1", "EODH_API_TOKEN": "env-token"}, EODHOptions{TokenFile: tokenFile}, "",
			"https://eodatahub.org.uk/api/workspaces/ws1/me/s3-tokens", "file-token"},
		{"no workspace", map[string]string{"EODH_API_TOKEN": "t"}, EODHOptions{}, "needs a workspace name: set EODH_WORKSPACE", "", ""},
		{"no token", map[string]string{"EODH_WORKSPACE": "ws1"}, EODHOptions{}, "EODH_API_TOKEN is not set", "", ""},
		{"missing token file", map[string]string{"EODH_WORKSPACE": "ws1"}, EODHOptions{TokenFile: filepath.Join(dir, "nope")}, "reading the EO DataHub token file", "", ""},
		{"empty token file", map[string]string{"EODH_WORKSPACE": "ws1"}, EODHOptions{TokenFile: emptyFile}, "is empty", "", ""},
		{"slash in workspace", map[string]string{"EODH_API_TOKEN": "t"}, EODHOptions{Workspace: "a/b"}, "not valid", "", ""},
		{"bad url", map[string]string{"EODH_WORKSPACE": "ws1", "EODH_API_TOKEN": "t"}, EODHOptions{BaseURL: "eodatahub.org.uk"}, "not an http(s) URL", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"EODH_API_URL", "EODH_WORKSPACE", "EODH_API_TOKEN"} {
				t.Setenv(k, tt.env[k])
			}
			e, err := NewEODH(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewEODH error = %v, want %q", err, tt.wantErr)
				}
				if tt.name == "no token" && !strings.Contains(err.Error(), "Workspaces → Credentials → API tokens") {
					t.Errorf("error %q does not say how to get a token", err)
				}
				noSecrets(t, err, "file-token", "env-token")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.URL(); got != tt.wantURL {
				t.Errorf("URL = %q, want %q", got, tt.wantURL)
			}
			if e.opts.Token != tt.token {
				t.Errorf("token = %q, want %q", e.opts.Token, tt.token)
			}
		})
	}
}

// noSecrets fails t if err mentions any of secrets.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks the secret %q", err, s)
		}
	}
}
