package creds

import (
	"fmt"
	"strings"
	"time"
)

// expiryLayouts are the timestamp layouts the platforms use for credential
// expiry, most common first. Go's parser accepts fractional seconds after the
// seconds field even when a layout does not name them.
var expiryLayouts = []string{
	time.RFC3339Nano,                // EO DataHub, AWS credential_process: 2025-05-19T13:23:02Z
	"2006-01-02T15:04:05-0700",      // MAAP: 2026-03-04T02:15:00+0000
	"2006-01-02 15:04:05-0700",      // MAAP, older flat format: 2026-03-04 02:15:00+0000
	"2006-01-02 15:04:05Z07:00",     // Earthdata TEA and Cumulus: 2021-01-27 00:50:09+00:00
	"2006-01-02 15:04:05 -0700 MST", // EO DataHub web UI: 2025-02-18 16:17:54 +0000 UTC
	"2006-01-02T15:04:05",           // no zone: taken as UTC
	"2006-01-02 15:04:05",           // no zone: taken as UTC
}

// ParseExpiry parses a credential expiry timestamp in any of the formats the
// supported platforms write. Timestamps without a zone are taken as UTC. The
// result is in UTC.
func ParseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("empty expiry timestamp")
	}
	for _, layout := range expiryLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return time.Time{}, fmt.Errorf("unrecognised expiry timestamp %q", s)
}
