package creds

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// maapPath is where MAAP serves workspace bucket credentials.
// defaultTimeout bounds one request to a credentials endpoint.
const defaultTimeout = 30 * time.Second

const maapPath = "/api/members/self/awsAccess/workspaceBucket"

// MAAPOptions configure a MAAP source.
type MAAPOptions struct {
	// URL is the full credentials URL. Default: built from MAAP_API_HOST
	// (default api.maap-project.org) and MAAP_API_HOST_SCHEME (default https).
	URL string
	// Ticket is sent as the proxy-ticket header. Default: MAAP_PGT.
	Ticket string
	// BearerToken is sent as "Authorization: Bearer", when Ticket is empty.
	BearerToken string
	// APIKey is sent as X-MAAP-API-Key, when Ticket and BearerToken are empty.
	APIKey string
	// HTTPClient defaults to NewHTTPClient(30s).
	HTTPClient *http.Client
}

// MAAP fetches workspace bucket credentials and authorized paths from the
// MAAP API, in both its current and its older flat response shapes.
type MAAP struct {
	url    *url.URL
	opts   MAAPOptions
	client *http.Client
}

var _ Source = (*MAAP)(nil)

// MAAPURLFromEnv returns the credentials URL built from MAAP_API_HOST and
// MAAP_API_HOST_SCHEME, the variables the MAAP Python client reads.
func MAAPURLFromEnv() string {
	host := os.Getenv("MAAP_API_HOST")
	if host == "" {
		host = "api.maap-project.org"
	}
	scheme := os.Getenv("MAAP_API_HOST_SCHEME")
	if scheme == "" {
		scheme = "https"
	}
	// MAAP_API_HOST is sometimes given as a URL; keep only the host.
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		host = u.Host
	}
	return scheme + "://" + strings.TrimRight(host, "/") + maapPath
}

// NewMAAP returns a MAAP source. Empty options are filled from the
// environment; it is an error to have no ticket, token or key.
func NewMAAP(opts MAAPOptions) (*MAAP, error) {
	if opts.URL == "" {
		opts.URL = MAAPURLFromEnv()
	}
	if opts.Ticket == "" && opts.BearerToken == "" && opts.APIKey == "" {
		opts.Ticket = strings.TrimSpace(os.Getenv("MAAP_PGT"))
	}
	if opts.Ticket == "" && opts.BearerToken == "" && opts.APIKey == "" {
		return nil, fmt.Errorf("MAAP needs a proxy ticket: MAAP_PGT is not set (it is set for you inside a MAAP workspace)")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("MAAP credentials URL %q is not an http(s) URL", opts.URL)
	}
	client := opts.HTTPClient
	if client == nil {
		if client, err = NewHTTPClient(defaultTimeout); err != nil {
			return nil, err
		}
	}
	return &MAAP{url: u, opts: opts, client: client}, nil
}

// Name implements Source.
func (m *MAAP) Name() string { return "MAAP" }

// URL returns the credentials URL, without any query.
func (m *MAAP) URL() string { return redact(m.url) }

// maapResponse covers both response shapes.
type maapResponse struct {
	// Current shape.
	Credentials *struct {
		AccessKeyID     string `json:"aws_access_key_id"`
		SecretAccessKey string `json:"aws_secret_access_key"`
		SessionToken    string `json:"aws_session_token"`
		ExpiresAt       string `json:"expires_at"`
	} `json:"credentials"`
	AuthorizedPaths []struct {
		Bucket string `json:"bucket"`
		Prefix string `json:"prefix"`
		URI    string `json:"uri"`
		Type   string `json:"type"`
		Access string `json:"access"`
	} `json:"authorized_s3_paths"`

	// Older flat shape.
	BucketName        string `json:"aws_bucket_name"`
	BucketPrefix      string `json:"aws_bucket_prefix"`
	AccessKeyID       string `json:"aws_access_key_id"`
	SecretAccessKey   string `json:"aws_secret_access_key"`
	SessionToken      string `json:"aws_session_token"`
	SessionExpiration string `json:"aws_session_expiration"`
}

