package creds

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// EarthdataDefaultLoginURL is Earthdata Login (URS). UAT is
// https://uat.urs.earthdata.nasa.gov.
const EarthdataDefaultLoginURL = "https://urs.earthdata.nasa.gov"

// earthdataTokenPath is where Earthdata Login hands out user tokens.
const earthdataTokenPath = "/api/users/find_or_create_token"

// earthdataAppName is sent as the app-name header; the DAAC names the role
// session user@app-name.
const earthdataAppName = "s3mount"

// DAACs maps the short names of the known DAACs to the host serving their
// /s3credentials endpoint.
var DAACs = map[string]string{
	"nsidc":   "data.nsidc.earthdatacloud.nasa.gov",
	"ghrc":    "data.ghrc.earthdata.nasa.gov",
	"podaac":  "archive.podaac.earthdata.nasa.gov",
	"asf":     "sentinel1.asf.alaska.edu",
	"ornl":    "data.ornldaac.earthdata.nasa.gov",
	"lpdaac":  "data.lpdaac.earthdatacloud.nasa.gov",
	"gesdisc": "data.gesdisc.earthdata.nasa.gov",
	"obdaac":  "obdaac-tea.earthdatacloud.nasa.gov",
	"laads":   "data.laadsdaac.earthdatacloud.nasa.gov",
	"asdc":    "data.asdc.earthdata.nasa.gov",
}

// EarthdataOptions configure a NASA Earthdata source.
type EarthdataOptions struct {
	// URL is the full /s3credentials URL. It wins over DAAC.
	URL string
	// DAAC is a key of DAACs (case, dots, spaces, dashes and underscores
	// are ignored: "PO.DAAC" works), used when URL is empty.
	DAAC string
	// Token is an Earthdata Login user token. Default: EARTHDATA_TOKEN;
	// else one is obtained with Username and Password.
	Token string
	// Username and Password are the Earthdata Login account. Default:
	// EARTHDATA_USERNAME and EARTHDATA_PASSWORD, else the ~/.netrc entry
	// (file named by NETRC if set) for the login host,
	// "machine urs.earthdata.nasa.gov". With a token they are still used to
	// get a new token once when the token is refused.
	Username, Password string
	// LoginURL is the Earthdata Login address. Default: EARTHDATA_LOGIN_URL
	// if set, else https://urs.earthdata.nasa.gov.
	LoginURL string
	// Paths are the S3 paths to mount. The endpoint does not say which
	// buckets the credentials open, so the user names them. They are all
	// made ReadOnly.
	Paths []Path
	// HTTPClient defaults to NewHTTPClient(30s).
	HTTPClient *http.Client
}

// Earthdata fetches S3 credentials from a NASA DAAC's /s3credentials
// endpoint (Thin Egress App or Cumulus), authenticated with an Earthdata
// Login user token.
//
// The credentials last one hour and are read-only. They work only in AWS
// region us-west-2, from inside AWS: requests from elsewhere are denied.
type Earthdata struct {
	url      *url.URL
	login    *url.URL
	paths    []Path
	client   *http.Client
	username string
	password string
	// passwordFrom says where the username and password came from, for
	// error messages.
	passwordFrom string

	mu sync.Mutex // guards the fields below, and serializes token requests
	// token is the current user token, from the options, the environment or
	// Earthdata Login.
	token string
	// tokenExpires is the last day of the token obtained from Earthdata
	// Login; zero if unknown.
	tokenExpires time.Time
}

var _ Source = (*Earthdata)(nil)

