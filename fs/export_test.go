package fs

// SetReadAhead exposes setReadAhead to the benchmarks.
var SetReadAhead = setReadAhead
