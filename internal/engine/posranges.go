package engine

import "sort"

// posRanges is a set of log positions kept as sorted, disjoint, non-adjacent ranges
// [from, to): a run of a million damaged or void positions takes one range, not an
// entry per position.
type posRanges struct {
	r [][2]uint64
}

// add adds the positions from to to-1.
func (s *posRanges) add(from, to uint64) {
	if from >= to {
		return
	}
	if n := len(s.r); n > 0 && s.r[n-1][1] >= from && s.r[n-1][0] <= from {
		s.r[n-1][1] = max(s.r[n-1][1], to) // the common case: in position order
		return
	}
	// The first range that ends at or after from, and the first that starts after to.
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i][1] >= from })
	j := sort.Search(len(s.r), func(j int) bool { return s.r[j][0] > to })
	if i < j {
		// Merged with the ranges i to j-1, which it touches.
		s.r[i] = [2]uint64{min(from, s.r[i][0]), max(to, s.r[j-1][1])}
		s.r = append(s.r[:i+1], s.r[j:]...)
		return
	}
	s.r = append(s.r, [2]uint64{})
	copy(s.r[i+1:], s.r[i:])
	s.r[i] = [2]uint64{from, to}
}

// has reports whether pos is in the set.
func (s *posRanges) has(pos uint64) bool {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i][1] > pos })
	return i < len(s.r) && s.r[i][0] <= pos
}

// first returns the smallest position in the set, if any.
func (s *posRanges) first() (uint64, bool) {
	if len(s.r) == 0 {
		return 0, false
	}
	return s.r[0][0], true
}
