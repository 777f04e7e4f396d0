package bucket_test

import (
	"testing"
	"time"

	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/bucket/buckettest"
)

func TestMemory(t *testing.T) {
	m := bucket.NewMemory("test")
	buckettest.Run(t, m, "pre/", func(t *testing.T, key string, data []byte) { m.PutBytes(key, data) })
}

func TestMemoryWrites(t *testing.T) {
	m := bucket.NewMemory("test")
	buckettest.RunWrites(t, m, "w/")
	if n := m.Uploads(); n != 0 {
		t.Errorf("%d uploads left in progress", n)
	}
}

func TestMtimeFormat(t *testing.T) {
	for _, tm := range []time.Time{time.Unix(0, 0), time.Unix(1700000000, 123456789), time.Unix(1700000000, 0)} {
		if got := bucket.ParseMtime(bucket.FormatMtime(tm)); !got.Equal(tm) {
			t.Errorf("ParseMtime(FormatMtime(%v)) = %v", tm, got)
		}
	}
	for _, s := range []string{"", "x", "-5", "1.x", "1700000000.5"} {
		got := bucket.ParseMtime(s)
		if s == "1700000000.5" {
			if !got.Equal(time.Unix(1700000000, 500000000)) {
				t.Errorf("ParseMtime(%q) = %v", s, got)
			}
		} else if !got.IsZero() {
			t.Errorf("ParseMtime(%q) = %v, want zero", s, got)
		}
	}
}