// Fetch implements Source.
func (m *MAAP) Fetch(ctx context.Context) (Grant, error) {
	req, err := http.NewRequest(http.MethodGet, m.url.String(), nil)
	if err != nil {
		return Grant{}, err
	}
	switch {
	case m.opts.Ticket != "":
		req.Header.Set("proxy-ticket", m.opts.Ticket)
	case m.opts.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+m.opts.BearerToken)
	default:
		req.Header.Set("X-MAAP-API-Key", m.opts.APIKey)
	}
	resp, err := do(ctx, m.client, req, "MAAP")
	if err != nil {
		return Grant{}, err
	}
	where := m.URL()
	switch {
	case resp.status >= 300 && resp.status < 400:
		return Grant{}, fmt.Errorf("MAAP credentials endpoint %s redirected (HTTP %d) instead of answering; check MAAP_API_HOST or --credentials-url", where, resp.status)
	case resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf(
			"MAAP refused the credentials request (HTTP %d): the proxy ticket is missing, wrong or expired; open a new MAAP workspace session or refresh MAAP_PGT", resp.status),
			errorDetail(resp.body)))
	case resp.status == http.StatusServiceUnavailable:
		return Grant{}, fmt.Errorf("%s", withDetail("MAAP's authentication service is unavailable (HTTP 503); try again later", errorDetail(resp.body)))
	case resp.status >= 500:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf("MAAP could not issue credentials (HTTP %d, a server-side failure); try again later", resp.status), errorDetail(resp.body)))
	case resp.status != http.StatusOK:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf("MAAP credentials endpoint %s answered HTTP %d", where, resp.status), errorDetail(resp.body)))
	}
	return parseMAAP(resp.body, where)
}

// parseMAAP decodes either MAAP response shape. Its errors never quote the
// body, which holds secrets.
func parseMAAP(body []byte, where string) (Grant, error) {
	if looksLikeHTML(body) {
		return Grant{}, fmt.Errorf("MAAP credentials endpoint %s answered with an HTML page, not credentials; check MAAP_API_HOST or --credentials-url", where)
	}
	var r maapResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return Grant{}, fmt.Errorf("MAAP credentials endpoint %s answered with something that is not valid JSON (%d bytes); check MAAP_API_HOST or --credentials-url", where, len(body))
	}
	var g Grant
	var expires string
	if r.Credentials != nil {
		c := r.Credentials
		g.Credentials = aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
		expires = c.ExpiresAt
		for _, ap := range r.AuthorizedPaths {
			p, err := parsePath(ap.Bucket, ap.Prefix, ap.URI)
			if err != nil {
				return Grant{}, fmt.Errorf("MAAP authorized path: %w", err)
			}
			p.Kind = ap.Type
			if ap.Access == "read_write" {
				p.Access = ReadWrite
			}
			g.Paths = append(g.Paths, p)
		}
		if len(g.Paths) == 0 {
			return Grant{}, fmt.Errorf("MAAP credentials endpoint %s authorized no S3 paths", where)
		}
	} else {
		g.Credentials = aws.Credentials{AccessKeyID: r.AccessKeyID, SecretAccessKey: r.SecretAccessKey, SessionToken: r.SessionToken}
		expires = r.SessionExpiration
		if r.AccessKeyID == "" {
			return Grant{}, fmt.Errorf("MAAP credentials endpoint %s answered JSON without credentials; check MAAP_API_HOST or --credentials-url", where)
		}
		p, err := parsePath(r.BucketName, r.BucketPrefix, "")
		if err != nil {
			return Grant{}, fmt.Errorf("MAAP workspace bucket: %w", err)
		}
		p.Access, p.Kind = ReadWrite, "workspace"
		g.Paths = []Path{p}
	}
	if g.Credentials.AccessKeyID == "" || g.Credentials.SecretAccessKey == "" {
		return Grant{}, fmt.Errorf("MAAP credentials endpoint %s answered without an access key or secret", where)
	}
	t, err := ParseExpiry(expires)
	if err != nil {
		return Grant{}, fmt.Errorf("MAAP credentials expiry: %w", err)
	}
	g.Credentials.CanExpire, g.Credentials.Expires = true, t
	return g, nil
}

// parsePath builds a Path from a bucket and prefix, or from an s3:// URI
// when the bucket is missing. The prefix loses its surrounding slashes.
func parsePath(bucket, prefix, uri string) (Path, error) {
	if bucket == "" && uri != "" {
		rest, ok := strings.CutPrefix(uri, "s3://")
		if !ok {
			return Path{}, fmt.Errorf("%q is not an s3:// URI", uri)
		}
		bucket, prefix, _ = strings.Cut(rest, "/")
	}
	if bucket == "" {
		return Path{}, fmt.Errorf("no bucket named")
	}
	if strings.ContainsAny(bucket, "/\x00") {
		return Path{}, fmt.Errorf("bucket name %q is not valid", bucket)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		for _, seg := range strings.Split(prefix, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, 0) || len(seg) > 255 {
				return Path{}, fmt.Errorf("prefix %q of bucket %q cannot be shown as a directory", prefix, bucket)
			}
		}
	}
	return Path{Bucket: bucket, Prefix: prefix}, nil
}