// NewEarthdata returns an Earthdata source. Empty options are filled from the
// environment and ~/.netrc; it is an error to have no endpoint, or neither a
// token nor a username and password.
func NewEarthdata(opts EarthdataOptions) (*Earthdata, error) {
	raw := strings.TrimSpace(opts.URL)
	if raw == "" && opts.DAAC != "" {
		host, ok := DAACs[daacKey(opts.DAAC)]
		if !ok {
			return nil, fmt.Errorf("unknown DAAC %q: use one of %s, or give the /s3credentials URL", opts.DAAC, strings.Join(DAACNames(), ", "))
		}
		raw = "https://" + host + "/s3credentials"
	}
	if raw == "" {
		return nil, fmt.Errorf("NASA Earthdata needs a credentials endpoint: name a DAAC (%s) or give the DAAC's /s3credentials URL", strings.Join(DAACNames(), ", "))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("NASA Earthdata credentials URL %q is not an http(s) URL", raw)
	}

	login := strings.TrimSpace(opts.LoginURL)
	if login == "" {
		login = strings.TrimSpace(os.Getenv("EARTHDATA_LOGIN_URL"))
	}
	if login == "" {
		login = EarthdataDefaultLoginURL
	}
	lu, err := url.Parse(strings.TrimRight(login, "/"))
	if err != nil || (lu.Scheme != "http" && lu.Scheme != "https") || lu.Host == "" {
		return nil, fmt.Errorf("Earthdata Login URL %q is not an http(s) URL", login)
	}
	lu.RawQuery, lu.Fragment, lu.User = "", "", nil

	e := &Earthdata{url: u, login: lu, token: strings.TrimSpace(opts.Token)}
	if e.token == "" {
		e.token = strings.TrimSpace(os.Getenv("EARTHDATA_TOKEN"))
	}
	e.username, e.password = opts.Username, opts.Password
	switch {
	case e.username != "" || e.password != "":
		e.passwordFrom = "the username and password given"
	default:
		e.username, e.password = os.Getenv("EARTHDATA_USERNAME"), os.Getenv("EARTHDATA_PASSWORD")
		if e.username != "" || e.password != "" {
			e.passwordFrom = "EARTHDATA_USERNAME and EARTHDATA_PASSWORD"
			break
		}
		file := netrcPath()
		if file == "" {
			break
		}
		data, err := os.ReadFile(file)
		if err != nil {
			if os.IsNotExist(err) || e.token != "" {
				break
			}
			return nil, fmt.Errorf("reading %s for Earthdata Login: %w", file, err)
		}
		if l, p, ok := parseNetrc(data, lu.Hostname()); ok {
			e.username, e.password = l, p
			e.passwordFrom = fmt.Sprintf("%s (machine %s)", file, lu.Hostname())
		}
	}
	if e.token == "" {
		switch {
		case e.username == "" && e.password == "":
			return nil, fmt.Errorf("NASA Earthdata needs an Earthdata Login user token or a username and password: set EARTHDATA_TOKEN (generate one at %s), or EARTHDATA_USERNAME and EARTHDATA_PASSWORD, or add \"machine %s login USER password PASSWORD\" to ~/.netrc",
				redact(lu), lu.Hostname())
		case e.username == "":
			return nil, fmt.Errorf("Earthdata Login password is set but no username: check %s", e.passwordFrom)
		case e.password == "":
			return nil, fmt.Errorf("Earthdata Login username %q has no password: check %s", e.username, e.passwordFrom)
		}
	}
	for _, p := range opts.Paths {
		p.Access = ReadOnly
		e.paths = append(e.paths, p)
	}
	e.client = opts.HTTPClient
	if e.client == nil {
		if e.client, err = NewHTTPClient(defaultTimeout); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// DAACNames returns the keys of DAACs, sorted.
func DAACNames() []string {
	names := make([]string, 0, len(DAACs))
	for k := range DAACs {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// daacKey normalizes a DAAC name: "PO.DAAC" and "LP DAAC" become "podaac"
// and "lpdaac".
func daacKey(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// netrcPath returns the netrc file to read: NETRC if set, else ~/.netrc.
func netrcPath() string {
	if p := os.Getenv("NETRC"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".netrc")
}

// Name implements Source.
func (e *Earthdata) Name() string { return "NASA Earthdata" }

// URL returns the credentials URL, without any query.
func (e *Earthdata) URL() string { return redact(e.url) }

// Fetch implements Source.
func (e *Earthdata) Fetch(ctx context.Context) (Grant, error) {
	token, fresh, err := e.currentToken(ctx)
	if err != nil {
		return Grant{}, err
	}
	resp, err := e.request(ctx, token)
	if err != nil {
		return Grant{}, err
	}
	retried := false
	if e.refused(resp) && e.password != "" && !fresh {
		// The token expired or was revoked: get another one, once.
		if token, err = e.newToken(ctx, token); err != nil {
			return Grant{}, err
		}
		if resp, err = e.request(ctx, token); err != nil {
			return Grant{}, err
		}
		retried = true
	}
	return e.answer(resp, token, retried || fresh)
}

// request asks the credentials endpoint with token.
func (e *Earthdata) request(ctx context.Context, token string) (*response, error) {
	req, err := http.NewRequest(http.MethodGet, e.url.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("app-name", earthdataAppName)
	return do(ctx, e.client, req, "NASA Earthdata")
}

// refused reports whether resp means "not signed in": a redirect to the login
// host or to an OAuth authorize page, or a 401.
func (e *Earthdata) refused(resp *response) bool {
	if resp.status == http.StatusUnauthorized {
		return true
	}
	if resp.status < 300 || resp.status >= 400 {
		return false
	}
	loc, err := url.Parse(resp.location)
	if err != nil {
		return false
	}
	return strings.EqualFold(loc.Host, e.login.Host) || strings.Contains(loc.Path, "/oauth/authorize")
}

// answer turns the endpoint's answer into a grant or an error. usedNewToken
// says whether the token used was just obtained with the password.
func (e *Earthdata) answer(resp *response, token string, usedNewToken bool) (Grant, error) {
	where := e.URL()
	detail := scrub(errorDetail(resp.body), token, e.password)
	switch {
	case resp.status >= 300 && resp.status < 400 || resp.status == http.StatusUnauthorized:
		msg := fmt.Sprintf("not signed in to Earthdata Login, or the token expired: the credentials endpoint %s answered HTTP %d", where, resp.status)
		if resp.status != http.StatusUnauthorized {
			msg = fmt.Sprintf("not signed in to Earthdata Login, or the token expired: the credentials endpoint %s redirected (HTTP %d%s) to sign in", where, resp.status, redirectHost(resp.location))
		}
		if usedNewToken {
			msg += fmt.Sprintf(", even with a token just obtained with the username and password from %s; check that the account may use this DAAC", e.passwordFrom)
		} else {
			msg += fmt.Sprintf("; set a fresh EARTHDATA_TOKEN (generate one at %s; tokens last 60 days), or put your username and password in ~/.netrc as \"machine %s login USER password PASSWORD\"",
				redact(e.login), e.login.Hostname())
		}
		if resp.status == http.StatusUnauthorized {
			return Grant{}, fmt.Errorf("%s", withDetail(msg, detail))
		}
		return Grant{}, fmt.Errorf("%s", msg)
	case resp.status == http.StatusForbidden:
		var eula struct {
			ErrorDescription string `json:"error_description"`
			ResolutionURL    string `json:"resolution_url"`
		}
		if json.Unmarshal(resp.body, &eula) == nil && eula.ResolutionURL != "" {
			desc := clip(scrub(eula.ErrorDescription, token, e.password))
			if desc == "" {
				desc = "an end user license agreement (EULA) must be accepted first"
			}
			return Grant{}, fmt.Errorf("NASA Earthdata refused credentials (HTTP 403): %s; accept the EULA at %s while signed in to Earthdata Login, then try again",
				desc, clip(scrub(eula.ResolutionURL, token, e.password)))
		}
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf(
			"NASA Earthdata refused credentials (HTTP 403): your Earthdata Login account has no permission for this DAAC's data at %s; check that you have been granted access (some collections need an application or approval)", where), detail))
	case resp.status == http.StatusNotFound:
		return Grant{}, fmt.Errorf("NASA Earthdata credentials endpoint %s was not found (HTTP 404); check the DAAC or the /s3credentials URL", where)
	case resp.status == http.StatusFailedDependency:
		return Grant{}, fmt.Errorf("%s", withDetail("the DAAC's credentials backend failed (HTTP 424) while issuing S3 credentials; try again later", detail))
	case resp.status == http.StatusServiceUnavailable:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf("the DAAC's S3 credentials endpoint %s is disabled or unavailable (HTTP 503); try again later, or read the data over HTTPS instead", where), detail))
	case resp.status >= 500:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf("NASA Earthdata could not issue credentials (HTTP %d, a server-side failure); try again later", resp.status), detail))
	case resp.status != http.StatusOK:
		return Grant{}, fmt.Errorf("%s", withDetail(fmt.Sprintf("NASA Earthdata credentials endpoint %s answered HTTP %d", where, resp.status), detail))
	}
	return parseEarthdata(resp.body, where, e.paths)
}

