package engine

import (
	"reflect"
	"testing"
)

// TestPosRanges: verify's set of damaged and void positions keeps runs of positions as
// ranges: a run of a million positions, met one by one (void records) or at once (a run
// a damaged sealed segment hides), takes one range and no allocation per position.
func TestPosRanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		adds [][2]uint64
		want [][2]uint64
	}{
		{"in order", [][2]uint64{{1, 2}, {2, 3}, {3, 10}, {12, 13}}, [][2]uint64{{1, 10}, {12, 13}}},
		{"out of order", [][2]uint64{{12, 13}, {1, 2}, {5, 6}, {3, 4}}, [][2]uint64{{1, 2}, {3, 4}, {5, 6}, {12, 13}}},
		{"bridging", [][2]uint64{{1, 3}, {5, 7}, {9, 11}, {2, 10}}, [][2]uint64{{1, 11}}},
		{"adjacent", [][2]uint64{{5, 7}, {1, 5}, {7, 8}}, [][2]uint64{{1, 8}}},
		{"inside", [][2]uint64{{1, 10}, {3, 4}, {1, 2}}, [][2]uint64{{1, 10}}},
		{"empty", [][2]uint64{{4, 4}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s posRanges
			for _, a := range tc.adds {
				s.add(a[0], a[1])
			}
			if !reflect.DeepEqual(s.r, tc.want) {
				t.Fatalf("ranges %v, want %v", s.r, tc.want)
			}
			for p := uint64(0); p < 15; p++ {
				in := false
				for _, r := range tc.want {
					in = in || r[0] <= p && p < r[1]
				}
				if s.has(p) != in {
					t.Errorf("has(%d) = %v, want %v", p, s.has(p), in)
				}
			}
		})
	}

	var s posRanges
	allocs := testing.AllocsPerRun(1, func() {
		for p := uint64(1); p <= 1_000_000; p++ {
			s.add(p, p+1)
		}
		s.add(2_000_000, 3_000_000)
	})
	if allocs > 10 || len(s.r) != 2 {
		t.Fatalf("a million positions one by one and a run of a million: %v allocations, ranges %v", allocs, s.r)
	}
	if first, ok := s.first(); !ok || first != 1 || !s.has(2_999_999) || s.has(3_000_000) {
		t.Fatalf("first %d, %v; has(2999999) %v", first, ok, s.has(2_999_999))
	}
}
