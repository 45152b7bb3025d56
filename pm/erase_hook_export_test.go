package pm

// SetBeforeDecisionWrite makes f run after a worker checked that a process stream was
// not erased and before it writes what the process decided, until the returned restore
// is called: for tests of an erasure that comes in between. Set it before Run starts and
// restore it after Run returned.
func SetBeforeDecisionWrite(f func(stream string)) (restore func()) {
	old := beforeDecisionWrite
	beforeDecisionWrite = f
	return func() { beforeDecisionWrite = old }
}
