package pm

// SetAfterRemovalMarker makes m run f once retention wrote a process's removal marker,
// and before it deletes the process's streams. Set it before Run starts.
func SetAfterRemovalMarker(m *Manager, f func(marker string)) {
	m.hooks.afterRemovalMarker = f
}
