package creds

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const nestedBody = `{"credentials": {"aws_access_key_id": "ASIAEXAMPLE", "aws_secret_access_key": "SECRETSECRET",
  "aws_session_token": "TOKENTOKEN", "expires_at": "2026-03-04T02:15:00+0000"},
 "authorized_s3_paths": [
  {"bucket": "maap-ops-workspace", "prefix": "jdoe", "uri": "s3://maap-ops-workspace/jdoe", "type": "workspace", "access": "read_write"},
  {"bucket": "shared-project-bucket", "prefix": "team-data/", "uri": "s3://shared-project-bucket/team-data", "type": "org", "access": "read_write"},
  {"bucket": "public-reference-data", "prefix": "smap/v9", "uri": "s3://public-reference-data/smap/v9", "type": "org", "access": "read_only"}]}`

const flatBody = `{"aws_bucket_name": "maap-ops-workspace", "aws_bucket_prefix": "jdoe",
 "aws_access_key_id": "ASIAEXAMPLE", "aws_secret_access_key": "SECRETSECRET", "aws_session_token": "TOKENTOKEN",
 "aws_session_expiration": "2026-03-04 02:15:00+0000"}`

// maapServer serves body with status and content type for every request, and
// records the auth headers it saw.
func maapServer(t *testing.T, status int, contentType, body string, seen *http.Header) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != maapPath {
			http.NotFound(w, r)
			return
		}
		if seen != nil {
			*seen = r.Header.Clone()
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func newTestMAAP(t *testing.T, s *httptest.Server, opts MAAPOptions) *MAAP {
	t.Helper()
	opts.URL = s.URL + maapPath
	if opts.Ticket == "" && opts.BearerToken == "" && opts.APIKey == "" {
		opts.Ticket = "PGT-secret-ticket"
	}
	m, err := NewMAAP(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMAAPShapes(t *testing.T) {
	want := time.Date(2026, 3, 4, 2, 15, 0, 0, time.UTC)
	tests := []struct {
		name      string
		body      string
		wantPaths []Path
	}{
		{"nested", nestedBody, []Path{
			{Bucket: "maap-ops-workspace", Prefix: "jdoe", Access: ReadWrite, Kind: "workspace"},
			{Bucket: "shared-project-bucket", Prefix: "team-data", Access: ReadWrite, Kind: "org"},
			{Bucket: "public-reference-data", Prefix: "smap/v9", Access: ReadOnly, Kind: "org"},
		}},
		{"flat", flatBody, []Path{{Bucket: "maap-ops-workspace", Prefix: "jdoe", Access: ReadWrite, Kind: "workspace"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen http.Header
			// TEA has been seen answering JSON as text/html; trust the body.
			s := maapServer(t, 200, "text/html", tt.body, &seen)
			g, err := newTestMAAP(t, s, MAAPOptions{}).Fetch(context.Background())
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			c := g.Credentials
			if c.AccessKeyID != "ASIAEXAMPLE" || c.SecretAccessKey != "SECRETSECRET" || c.SessionToken != "TOKENTOKEN" {
				t.Errorf("credentials = %+v", c)
			}
			if !c.CanExpire || !c.Expires.Equal(want) {
				t.Errorf("expiry = %v %v, want %v", c.CanExpire, c.Expires, want)
			}
			if len(g.Paths) != len(tt.wantPaths) {
				t.Fatalf("paths = %+v, want %+v", g.Paths, tt.wantPaths)
			}
			for i := range g.Paths {
				if g.Paths[i] != tt.wantPaths[i] {
					t.Errorf("path %d = %+v, want %+v", i, g.Paths[i], tt.wantPaths[i])
				}
			}
			if got := seen.Get("proxy-ticket"); got != "PGT-secret-ticket" {
				t.Errorf("proxy-ticket header = %q", got)
			}
			if ua := seen.Get("User-Agent"); !strings.HasPrefix(ua, "s3mount/") {
				t.Errorf("User-Agent = %q", ua)
			}
		})
	}
}

func TestMAAPAuthHeaders(t *testing.T) {
	tests := []struct {
		name   string
		opts   MAAPOptions
		header string
		want   string
	}{
		{"ticket", MAAPOptions{Ticket: "T1"}, "proxy-ticket", "T1"},
		{"bearer", MAAPOptions{BearerToken: "JWT"}, "Authorization", "Bearer JWT"},
		{"api key", MAAPOptions{APIKey: "PAT"}, "X-MAAP-API-Key", "PAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen http.Header
			s := maapServer(t, 200, "application/json", nestedBody, &seen)
			if _, err := newTestMAAP(t, s, tt.opts).Fetch(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := seen.Get(tt.header); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestMAAPErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string
	}{
		{"401", 401, "application/json", `{"message": "Invalid ticket"}`, "proxy ticket is missing, wrong or expired"},
		{"503", 503, "application/json", `{"message": "CAS down"}`, "unavailable (HTTP 503)"},
		{"500", 500, "application/json", `{"message": "AssumeRole failed"}`, "could not issue credentials (HTTP 500"},
		{"redirect", 302, "text/html", "", "redirected (HTTP 302)"},
		{"html", 200, "text/html", "<!DOCTYPE html><html><body>Sign in</body></html>", "HTML page"},
		{"malformed", 200, "application/json", `{"credentials": {"aws_access_key_id": "ASIA`, "not valid JSON"},
		{"no paths", 200, "application/json", `{"credentials": {"aws_access_key_id": "A", "aws_secret_access_key": "S", "expires_at": "2026-03-04T02:15:00+0000"}, "authorized_s3_paths": []}`, "authorized no S3 paths"},
		{"bad expiry", 200, "application/json", strings.Replace(nestedBody, "2026-03-04T02:15:00+0000", "soon", 1), "unrecognised expiry"},
		{"empty object", 200, "application/json", `{}`, "without credentials"},
		{"hostile path", 200, "application/json", strings.Replace(nestedBody, `"prefix": "jdoe"`, `"prefix": "jdoe/../x"`, 1), "cannot be shown as a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := maapServer(t, tt.status, tt.contentType, tt.body, nil)
			_, err := newTestMAAP(t, s, MAAPOptions{}).Fetch(context.Background())
			if err == nil {
				t.Fatal("Fetch succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Fetch error = %q, want it to contain %q", err, tt.want)
			}
			for _, secret := range []string{"PGT-secret-ticket", "SECRETSECRET", "TOKENTOKEN"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks a secret", err)
				}
			}
		})
	}
}

func TestMAAPUnreachable(t *testing.T) {
	s := maapServer(t, 200, "application/json", nestedBody, nil)
	m := newTestMAAP(t, s, MAAPOptions{})
	s.Close()
	_, err := m.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach the MAAP credentials endpoint") {
		t.Errorf("Fetch error = %v, want an unreachable error", err)
	}
}

func TestMAAPSlow(t *testing.T) {
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); s.Close() })
	client, err := NewHTTPClient(200 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	m := newTestMAAP(t, s, MAAPOptions{HTTPClient: client})
	_, err = m.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("Fetch error = %v, want a timeout", err)
	}
}

