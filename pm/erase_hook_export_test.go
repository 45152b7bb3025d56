package pm

// SetBeforeDecisionWrite makes m's workers run f after they checked that a process
// stream was not erased and before they write what the process decided: for tests of
// an erasure that comes in between. Set it before Run starts.
func SetBeforeDecisionWrite(m *Manager, f func(stream string)) {
	m.hooks.beforeDecisionWrite = f
}

// SetFactsChecked makes m's workers run f each time they read the facts of a cached
// fold to see whether one was erased since. Set it before Run starts.
func SetFactsChecked(m *Manager, f func(stream string)) {
	m.hooks.factsChecked = f
}

// SetAlwaysCheckFacts makes m's workers read the facts of a cached fold before each
// decision and snapshot whether or not the store erased anything since, as they did
// before Store.Erasures. Set it before Run starts.
func SetAlwaysCheckFacts(m *Manager) {
	m.hooks.alwaysCheckFacts = true
}
