package creds

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// EO DataHub defaults.
const (
	// EODHDefaultURL is the production EO DataHub. Staging is
	// https://staging.eodatahub.org.uk.
	EODHDefaultURL = "https://eodatahub.org.uk"
	// EODHDefaultBucket is the production workspaces bucket. Other
	// environments use workspaces-eodhp-{env}.
	EODHDefaultBucket = "workspaces-eodhp"
)

// eodhTokenHelp tells a user how to get a workspace API token.
const eodhTokenHelp = "create a workspace API token in the EO DataHub web UI (Workspaces → Credentials → API tokens; tokens last up to 30 days) and set EODH_API_TOKEN or give a token file"

// EODHOptions configure an EO DataHub source.
type EODHOptions struct {
	// BaseURL is the EO DataHub address. Default: EODH_API_URL if set,
	// else https://eodatahub.org.uk.
	BaseURL string
	// Workspace is the workspace name. Default: EODH_WORKSPACE. Required.
	Workspace string
	// Token is the workspace API token. Default: the contents of TokenFile
	// when it is set, else EODH_API_TOKEN.
	Token string
	// TokenFile is a file holding the token; surrounding whitespace is
	// trimmed.
	TokenFile string
	// Bucket is the workspaces bucket. Default: workspaces-eodhp.
	Bucket string
	// HTTPClient defaults to NewHTTPClient(30s).
	HTTPClient *http.Client
}

// EODH fetches workspace S3 credentials from the EO DataHub workspaces API
// (POST /api/workspaces/{workspace}/me/s3-tokens). The credentials last an
// hour and allow read and write under s3://{bucket}/{workspace}/, in region
// eu-west-2.
type EODH struct {
	url    *url.URL
	opts   EODHOptions
	client *http.Client
	path   Path
}

var _ Source = (*EODH)(nil)

// NewEODH returns an EO DataHub source. Empty options are filled from the
// environment; it is an error to have no workspace or no token.
func NewEODH(opts EODHOptions) (*EODH, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = strings.TrimSpace(os.Getenv("EODH_API_URL"))
	}
	if opts.BaseURL == "" {
		opts.BaseURL = EODHDefaultURL
	}
	if opts.Workspace == "" {
		opts.Workspace = strings.TrimSpace(os.Getenv("EODH_WORKSPACE"))
	}
	if opts.Workspace == "" {
		return nil, fmt.Errorf("EO DataHub needs a workspace name: set EODH_WORKSPACE or give the workspace (it is the name shown under Workspaces in the EO DataHub web UI)")
	}
	if strings.ContainsAny(opts.Workspace, "/\x00") || strings.TrimSpace(opts.Workspace) != opts.Workspace {
		return nil, fmt.Errorf("EO DataHub workspace name %q is not valid", opts.Workspace)
	}
	if opts.Token == "" && opts.TokenFile != "" {
		b, err := os.ReadFile(opts.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the EO DataHub token file: %w", err)
		}
		opts.Token = strings.TrimSpace(string(b))
		if opts.Token == "" {
			return nil, fmt.Errorf("EO DataHub token file %s is empty; %s", opts.TokenFile, eodhTokenHelp)
		}
	}
	if opts.Token == "" {
		opts.Token = strings.TrimSpace(os.Getenv("EODH_API_TOKEN"))
	}
	if opts.Token == "" {
		return nil, fmt.Errorf("EO DataHub needs a workspace API token: EODH_API_TOKEN is not set; %s", eodhTokenHelp)
	}
	if opts.Bucket == "" {
		opts.Bucket = EODHDefaultBucket
	}
	path, err := parsePath(opts.Bucket, opts.Workspace, "")
	if err != nil {
		return nil, fmt.Errorf("EO DataHub workspace: %w", err)
	}
	path.Access, path.Kind = ReadWrite, "workspace"

	base, err := url.Parse(strings.TrimSpace(opts.BaseURL))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("EO DataHub URL %q is not an http(s) URL", opts.BaseURL)
	}
	base.RawQuery, base.Fragment, base.User = "", "", nil
	u, err := url.Parse(strings.TrimRight(base.String(), "/") +
		"/api/workspaces/" + url.PathEscape(opts.Workspace) + "/me/s3-tokens")
	if err != nil {
		return nil, fmt.Errorf("EO DataHub URL %q: %w", opts.BaseURL, err)
	}
	client := opts.HTTPClient
	if client == nil {
		if client, err = NewHTTPClient(defaultTimeout); err != nil {
			return nil, err
		}
	}
	return &EODH{url: u, opts: opts, client: client, path: path}, nil
}

// Name implements Source.
func (e *EODH) Name() string { return "EO DataHub" }

// URL returns the credentials URL.
func (e *EODH) URL() string { return redact(e.url) }

// Fetch implements Source.
func (e *EODH) Fetch(ctx context.Context) (Grant, error) {
	req, err := http.NewRequest(http.MethodPost, e.url.String(), nil)
	if err != nil {
		return Grant{}, err
	}
	req.Header.Set("Authorization", "Bearer "+e.opts.Token)
	resp, err := do(ctx, e.client, req, "EO DataHub")
	if err != nil {
		return Grant{}, err
	}
	where := e.URL()
	detail := scrub(errorDetail(resp.body), e.opts.Token)
	switch {
	case resp.status >= 300 && resp.status < 400:
		return Grant{}, fmt.Errorf("EO DataHub credentials endpoint %s redirected (HTTP %d%s) instead of answering; check the EO DataHub URL (EODH_API_URL)",
			where, resp.status, redirectHost(resp.location))
	case resp.status == http.StatusUnauthorized:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf(
			"EO DataHub refused the workspace API token (HTTP 401): it is missing, malformed or invalid; %s", eodhTokenHelp), detail))
	case resp.status == http.StatusForbidden:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf(
			"EO DataHub denied access to workspace %q (HTTP 403): the token may belong to another workspace; use a token created in this workspace", e.opts.Workspace), detail))
	case resp.status == http.StatusNotFound:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf(
			"EO DataHub credentials endpoint %s was not found (HTTP 404): the workspace name %q may be wrong, or the URL may not be an EO DataHub", where, e.opts.Workspace), detail))
	case resp.status == http.StatusInternalServerError:
		return Grant{}, fmt.Errorf("%s", withDetail(
			"EO DataHub could not issue S3 credentials (HTTP 500, an STS failure); this often means the workspace API token has expired; try a new one: "+eodhTokenHelp, detail))
	case resp.status >= 500:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf("EO DataHub is unavailable (HTTP %d); try again later", resp.status), detail))
	case resp.status != http.StatusOK:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf("EO DataHub credentials endpoint %s answered HTTP %d", where, resp.status), detail))
	}
	return parseEODH(resp.body, where, e.path)
}

// parseEODH decodes the s3-tokens answer. Its errors never quote the body,
// which holds secrets.
func parseEODH(body []byte, where string, path Path) (Grant, error) {
	c, err := parseSTS(body, "EO DataHub", where, "check the EO DataHub URL (EODH_API_URL)")
	if err != nil {
		return Grant{}, err
	}
	return Grant{Credentials: c, Paths: []Path{path}}, nil
}

// scrub replaces every non-empty secret in s, in case an endpoint echoes
// one back in an error message.
func scrub(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// redirectHost returns " to HOST" for a Location header, or "" if there is
// no usable host. Only the host is shown: the query may hold secrets.
func redirectHost(location string) string {
	if u, err := url.Parse(location); err == nil && u.Host != "" {
		return " to " + u.Host
	}
	return ""
}
