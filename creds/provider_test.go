package creds

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// fakeSource hands out numbered credentials with a fixed lifetime, or fails
// while err is set.
type fakeSource struct {
	mu       sync.Mutex // guards the fields below
	now      func() time.Time
	lifetime time.Duration
	err      error
	calls    int
}

func (s *fakeSource) Name() string { return "fake" }

func (s *fakeSource) Fetch(context.Context) (Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return Grant{}, s.err
	}
	return Grant{
		Credentials: aws.Credentials{
			AccessKeyID: "AK" + strings.Repeat("x", s.calls), SecretAccessKey: "S",
			CanExpire: true, Expires: s.now().Add(s.lifetime),
		},
		Paths: []Path{{Bucket: "b", Prefix: "p", Access: ReadWrite}},
	}, nil
}

func (s *fakeSource) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAdjustExpiresBy(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := NewProvider(&fakeSource{}, Options{Margin: 5 * time.Minute, Now: clock.Now})
	tests := []struct {
		name     string
		lifetime time.Duration
		dur      time.Duration
		want     time.Duration // renewal time from now
	}{
		{"12h keeps the margin", 12 * time.Hour, -5 * time.Minute, 12*time.Hour - 5*time.Minute},
		{"1h keeps the margin", time.Hour, -4 * time.Minute, time.Hour - 4*time.Minute},
		{"5s renews at half life", 5 * time.Second, -5 * time.Minute, 2500 * time.Millisecond},
		{"5s with jitter", 5 * time.Second, -4 * time.Minute, 3 * time.Second},
		{"already expired", -time.Second, -5 * time.Minute, -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := aws.Credentials{CanExpire: true, Expires: clock.Now().Add(tt.lifetime)}
			got, err := p.AdjustExpiresBy(c, tt.dur)
			if err != nil {
				t.Fatal(err)
			}
			if d := got.Expires.Sub(clock.Now()); d != tt.want {
				t.Errorf("renew in %v, want %v", d, tt.want)
			}
		})
	}
}

func TestProviderFailureKeepsValidCredentials(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := &fakeSource{now: clock.Now, lifetime: time.Hour}
	var logs bytes.Buffer
	p := NewProvider(src, Options{Now: clock.Now, RetryMin: time.Second, RetryMax: 8 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()

	first, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src.set(errors.New("endpoint down"))
	clock.Advance(50 * time.Minute)

	if _, err := p.Retrieve(ctx); err == nil {
		t.Fatal("Retrieve succeeded while the source fails")
	}
	kept, err := p.HandleFailToRefresh(ctx, aws.Credentials{}, errors.New("x"))
	if err != nil {
		t.Fatalf("HandleFailToRefresh with valid credentials: %v", err)
	}
	if kept.AccessKeyID != first.AccessKeyID {
		t.Errorf("kept %q, want %q", kept.AccessKeyID, first.AccessKeyID)
	}
	if want := clock.Now().Add(time.Second); !kept.Expires.Equal(want) {
		t.Errorf("kept until %v, want the retry time %v", kept.Expires, want)
	}
	if adj, _ := p.AdjustExpiresBy(kept, -5*time.Minute); !adj.Expires.Equal(kept.Expires) {
		t.Errorf("AdjustExpiresBy moved a kept credential's retry time to %v", adj.Expires)
	}

	// Before the retry time the source is not asked again.
	calls := src.calls
	p.Retrieve(ctx)
	if src.calls != calls {
		t.Errorf("source asked again before the retry delay")
	}
	// Delays double up to RetryMax.
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		clock.Advance(time.Minute)
		p.Retrieve(ctx)
		p.mu.Lock()
		got := p.retryDelay
		p.mu.Unlock()
		if got != want {
			t.Errorf("retry delay = %v, want %v", got, want)
		}
	}
	// Past the real expiry nothing is handed out.
	clock.Advance(time.Hour)
	if _, err := p.HandleFailToRefresh(ctx, aws.Credentials{}, errors.New("down")); err == nil {
		t.Error("HandleFailToRefresh handed out expired credentials")
	}
	clock.Advance(time.Minute)
	p.Retrieve(ctx)
	clock.Advance(time.Minute)
	p.Retrieve(ctx)
	if n := strings.Count(logs.String(), "credentials expired and renewal failed"); n != 1 {
		t.Errorf("expiry logged %d times, want once:\n%s", n, logs.String())
	}

	// Recovery.
	src.set(nil)
	clock.Advance(time.Minute)
	if _, err := p.Retrieve(ctx); err != nil {
		t.Fatalf("Retrieve after recovery: %v", err)
	}
	if p.LastError() != nil {
		t.Errorf("LastError after recovery = %v", p.LastError())
	}
	if !strings.Contains(logs.String(), "renewed after failures") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// TestCacheRenewsShortLivedCredentials runs the real aws.CredentialsCache
// with credentials that live 2 seconds.
func TestCacheRenewsShortLivedCredentials(t *testing.T) {
	src := &fakeSource{now: time.Now, lifetime: 2 * time.Second}
	p := NewProvider(src, Options{})
	var paths [][]Path
	p.OnPaths(func(ps []Path) { paths = append(paths, ps) })
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	deadline := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(deadline) {
		c, err := p.Credentials().Retrieve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !time.Now().Before(c.Expires) {
			t.Fatalf("cache handed out credentials due at %v", c.Expires)
		}
		seen[c.AccessKeyID] = true
		time.Sleep(20 * time.Millisecond)
	}
	// Renewal at about half of a 2s life: at least 3 sets in 3.5s.
	if len(seen) < 3 || p.Renewals() < 3 {
		t.Errorf("saw %d credential sets and %d renewals in 3.5s, want at least 3", len(seen), p.Renewals())
	}
	if len(paths) != int(p.Renewals()) || len(paths[0]) != 1 {
		t.Errorf("OnPaths called %d times for %d renewals", len(paths), p.Renewals())
	}
}

func TestStartReportsCause(t *testing.T) {
	src := &fakeSource{now: time.Now, lifetime: time.Hour, err: errors.New("MAAP refused the request")}
	p := NewProvider(src, Options{Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	err := p.Start(context.Background())
	if err == nil || err.Error() != "MAAP refused the request" {
		t.Errorf("Start = %v, want the source's error", err)
	}
}

func TestDeniedNearExpiry(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := &fakeSource{now: clock.Now, lifetime: time.Hour}
	p := NewProvider(src, Options{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.DeniedNearExpiry(c.AccessKeyID) {
		t.Error("a denial of fresh credentials was taken for an expiry")
	}
	clock.Advance(59*time.Minute + 30*time.Second)
	if !p.DeniedNearExpiry(c.AccessKeyID) {
		t.Error("a denial 30s before expiry was not taken for an expiry")
	}
	if !p.DeniedNearExpiry("AK-an-older-key") {
		t.Error("a denial of replaced credentials should be retried with the current ones")
	}
	if p.DeniedNearExpiry("") {
		t.Error("a denial with no known key was retried")
	}
}
