// Package dedup drops repeated values from a slice, keeping each at its last place: the
// order of an event's links, in which a stream linked into twice while visible (which
// the store never writes, an index may hold) comes once, at its last link.
package dedup

// KeepLast returns s without the values that come again later in it: each value stays
// once, at its last place, the values in their order. It works in place: the result
// shares s's array, whose elements past the result's length are left as they were. It
// takes time and memory in proportion to len(s) (a map of the values when any comes
// twice), not to its square: a search of the values kept so far for each one took
// minutes for an event linked into 100,000 streams.
func KeepLast[T comparable](s []T) []T {
	if len(s) < 2 {
		return s
	}
	last := make(map[T]int, len(s))
	for i, v := range s {
		last[v] = i
	}
	if len(last) == len(s) {
		return s
	}
	kept := s[:0]
	for i, v := range s {
		if last[v] == i {
			kept = append(kept, v)
		}
	}
	return kept
}
