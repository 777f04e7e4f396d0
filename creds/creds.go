// Package creds fetches temporary AWS credentials from science platforms and
// renews them for as long as a mount lives.
//
// # Sources and the provider
//
// A Source asks one platform for a Grant: a set of STS credentials and, where
// the platform says, the S3 paths they authorize. A Provider wraps a Source
// and implements aws.CredentialsProvider, so it plugs into the AWS SDK. Use
// Provider.Credentials as the SDK's credentials: it is an aws.CredentialsCache
// that renews ahead of expiry.
//
// # Renewal
//
// Credentials are renewed at their parsed expiry minus a margin
// (Options.Margin, shrunk to half the lifetime for short-lived credentials),
// with jitter, never on a fixed schedule. Renewal happens lazily when a request
// needs credentials and, if Provider.Run is running, proactively in the
// background so that requests rarely wait for the platform.
//
// When S3 refuses credentials as expired or invalid, callers report it with
// Rejected, which drops the cached set so that the retried request gets new
// ones.
//
// When a renewal fails, the provider keeps handing out the current credentials
// while they are still valid and retries the platform with a doubling delay
// (Options.RetryMin up to Options.RetryMax). Once they have expired, Retrieve
// returns an error that says what went wrong; the SDK turns that into a failed
// request, and the filesystem into EACCES. Failures are logged in plain words,
// once per change of state rather than once per request. Nothing here panics
// or exits.
//
// # Errors
//
// Errors from a Source say what happened and what to do about it, in words a
// user can act on. They never contain a secret: no token, ticket, key or
// response body that could hold one.
//
// # Concurrency
//
// A Provider is safe for concurrent use. The SDK's cache makes sure only one
// renewal runs at a time.
package creds

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Access says what a path allows.
type Access int

const (
	// ReadOnly allows listing and reading.
	ReadOnly Access = iota
	// ReadWrite allows everything.
	ReadWrite
)

func (a Access) String() string {
	if a == ReadWrite {
		return "read_write"
	}
	return "read_only"
}

// Path is one authorized S3 location.
type Path struct {
	Bucket string
	// Prefix has no leading or trailing slash. Empty means the whole bucket.
	Prefix string
	Access Access
	// Kind is the platform's label for the path, such as "workspace" or "org".
	Kind string
}

// URI returns the path as s3://bucket/prefix.
func (p Path) URI() string {
	if p.Prefix == "" {
		return "s3://" + p.Bucket
	}
	return "s3://" + p.Bucket + "/" + p.Prefix
}

// Grant is what a platform hands out in one request.
type Grant struct {
	Credentials aws.Credentials
	// Paths are the locations the credentials authorize, in the platform's
	// order. Nil if the platform does not say.
	Paths []Path
}

// Source fetches fresh credentials from one platform.
//
// Implementations must be safe for concurrent use and must not put secrets in
// their errors.
type Source interface {
	// Name names the platform for logs and errors, e.g. "MAAP".
	Name() string
	// Fetch asks the platform for a new grant. Credentials that expire
	// carry their expiry (CanExpire and Expires); long-term keys do not.
	Fetch(ctx context.Context) (Grant, error)
}

// Options configure a Provider. The zero value is usable.
type Options struct {
	// Margin is how long before expiry to renew. It is shrunk to half the
	// lifetime for credentials that live less than twice as long. Default 5m.
	Margin time.Duration
	// RetryMin and RetryMax bound the delay between attempts after a failed
	// renewal. Defaults 2s and 1m.
	RetryMin, RetryMax time.Duration
	// Logger receives renewal events. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// fallbackSource marks credentials that HandleFailToRefresh handed back after
// a failed renewal, so AdjustExpiresBy leaves their retry time alone.
const fallbackSource = " (kept after a failed renewal)"

// Provider is an aws.CredentialsProvider that renews credentials from a
// Source and remembers the paths of the latest grant.
type Provider struct {
	src   Source
	opts  Options
	cache *aws.CredentialsCache

	renewals atomic.Int64

	mu sync.Mutex // guards the fields below
	// paths are the paths of the latest successful grant.
	paths []Path
	// current is the latest good credentials, with their real expiry.
	current aws.Credentials
	// lastErr is the error of the latest failed fetch, nil after a success.
	lastErr error
	// retryAt is when the next fetch may be tried after a failure.
	retryAt time.Time
	// retryDelay is the delay that was used for retryAt.
	retryDelay time.Duration
	// expiredLogged is set once the "credentials expired" line was logged
	// for the current outage.
	expiredLogged bool
	// onPaths is called with the new paths after every successful fetch.
	onPaths func([]Path)
}

var (
	_ aws.CredentialsProvider                       = (*Provider)(nil)
	_ aws.AdjustExpiresByCredentialsCacheStrategy   = (*Provider)(nil)
	_ aws.HandleFailRefreshCredentialsCacheStrategy = (*Provider)(nil)
)

// NewProvider returns a Provider that fetches from src.
func NewProvider(src Source, opts Options) *Provider {
	if opts.Margin <= 0 {
		opts.Margin = 5 * time.Minute
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 2 * time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(time.Minute, opts.RetryMin)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Provider{src: src, opts: opts}
	p.cache = aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = opts.Margin
		o.ExpiryWindowJitterFrac = 0.2
	})
	return p
}

