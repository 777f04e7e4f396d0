package fs

import "time"

// SetClock sets the clock that f's listings are timed by.
func SetClock(f *FS, now func() time.Time) { f.now = now }
