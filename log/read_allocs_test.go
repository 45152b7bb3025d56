package log

import "testing"

// TestSealedReadAllocations pins the allocations of a Read of a sealed segment's record
// whose table is loaded: the entry's buffer and the record decoded from it. Handling a
// damaged segment's error must cost nothing on this path.
func TestSealedReadAllocations(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{SegmentSize: 1024})
	defer mustClose(t, l)
	for len(l.Segments()) < 3 {
		writeBatches(t, l, nil, 1)
	}
	const pos = 2 // in the first segment, sealed
	// The first Read loads the segment's table.
	if _, err := l.Read(pos); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if r, err := l.Read(pos); err != nil || r.Position != pos {
			t.Fatalf("Read(%d): %d, %v", pos, r.Position, err)
		}
	})
	if want := 4.0; allocs > want {
		t.Errorf("Read of a sealed record allocates %v times, want at most %v", allocs, want)
	}
}
