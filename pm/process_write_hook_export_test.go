package pm

// SetAfterProcessWrite makes m's workers run f once a write to a process stream landed,
// before they read its records back, check for an erasure since and write a snapshot:
// for tests of what meets those steps (a disk that fills, a store that stops). Set it
// before Run starts.
func SetAfterProcessWrite(m *Manager, f func(stream string)) {
	m.hooks.afterProcessWrite = f
}
