package creds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Version is s3mount's version, sent in the User-Agent. The command sets it.
var Version = "dev"

// maxResponseBytes bounds what is read from a credentials endpoint.
const maxResponseBytes = 1 << 20

// NewHTTPClient returns the client sources use by default: it never follows
// redirects (a redirect to a login page means "not signed in"), honours
// HTTPS_PROXY and friends, trusts the system roots plus AWS_CA_BUNDLE if set,
// and gives up on an endpoint after timeout.
func NewHTTPClient(timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if bundle := os.Getenv("AWS_CA_BUNDLE"); bundle != "" {
		pem, err := os.ReadFile(bundle)
		if err != nil {
			return nil, fmt.Errorf("reading AWS_CA_BUNDLE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE %s holds no PEM certificates", bundle)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// userAgent is sent to every endpoint. Some endpoints answer HTML to
// browser-like agents, so it must not start with "Mozilla".
func userAgent() string { return "s3mount/" + Version }

// response is a credentials endpoint's answer, read in full.
type response struct {
	status   int
	location string
	body     []byte
}

// do sends req and reads the answer. Its errors name the endpoint (without
// its query, which could hold a secret) and say what to check.
func do(ctx context.Context, client *http.Client, req *http.Request, platform string) (*response, error) {
	req = req.WithContext(ctx)
	req.Header.Set("User-Agent", userAgent())
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, transportError(err, req.URL, platform)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s credentials endpoint %s: connection dropped while reading the answer: %w",
			platform, redact(req.URL), unwrapURLError(err))
	}
	return &response{status: resp.StatusCode, location: resp.Header.Get("Location"), body: body}, nil
}

// transportError turns a failed request into words a user can act on.
func transportError(err error, u *url.URL, platform string) error {
	err = unwrapURLError(err)
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return fmt.Errorf("%s credentials endpoint %s did not answer in time; it may be down or slow, try again later", platform, redact(u))
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s credentials request to %s was cancelled", platform, redact(u))
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve the %s credentials host %q: check the host name (and your network): %w", platform, u.Host, err)
	case errors.As(err, &certErr):
		return fmt.Errorf("%s credentials endpoint %s presented a certificate that is not trusted (set AWS_CA_BUNDLE to your CA bundle if you are behind a proxy): %w", platform, redact(u), err)
	case errors.As(err, &opErr):
		return fmt.Errorf("cannot reach the %s credentials endpoint %s; it may be down, or the URL may be wrong: %w", platform, redact(u), err)
	}
	return fmt.Errorf("%s credentials request to %s failed: %w", platform, redact(u), err)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact returns u without its query and user info, which may hold secrets.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	c.User = nil
	c.Fragment = ""
	return c.String()
}

// looksLikeHTML reports whether body is an HTML page rather than JSON,
// whatever the Content-Type said.
func looksLikeHTML(body []byte) bool {
	s := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 512)])))
	return strings.HasPrefix(s, "<!doctype html") || strings.HasPrefix(s, "<html") ||
		strings.HasPrefix(s, "<head") || strings.HasPrefix(s, "<body") ||
		(strings.HasPrefix(s, "<") && strings.Contains(s, "<html"))
}

// errorDetail extracts a short, printable explanation from an error body:
// a JSON "message", "error_description" or "error" field, or the first line
// of a plain-text body. HTML bodies yield nothing.
func errorDetail(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"message", "error_description", "error", "detail"} {
			if s, ok := m[k].(string); ok && s != "" {
				return clip(s)
			}
		}
		return ""
	}
	if looksLikeHTML(body) || !utf8.Valid(body) {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return clip(line)
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// withDetail appends ": detail" when detail is not empty.
func withDetail(msg, detail string) string {
	if detail == "" {
		return msg
	}
	return msg + " (the endpoint said: " + detail + ")"
}

// stsResponse is the camelCase STS JSON that EO DataHub and the Earthdata
// /s3credentials endpoints answer with.
type stsResponse struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	Expiration      string `json:"expiration"`
}

// parseSTS decodes an stsResponse, whatever the Content-Type said. Its
// errors name the platform and the endpoint, end with check (what to
// check), and never quote the body, which holds secrets.
func parseSTS(body []byte, platform, where, check string) (aws.Credentials, error) {
	var r stsResponse
	if err := json.Unmarshal(body, &r); err != nil {
		if looksLikeHTML(body) {
			return aws.Credentials{}, fmt.Errorf("%s credentials endpoint %s answered with an HTML page, not credentials; %s", platform, where, check)
		}
		return aws.Credentials{}, fmt.Errorf("%s credentials endpoint %s answered with something that is not valid JSON (%d bytes); %s", platform, where, len(body), check)
	}
	if r.AccessKeyID == "" || r.SecretAccessKey == "" {
		return aws.Credentials{}, fmt.Errorf("%s credentials endpoint %s answered without an access key or secret; %s", platform, where, check)
	}
	t, err := ParseExpiry(r.Expiration)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%s credentials expiry: %w", platform, err)
	}
	return aws.Credentials{AccessKeyID: r.AccessKeyID, SecretAccessKey: r.SecretAccessKey, SessionToken: r.SessionToken,
		CanExpire: true, Expires: t}, nil
}
