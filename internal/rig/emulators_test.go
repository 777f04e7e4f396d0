package rig

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mount/s3mount/creds"
)

// emulatorPaths are the paths of the emulator tests: an EO DataHub workspace
// and an Earthdata collection.
func emulatorPaths() []AuthorizedPath {
	return []AuthorizedPath{
		{Bucket: EODHDefaultBucket, Prefix: "my-ws", Type: TypeWorkspace, Access: AccessReadWrite},
		{Bucket: "podaac-ops-cumulus-protected", Prefix: "MUR-JPL-L4-GLOB-v4.1", Type: TypeOrg, Access: AccessReadOnly},
	}
}

// grantClient returns an S3 client that reaches MinIO through the rig's proxy
// with the grant's credentials.
func grantClient(r *Rig, g creds.Grant) *s3.Client {
	c := g.Credentials
	return proxyClient(r, c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

// wantErrContains fails t unless err is an error containing every want.
func wantErrContains(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want an error containing %q", what, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not contain %q", what, err, w)
		}
	}
}

// wantLifetime fails t unless c expires in about d.
func wantLifetime(t *testing.T, g creds.Grant, d time.Duration) {
	t.Helper()
	if !g.Credentials.CanExpire {
		t.Fatal("credentials cannot expire")
	}
	if got := time.Until(g.Credentials.Expires); got > d || got < d-time.Minute {
		t.Errorf("credentials expire in %v, want about %v", got, d)
	}
}

func TestEODHEmulator(t *testing.T) {
	r := startRig(t, Options{Seed: true, Paths: emulatorPaths()})
	ctx := context.Background()
	const token = "eodh-rig-token"
	e, err := StartEODH(EODHOptions{MinIO: r.MinIO, Proxy: r.Proxy, Tokens: []string{token}, Workspace: "my-ws"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	newSource := func(t *testing.T, opts creds.EODHOptions) *creds.EODH {
		t.Helper()
		opts.BaseURL = e.URL
		if opts.Workspace == "" {
			opts.Workspace = "my-ws"
		}
		if opts.Token == "" {
			opts.Token = token
		}
		src, err := creds.NewEODH(opts)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}

	t.Run("CredentialsOpenTheWorkspace", func(t *testing.T) {
		before := e.Issued()
		g, err := newSource(t, creds.EODHOptions{}).Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Issued(); got != before+1 {
			t.Errorf("Issued() = %d, want %d", got, before+1)
		}
		wantLifetime(t, g, time.Hour)
		want := creds.Path{Bucket: EODHDefaultBucket, Prefix: "my-ws", Access: creds.ReadWrite, Kind: "workspace"}
		if len(g.Paths) != 1 || g.Paths[0] != want {
			t.Fatalf("paths = %+v, want [%+v]", g.Paths, want)
		}
		s3c := grantClient(r, g)
		got := keys(t, s3c, EODHDefaultBucket, "my-ws/")
		if !slices.Contains(got, "my-ws/README.txt") {
			t.Errorf("listing my-ws/ = %v, want my-ws/README.txt", got)
		}
		body := []byte("written through EODH credentials\n")
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(EODHDefaultBucket), Key: aws.String("my-ws/new.txt"),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		}); err != nil {
			t.Errorf("put in the workspace: %v", err)
		}
		_, err = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(EODHDefaultBucket), Prefix: aws.String("other-user/")})
		wantCode(t, "list other prefix", err, "AccessDenied")
		_, err = s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(EODHDefaultBucket), Key: aws.String("other-user/secret.txt")})
		wantCode(t, "get outside the workspace", err, "AccessDenied")
		_, err = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("podaac-ops-cumulus-protected"), Prefix: aws.String("MUR-JPL-L4-GLOB-v4.1/")})
		wantCode(t, "list another bucket", err, "AccessDenied")
	})

	t.Run("PlainText401s", func(t *testing.T) {
		for _, tt := range []struct{ auth, want string }{
			{"", EODHErrHeaderMissing},
			{"Token " + token, EODHErrTokenFormat},
			{"Bearer", EODHErrTokenFormat},
			{"Bearer wrong-token", EODHErrInvalidJWT},
		} {
			req, err := http.NewRequest(http.MethodPost, e.CredentialsURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || string(b) != tt.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("Authorization %q: %d %q %q, want 401 %q as text/plain", tt.auth, resp.StatusCode, resp.Header.Get("Content-Type"), b, tt.want)
			}
		}
		_, err := newSource(t, creds.EODHOptions{Token: "wrong-token"}).Fetch(ctx)
		wantErrContains(t, "wrong token", err, "HTTP 401", "API tokens", EODHErrInvalidJWT)
		if err != nil && strings.Contains(err.Error(), "wrong-token") {
			t.Errorf("error %q leaks the token", err)
		}
	})

	t.Run("WrongWorkspace", func(t *testing.T) {
		_, err := newSource(t, creds.EODHOptions{Workspace: "not-mine"}).Fetch(ctx)
		wantErrContains(t, "wrong workspace", err, "HTTP 404", `workspace name "not-mine" may be wrong`)
	})

	t.Run("Modes", func(t *testing.T) {
		defer e.SetMode(ModeOK)
		src := newSource(t, creds.EODHOptions{})
		for _, tt := range []struct {
			mode Mode
			want []string
		}{
			{ModeServerError, []string{"HTTP 500", "expired"}},
			{ModeUnauthorized, []string{"HTTP 401", EODHErrInvalidJWT}},
			{ModeUnavailable, []string{"HTTP 503"}},
			{ModeHTML, []string{"HTML page"}},
			{ModeMalformedJSON, []string{"not valid JSON"}},
		} {
			e.SetMode(tt.mode)
			before := e.Issued()
			_, err := src.Fetch(ctx)
			wantErrContains(t, tt.mode.String(), err, tt.want...)
			if e.Issued() != before {
				t.Errorf("%v: Issued() grew", tt.mode)
			}
		}
		e.SetMode(ModeOK)
		if _, err := src.Fetch(ctx); err != nil {
			t.Errorf("Fetch after ModeOK: %v", err)
		}
	})

	t.Run("ExpiryEnforcedByProxy", func(t *testing.T) {
		e.SetLifetime(2 * time.Second)
		defer e.SetLifetime(time.Hour)
		g, err := newSource(t, creds.EODHOptions{}).Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantLifetime(t, g, 2*time.Second)
		time.Sleep(time.Until(g.Credentials.Expires) + 100*time.Millisecond)
		_, err = grantClient(r, g).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(EODHDefaultBucket), Prefix: aws.String("my-ws/")})
		wantCode(t, "list after expiry", err, "ExpiredToken")
	})
}