// Credentials returns the caching provider to give the AWS SDK.
func (p *Provider) Credentials() aws.CredentialsProvider { return p.cache }

// SourceName names the platform credentials come from.
func (p *Provider) SourceName() string { return p.src.Name() }

// Start fetches the first credentials, so that a mount fails early and
// clearly when the platform cannot be reached.
func (p *Provider) Start(ctx context.Context) error {
	_, err := p.cache.Retrieve(ctx)
	if err != nil {
		p.mu.Lock()
		cause := p.lastErr
		p.mu.Unlock()
		if cause != nil {
			return cause
		}
	}
	return err
}

// Run renews credentials in the background ahead of their expiry, until ctx
// is done. Without it, renewal happens when a request finds the credentials
// due.
func (p *Provider) Run(ctx context.Context) {
	for {
		creds, err := p.cache.Retrieve(ctx)
		var wait time.Duration
		if err != nil {
			p.mu.Lock()
			wait = p.retryAt.Sub(p.opts.Now())
			p.mu.Unlock()
		} else if creds.CanExpire {
			wait = creds.Expires.Sub(p.opts.Now())
		} else {
			return
		}
		wait = max(wait, 100*time.Millisecond)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Paths returns the paths of the latest successful grant.
func (p *Provider) Paths() []Path {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Path(nil), p.paths...)
}

// OnPaths sets a function called with the paths of every successful grant,
// including the first. It is called without locks held.
func (p *Provider) OnPaths(f func([]Path)) {
	p.mu.Lock()
	p.onPaths = f
	p.mu.Unlock()
}

// Renewals is how many grants were fetched successfully, the first included.
func (p *Provider) Renewals() int64 { return p.renewals.Load() }

// Expiry returns when the current credentials expire, as their source
// declared it, or the zero time before the first ones.
func (p *Provider) Expiry() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current.Expires
}

// Retrieve fetches new credentials from the source. It is called by the
// cache; use Credentials for the SDK. After a failure it does not ask the
// platform again until the retry delay has passed.
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	now := p.opts.Now()
	p.mu.Lock()
	if p.lastErr != nil && now.Before(p.retryAt) {
		err := p.lastErr
		p.mu.Unlock()
		return aws.Credentials{}, err
	}
	p.mu.Unlock()

	g, err := p.src.Fetch(ctx)
	if err == nil && !g.Credentials.HasKeys() {
		err = fmt.Errorf("%s returned empty credentials", p.src.Name())
	}
	now = p.opts.Now()
	if err != nil {
		p.recordFailure(now, err)
		return aws.Credentials{}, err
	}

	g.Credentials.Source = p.src.Name()
	p.mu.Lock()
	recovered := p.lastErr != nil
	p.current = g.Credentials
	p.lastErr = nil
	p.retryDelay = 0
	p.expiredLogged = false
	if g.Paths != nil {
		p.paths = append([]Path(nil), g.Paths...)
	}
	paths := append([]Path(nil), p.paths...)
	onPaths := p.onPaths
	p.mu.Unlock()

	n := p.renewals.Add(1)
	if !g.Credentials.CanExpire {
		p.opts.Logger.Debug("credentials do not expire", "source", p.src.Name())
		if onPaths != nil {
			onPaths(paths)
		}
		return g.Credentials, nil
	}
	lifetime := g.Credentials.Expires.Sub(now).Round(time.Second)
	if recovered {
		p.opts.Logger.Info("credentials renewed after failures", "source", p.src.Name(), "valid_for", lifetime)
	} else {
		p.opts.Logger.Debug("credentials renewed", "source", p.src.Name(), "valid_for", lifetime, "renewals", n)
	}
	if lifetime <= 0 {
		p.opts.Logger.Warn("platform returned credentials that have already expired; is the clock right?",
			"source", p.src.Name(), "expires", g.Credentials.Expires)
	}
	if onPaths != nil {
		onPaths(paths)
	}
	return g.Credentials, nil
}

