//go:build race

package fs_test

// raceEnabled reports whether the race detector is on.
const raceEnabled = true
