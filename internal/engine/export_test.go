package engine

// WithAfterFlush returns opts with the afterFlush hook set to f, for the tests outside
// the package.
func WithAfterFlush(opts Options, f func()) Options {
	opts.afterFlush = f
	return opts
}

// ScanAround is scanAround, for the tests outside the package.
var ScanAround = scanAround