// recordFailure notes a failed fetch and schedules the next attempt.
func (p *Provider) recordFailure(now time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr == nil || p.retryDelay == 0 {
		p.retryDelay = p.opts.RetryMin
	} else {
		p.retryDelay = min(2*p.retryDelay, p.opts.RetryMax)
	}
	p.lastErr = err
	p.retryAt = now.Add(p.retryDelay)
	if p.current.HasKeys() && now.Before(p.current.Expires) {
		p.opts.Logger.Warn("credential renewal failed; still using the current credentials",
			"source", p.src.Name(), "error", err.Error(),
			"valid_until", p.current.Expires.Format(time.RFC3339), "retry_in", p.retryDelay)
		return
	}
	if !p.expiredLogged {
		p.expiredLogged = true
		msg := "cannot get credentials; S3 requests fail with permission denied until this is fixed"
		if p.current.HasKeys() {
			msg = "credentials expired and renewal failed; S3 requests fail with permission denied until renewal succeeds"
		}
		p.opts.Logger.Error(msg, "source", p.src.Name(), "error", err.Error(), "retrying_every", p.opts.RetryMax)
	}
}

// HandleFailToRefresh is called by the cache when Retrieve failed. It keeps
// the current credentials in use while they are valid, until the next retry.
func (p *Provider) HandleFailToRefresh(_ context.Context, _ aws.Credentials, err error) (aws.Credentials, error) {
	now := p.opts.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.current.HasKeys() || !now.Before(p.current.Expires) {
		return aws.Credentials{}, err
	}
	c := p.current
	c.Expires = p.retryAt
	if c.Expires.After(p.current.Expires) {
		c.Expires = p.current.Expires
	}
	c.Source += fallbackSource
	return c, nil
}

// AdjustExpiresBy is called by the cache to move the renewal time ahead of
// expiry by dur (negative). For short-lived credentials it renews at half the
// lifetime instead, keeping the cache's jitter.
func (p *Provider) AdjustExpiresBy(c aws.Credentials, dur time.Duration) (aws.Credentials, error) {
	if !c.CanExpire || strings.HasSuffix(c.Source, fallbackSource) {
		return c, nil
	}
	lifetime := c.Expires.Sub(p.opts.Now())
	if half := lifetime / 2; half > 0 && -dur > half {
		frac := float64(-dur) / float64(p.opts.Margin)
		dur = -time.Duration(frac * float64(half))
	} else if half <= 0 {
		dur = 0
	}
	c.Expires = c.Expires.Add(dur)
	return c, nil
}

// Rejected tells the provider that S3 refused the credentials with this
// access key ID as expired or invalid. If they are still the current ones,
// they are dropped, so that the next request fetches new ones; if they were
// already replaced, nothing is done. Either way the caller may retry. It
// reports whether a retry can use other credentials than the refused ones.
func (p *Provider) Rejected(accessKeyID string) bool {
	p.mu.Lock()
	current := p.current.AccessKeyID
	p.mu.Unlock()
	if accessKeyID == current {
		p.opts.Logger.Info("S3 refused the current credentials; renewing them now", "source", p.src.Name())
		p.cache.Invalidate()
	}
	return true
}

// nearExpiry is how close to their expiry credentials are when a denial
// (403) is taken as S3 seeing them expired, e.g. because of clock skew.
const nearExpiry = time.Minute

// DeniedNearExpiry tells the provider that S3 denied a request (403) signed
// with this access key ID. If those credentials expire within a minute, or
// were already replaced, the denial may only mean S3 saw them expired: they
// are dropped if still current, and it reports true so that the caller
// retries once. A denial on fresh credentials is a real one: false.
func (p *Provider) DeniedNearExpiry(accessKeyID string) bool {
	p.mu.Lock()
	current := p.current
	p.mu.Unlock()
	if accessKeyID != current.AccessKeyID {
		return accessKeyID != "" // replaced since the request was signed
	}
	if !current.CanExpire || p.opts.Now().Before(current.Expires.Add(-nearExpiry)) {
		return false
	}
	p.opts.Logger.Info("S3 denied credentials that are about to expire; renewing them now", "source", p.src.Name())
	p.cache.Invalidate()
	return true
}

// LastError returns the error of the latest failed renewal, or nil if the
// latest renewal succeeded.
func (p *Provider) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}
