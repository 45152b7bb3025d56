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

// SetFactsChecked makes f run each time a worker reads the facts of a cached fold to
// see whether one was erased since, until the returned restore is called. Set it before
// Run starts and restore it after Run returned.
func SetFactsChecked(f func(stream string)) (restore func()) {
	old := factsChecked
	factsChecked = f
	return func() { factsChecked = old }
}

// SetAlwaysCheckFacts makes the workers read the facts of a cached fold before each
// decision and snapshot whether or not the store erased anything since, as they did
// before Store.Erasures, until the returned restore is called.
func SetAlwaysCheckFacts() (restore func()) {
	alwaysCheckFacts.Store(true)
	return func() { alwaysCheckFacts.Store(false) }
}
