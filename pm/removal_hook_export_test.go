package pm

// SetAfterRemovalMarker makes f run once retention wrote a process's removal marker, and
// before it deletes the process's streams, until the returned restore is called. Set it
// before Run starts and restore it after Run returned.
func SetAfterRemovalMarker(f func(marker string)) (restore func()) {
	old := afterRemovalMarker
	afterRemovalMarker = f
	return func() { afterRemovalMarker = old }
}
