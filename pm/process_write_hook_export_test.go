package pm

// SetAfterProcessWrite makes f run once a write to a process stream landed, before the
// worker reads its records back, checks for an erasure since and writes a snapshot,
// until the returned restore is called: for tests of what meets those steps (a disk
// that fills, a store that stops). Set it before Run starts and restore it after Run
// returned.
func SetAfterProcessWrite(f func(stream string)) (restore func()) {
	old := afterProcessWrite
	afterProcessWrite = f
	return func() { afterProcessWrite = old }
}
