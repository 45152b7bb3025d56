package engine

// WithAfterFlush returns opts with the afterFlush hook set to f, for the tests outside
// the package.
func WithAfterFlush(opts Options, f func()) Options {
	opts.afterFlush = f
	return opts
}

// ScanAround is scanAround, for the tests outside the package.
var ScanAround = scanAround

// WithStopReplay returns opts with the stopReplay hook set to f, and ErrReplayStopped is
// the error of the Open it stops, for the tests outside the package.
func WithStopReplay(opts Options, f func(pos uint64) bool) Options {
	opts.stopReplay = f
	return opts
}

var ErrReplayStopped = errReplayStopped

// SkippedMarker is skippedMarker, for the tests outside the package: the SkippedFile a
// replay to the position last writes.
var SkippedMarker = skippedMarker
