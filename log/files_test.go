package log

import (
	"errors"
	"os"
	"testing"
)

// TestReadsOfAShortenedSealedSegment: a sealed segment is read through a mapping; a file
// cut short under it (no writer of this package does that, but a disk or an operator
// can) must give a CorruptError for the records it lost, never a crash, and the
// records still in it must read back as written.
func TestReadsOfAShortenedSealedSegment(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true, SegmentSize: 64 << 10})
	defer mustClose(t, l)
	var want []Record
	for len(l.Segments()) < 3 {
		want = writeBatches(t, l, want, 50)
	}
	seg := l.Segments()[0]
	mid := seg.First + uint64(seg.Count)/2
	if _, err := l.Read(mid); err != nil { // maps the segment
		t.Fatal(err)
	}
	if err := os.Truncate(seg.Path, seg.Size/4); err != nil {
		t.Fatal(err)
	}
	for pos := seg.First; pos < seg.First+uint64(seg.Count); pos++ {
		r, err := l.Read(pos)
		var ce *CorruptError
		switch {
		case errors.As(err, &ce):
			if ce.Position != pos {
				t.Fatalf("Read(%d): corruption reported at position %d", pos, ce.Position)
			}
		case err != nil:
			t.Fatalf("Read(%d) = %v, want a record or a *CorruptError", pos, err)
		case r.Event.ID != want[pos-1].Event.ID:
			t.Fatalf("Read(%d) = event %s, want %s", pos, r.Event.ID, want[pos-1].Event.ID)
		}
	}
	// The records after the cut are reported, the ones before read back.
	last := seg.First + uint64(seg.Count) - 1
	if _, err := l.Read(last); err == nil {
		t.Fatalf("Read(%d), cut off the file, succeeded", last)
	}
	if _, err := l.Read(seg.First); err != nil {
		t.Fatalf("Read(%d), before the cut: %v", seg.First, err)
	}
}