func TestMAAPEnv(t *testing.T) {
	t.Setenv("MAAP_PGT", "")
	if _, err := NewMAAP(MAAPOptions{}); err == nil || !strings.Contains(err.Error(), "MAAP_PGT is not set") {
		t.Errorf("NewMAAP without ticket: %v", err)
	}
	t.Setenv("MAAP_PGT", "PGT-1")
	t.Setenv("MAAP_API_HOST", "api.uat.maap-project.org")
	t.Setenv("MAAP_API_HOST_SCHEME", "")
	m, err := NewMAAP(MAAPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.URL(), "https://api.uat.maap-project.org"+maapPath; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	t.Setenv("MAAP_API_HOST", "127.0.0.1:8080")
	t.Setenv("MAAP_API_HOST_SCHEME", "http")
	if got, want := MAAPURLFromEnv(), "http://127.0.0.1:8080"+maapPath; got != want {
		t.Errorf("MAAPURLFromEnv = %q, want %q", got, want)
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		bucket, prefix, uri string
		want                Path
		wantErr             bool
	}{
		{"b", "p/q", "", Path{Bucket: "b", Prefix: "p/q"}, false},
		{"b", "/p/q/", "", Path{Bucket: "b", Prefix: "p/q"}, false},
		{"b", "", "", Path{Bucket: "b"}, false},
		{"", "", "s3://b/p", Path{Bucket: "b", Prefix: "p"}, false},
		{"", "", "https://b/p", Path{}, true},
		{"", "", "", Path{}, true},
		{"b", "p//q", "", Path{}, true},
		{"b", "p/./q", "", Path{}, true},
		{"b/c", "p", "", Path{}, true},
	}
	for _, tt := range tests {
		got, err := parsePath(tt.bucket, tt.prefix, tt.uri)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parsePath(%q, %q, %q) = %+v, %v; want %+v, error %v", tt.bucket, tt.prefix, tt.uri, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseMAAP(f *testing.F) {
	f.Add([]byte(nestedBody))
	f.Add([]byte(flatBody))
	f.Add([]byte(`{"credentials":null}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		g, err := parseMAAP(body, "http://x")
		if err != nil {
			if errors.Unwrap(err) == nil && strings.Contains(err.Error(), string(body)) && len(body) > 8 {
				t.Errorf("error quotes the body: %v", err)
			}
			return
		}
		if !g.Credentials.CanExpire || g.Credentials.AccessKeyID == "" || len(g.Paths) == 0 {
			t.Errorf("accepted an incomplete grant: %+v", g)
		}
		for _, p := range g.Paths {
			if p.Bucket == "" || strings.HasPrefix(p.Prefix, "/") || strings.HasSuffix(p.Prefix, "/") {
				t.Errorf("bad path %+v", p)
			}
		}
	})
}