// isolateEarthdataEnv clears the Earthdata variables and points NETRC at a
// file that does not exist, so the host's settings do not leak in.
func isolateEarthdataEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"EARTHDATA_TOKEN", "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD", "EARTHDATA_LOGIN_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("NETRC", filepath.Join(t.TempDir(), "no-netrc"))
}

func TestEarthdataEmulator(t *testing.T) {
	isolateEarthdataEnv(t)
	paths := emulatorPaths()
	r := startRig(t, Options{Seed: true, Paths: paths})
	ctx := context.Background()
	const user, password = "jdoe", "rig-secret-password"
	ed, err := StartEarthdata(EarthdataOptions{
		MinIO: r.MinIO, Proxy: r.Proxy, Username: user, Password: password,
		Paths: []AuthorizedPath{paths[1]},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ed.Close() })
	mount, err := creds.ParseS3URI("s3://podaac-ops-cumulus-protected/MUR-JPL-L4-GLOB-v4.1/")
	if err != nil {
		t.Fatal(err)
	}
	newSource := func(t *testing.T, opts creds.EarthdataOptions) *creds.Earthdata {
		t.Helper()
		opts.URL, opts.LoginURL, opts.Paths = ed.CredentialsURL, ed.LoginURL, []creds.Path{mount}
		src, err := creds.NewEarthdata(opts)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	src := newSource(t, creds.EarthdataOptions{Username: user, Password: password})
	const bucket, prefix = "podaac-ops-cumulus-protected", "MUR-JPL-L4-GLOB-v4.1/"

	t.Run("ReadOnlyCredentials", func(t *testing.T) {
		g, err := src.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ed.TokensIssued() != 1 || ed.Issued() != 1 {
			t.Errorf("TokensIssued, Issued = %d, %d; want 1, 1", ed.TokensIssued(), ed.Issued())
		}
		if got := ed.LastAppName(); got != "s3mount" {
			t.Errorf("app-name = %q", got)
		}
		if got := ed.LastUserAgent(); !strings.HasPrefix(got, "s3mount/") {
			t.Errorf("User-Agent = %q", got)
		}
		wantLifetime(t, g, time.Hour)
		if len(g.Paths) != 1 || g.Paths[0] != mount || g.Paths[0].Access != creds.ReadOnly {
			t.Errorf("paths = %+v, want [%+v]", g.Paths, mount)
		}
		s3c := grantClient(r, g)
		got := keys(t, s3c, bucket, prefix)
		if !slices.Contains(got, prefix+"granules/g001.txt") {
			t.Errorf("listing %s = %v", prefix, got)
		}
		obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "granules/g001.txt")})
		if err != nil {
			t.Fatalf("get granule: %v", err)
		}
		b, _ := io.ReadAll(obj.Body)
		obj.Body.Close()
		if string(b) != "granule 001\n" {
			t.Errorf("granule = %q", b)
		}
		body := []byte("nope")
		_, err = s3c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(prefix + "new.txt"),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		})
		wantCode(t, "put in a read-only path", err, "AccessDenied")
		_, err = s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "granules/g001.txt")})
		wantCode(t, "delete in a read-only path", err, "AccessDenied")
		_, err = s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("other-user/secret.txt")})
		wantCode(t, "get outside the path", err, "AccessDenied")
		_, err = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(EODHDefaultBucket), Prefix: aws.String("my-ws/")})
		wantCode(t, "list another bucket", err, "AccessDenied")

		// The token is cached.
		if _, err := src.Fetch(ctx); err != nil {
			t.Fatal(err)
		}
		if ed.TokensIssued() != 1 {
			t.Errorf("TokensIssued = %d after a second fetch, want 1", ed.TokensIssued())
		}
	})

	t.Run("TokenRenewedAfterLoginRedirect", func(t *testing.T) {
		ed.RevokeTokens()
		before := ed.TokensIssued()
		if _, err := src.Fetch(ctx); err != nil {
			t.Fatalf("Fetch after revocation: %v", err)
		}
		if got := ed.TokensIssued(); got != before+1 {
			t.Errorf("TokensIssued = %d, want %d", got, before+1)
		}
	})

	t.Run("SignInRedirect", func(t *testing.T) {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get(ed.CredentialsURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || "http://"+loc.Host != ed.LoginURL || loc.Path != EarthdataAuthorizePath {
			t.Errorf("unauthenticated request: %d to %q, want 302 to %s%s", resp.StatusCode, resp.Header.Get("Location"), ed.LoginURL, EarthdataAuthorizePath)
		}
		_, err = newSource(t, creds.EarthdataOptions{Token: "bogus-token"}).Fetch(ctx)
		wantErrContains(t, "bad token", err, "not signed in to Earthdata Login, or the token expired", "EARTHDATA_TOKEN", "~/.netrc")
		if err != nil && strings.Contains(err.Error(), "bogus-token") {
			t.Errorf("error %q leaks the token", err)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		_, err := newSource(t, creds.EarthdataOptions{Username: user, Password: "wrong-secret"}).Fetch(ctx)
		wantErrContains(t, "wrong password", err, "HTTP 401", `username "jdoe"`)
		if err != nil && strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("error %q leaks the password", err)
		}
	})

	t.Run("Modes", func(t *testing.T) {
		defer ed.SetMode(EarthdataOK)
		for _, tt := range []struct {
			mode EarthdataMode
			want []string
		}{
			{EarthdataEULA, []string{"HTTP 403", "EULA Acceptance Failure", EarthdataEULAResolutionURL}},
			{EarthdataForbidden, []string{"HTTP 403", "no permission for this DAAC's data"}},
			{EarthdataBackendError, []string{"HTTP 424"}},
			{EarthdataDisabled, []string{"HTTP 503", "disabled"}},
			{EarthdataRedirectAll, []string{"not signed in to Earthdata Login, or the token expired"}},
		} {
			ed.SetMode(tt.mode)
			_, err := src.Fetch(ctx)
			wantErrContains(t, tt.mode.String(), err, tt.want...)
			if err != nil && strings.Contains(err.Error(), password) {
				t.Errorf("error %q leaks the password", err)
			}
		}
		ed.SetMode(EarthdataJSONAsHTML)
		g, err := src.Fetch(ctx)
		if err != nil {
			t.Fatalf("JSON as text/html: %v", err)
		}
		keys(t, grantClient(r, g), bucket, prefix)
	})
}