// parseEarthdata decodes the /s3credentials answer, whatever its content
// type said. Its errors never quote the body, which holds secrets.
func parseEarthdata(body []byte, where string, paths []Path) (Grant, error) {
	c, err := parseSTS(body, "NASA Earthdata", where, "check the DAAC or the /s3credentials URL")
	if err != nil {
		return Grant{}, err
	}
	g := Grant{Credentials: c}
	if len(paths) > 0 {
		g.Paths = append([]Path(nil), paths...)
	}
	return g, nil
}

// currentToken returns the token to use, getting one from Earthdata Login if
// there is none or the one obtained earlier has passed its expiration date.
// fresh says it was obtained by this call.
func (e *Earthdata) currentToken(ctx context.Context) (token string, fresh bool, err error) {
	e.mu.Lock()
	token, expires := e.token, e.tokenExpires
	e.mu.Unlock()
	if token != "" && (expires.IsZero() || time.Now().Before(expires) || e.password == "") {
		return token, false, nil
	}
	token, err = e.newToken(ctx, token)
	return token, err == nil, err
}

// newToken gets a user token from Earthdata Login with the username and
// password and caches it, unless another caller already replaced old.
func (e *Earthdata) newToken(ctx context.Context, old string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != old && e.token != "" {
		return e.token, nil
	}
	u := *e.login
	u.Path = strings.TrimRight(u.Path, "/") + earthdataTokenPath
	req, err := http.NewRequest(http.MethodPost, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(e.username, e.password)
	resp, err := do(ctx, e.client, req, "Earthdata Login")
	if err != nil {
		return "", err
	}
	where := redact(&u)
	detail := scrub(errorDetail(resp.body), e.password, old)
	switch {
	case resp.status >= 300 && resp.status < 400:
		return "", fmt.Errorf("Earthdata Login token endpoint %s redirected (HTTP %d%s) instead of answering; check the Earthdata Login URL (EARTHDATA_LOGIN_URL)", where, resp.status, redirectHost(resp.location))
	case resp.status == http.StatusUnauthorized:
		return "", fmt.Errorf("%s", withDetail(fmt.Sprintf(
			"Earthdata Login rejected the username %q and its password (HTTP 401); check %s, or set EARTHDATA_TOKEN instead", e.username, e.passwordFrom), detail))
	case resp.status == http.StatusForbidden:
		return "", fmt.Errorf("%s", withDetail(fmt.Sprintf(
			"Earthdata Login refused to issue a user token for %q (HTTP 403); sign in at %s to check the account, or set EARTHDATA_TOKEN", e.username, redact(e.login)), detail))
	case resp.status >= 500:
		return "", fmt.Errorf("%s", withDetail(fmt.Sprintf("Earthdata Login could not issue a user token (HTTP %d); try again later", resp.status), detail))
	case resp.status != http.StatusOK:
		return "", fmt.Errorf("%s", withDetail(fmt.Sprintf("Earthdata Login token endpoint %s answered HTTP %d; set EARTHDATA_TOKEN instead", where, resp.status), detail))
	}
	var r struct {
		AccessToken    string `json:"access_token"`
		TokenType      string `json:"token_type"`
		ExpirationDate string `json:"expiration_date"`
	}
	if err := json.Unmarshal(resp.body, &r); err != nil || r.AccessToken == "" {
		if looksLikeHTML(resp.body) {
			return "", fmt.Errorf("Earthdata Login token endpoint %s answered with an HTML page, not a token; check the Earthdata Login URL (EARTHDATA_LOGIN_URL)", where)
		}
		return "", fmt.Errorf("Earthdata Login token endpoint %s answered without a token (%d bytes); check the Earthdata Login URL (EARTHDATA_LOGIN_URL)", where, len(resp.body))
	}
	e.token = r.AccessToken
	e.tokenExpires = time.Time{}
	if d, err := time.Parse("01/02/2006", strings.TrimSpace(r.ExpirationDate)); err == nil {
		// The date has no time of day: count the token valid until that
		// day begins, in UTC, to be on the safe side.
		e.tokenExpires = d
	}
	return e.token, nil
}

// ParseS3URI parses "s3://bucket/prefix" into a read-only Path. The prefix
// loses its surrounding slashes; "s3://bucket" is the whole bucket.
func ParseS3URI(s string) (Path, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return Path{}, fmt.Errorf("%q is not an s3:// URI (want s3://bucket/prefix)", s)
	}
	bucket, _, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return Path{}, fmt.Errorf("%q names no bucket (want s3://bucket/prefix)", s)
	}
	p, err := parsePath("", "", s)
	if err != nil {
		return Path{}, err
	}
	p.Access = ReadOnly
	return p, nil
}

