package creds

import (
	"testing"
	"time"
)

func TestParseExpiry(t *testing.T) {
	want := time.Date(2026, 3, 4, 2, 15, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Time
	}{
		{"maap current", "2026-03-04T02:15:00+0000", want},
		{"maap flat", "2026-03-04 02:15:00+0000", want},
		{"earthdata", "2026-03-04 02:15:00+00:00", want},
		{"rfc3339 zulu", "2026-03-04T02:15:00Z", want},
		{"rfc3339 offset", "2026-03-04T04:15:00+02:00", want},
		{"rfc3339 fraction", "2026-03-04T02:15:00.5Z", want.Add(500 * time.Millisecond)},
		{"maap with fraction", "2026-03-04T02:15:00.250+0000", want.Add(250 * time.Millisecond)},
		{"eodh ui", "2026-03-04 02:15:00 +0000 UTC", want},
		{"negative offset", "2026-03-03 21:15:00-0500", want},
		{"no zone", "2026-03-04T02:15:00", want},
		{"surrounding space", "  2026-03-04T02:15:00Z\n", want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExpiry(tt.in)
			if err != nil {
				t.Fatalf("ParseExpiry(%q) error: %v", tt.in, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseExpiry(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseExpiryRejects(t *testing.T) {
	for _, in := range []string{"", "tomorrow", "12/15/2021", "2026-13-04T02:15:00Z", "1700000000"} {
		if got, err := ParseExpiry(in); err == nil {
			t.Errorf("ParseExpiry(%q) = %v, want error", in, got)
		}
	}
}

func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{
		"2026-03-04T02:15:00+0000", "2026-03-04 02:15:00+0000", "2021-01-27 00:50:09+00:00",
		"2025-05-19T13:23:02Z", "2025-02-18 16:17:54 +0000 UTC", "", "\x00", "9999-99-99",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseExpiry(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("ParseExpiry(%q) location = %v, want UTC", s, got.Location())
		}
	})
}
