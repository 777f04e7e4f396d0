package rig

import (
	"context"
	"os"
	"testing"
)

// RequireMinIO skips t when MinIO is not installed, or fails it when
// S3MOUNT_REQUIRE_RIG=1 (as under make test), where a skip would hide that
// nothing was tested.
func RequireMinIO(t testing.TB) {
	t.Helper()
	if _, err := FindMinIO(); err != nil {
		if os.Getenv("S3MOUNT_REQUIRE_RIG") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// StartForTest starts a rig for t, after RequireMinIO, and stops it when t
// ends, failing t if it does not stop cleanly.
func StartForTest(t testing.TB, opts Options) *Rig {
	t.Helper()
	RequireMinIO(t)
	r, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("stopping the rig: %v", err)
		}
	})
	return r
}