// parseNetrc finds the login and password for machine in a netrc file, or
// those of its "default" entry. It understands entries spread over one or
// several lines, "#" comments, quoted values and macdef blocks.
func parseNetrc(data []byte, machine string) (login, password string, ok bool) {
	type entry struct {
		login, password string
		set             bool
	}
	var (
		found, def entry
		cur        *entry // the entry being read; nil outside a wanted one
		inEntry    bool   // inside some machine or default entry
	)
	toks := netrcTokens(data)
	for i := 0; i < len(toks); i++ {
		next := func() string {
			if i+1 < len(toks) {
				i++
				return toks[i]
			}
			return ""
		}
		switch toks[i] {
		case "machine":
			name := next()
			inEntry = true
			cur = nil
			if strings.EqualFold(name, machine) && !found.set {
				found.set = true
				cur = &found
			}
		case "default":
			inEntry = true
			cur = nil
			if !def.set {
				def.set = true
				cur = &def
			}
		case "login":
			v := next()
			if inEntry && cur != nil {
				cur.login = v
			}
		case "password":
			v := next()
			if inEntry && cur != nil {
				cur.password = v
			}
		case "account":
			next()
		}
	}
	switch {
	case found.set:
		return found.login, found.password, found.password != ""
	case def.set:
		return def.login, def.password, def.password != ""
	}
	return "", "", false
}

// netrcTokens splits a netrc file into tokens, dropping comments and macdef
// bodies.
func netrcTokens(data []byte) []string {
	var toks []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	inMacro := false
	for sc.Scan() {
		line := sc.Text()
		if inMacro {
			if strings.TrimSpace(line) == "" {
				inMacro = false
			}
			continue
		}
		for rest := line; ; {
			rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
			if rest == "" || rest[0] == '#' {
				break
			}
			var tok string
			if rest[0] == '"' {
				var b strings.Builder
				j := 1
				for ; j < len(rest) && rest[j] != '"'; j++ {
					if rest[j] == '\\' && j+1 < len(rest) {
						j++
					}
					b.WriteByte(rest[j])
				}
				tok, rest = b.String(), rest[min(j+1, len(rest)):]
			} else {
				end := strings.IndexFunc(rest, unicode.IsSpace)
				if end < 0 {
					end = len(rest)
				}
				tok, rest = rest[:end], rest[end:]
			}
			toks = append(toks, tok)
			if tok == "macdef" {
				// The macro name follows on this line; its body runs to
				// the next blank line.
				inMacro = true
				break
			}
		}
	}
	return toks
}
