package log

import (
	"context"
	"os"
	"testing"
)

// TestPlanRepairNamesTheHiddenRun: a sealed segment that PlanRepair cannot plan past,
// because it holds fewer records than the next segment's name says (a segment missing
// after it, or the segment cut short) or cannot be framed without its offsets file, is
// refused with the run of positions the damage hides (Position to End-1), the same run
// a Log's reads and scans meet.
func TestPlanRepairNamesTheHiddenRun(t *testing.T) {
	src := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 400}
	l := mustOpen(t, src, opts)
	writeBatches(t, l, nil, 3, 5, 4, 6, 2, 5, 3)
	segs := l.Segments()
	mustClose(t, l)
	if len(segs) < 5 {
		t.Fatalf("%d segments, want 5 or more", len(segs))
	}
	for _, tc := range []struct {
		name       string
		damage     func(t *testing.T, dir string)
		pos, end   uint64 // the run hidden: Position and End
		damagedSeg int    // the index in segs of the segment named
	}{
		{"missing segment", func(t *testing.T, dir string) {
			if err := os.Remove(rebase(dir, segs[2].Path)); err != nil {
				t.Fatal(err)
			}
		}, segs[2].First, segs[3].First, 1},
		{"segment cut short", func(t *testing.T, dir string) {
			p := rebase(dir, segs[1].Path)
			os.Remove(sidecarPath(p))
			_, off, _ := entryAt(t, dir, segs[2].First-2)
			truncateFile(t, p, off)
		}, segs[2].First - 2, segs[2].First, 1},
		{"segment torn without offsets", func(t *testing.T, dir string) {
			p := rebase(dir, segs[1].Path)
			os.Remove(sidecarPath(p))
			_, off, _ := entryAt(t, dir, segs[2].First-2)
			truncateFile(t, p, off+3)
		}, segs[2].First - 2, segs[2].First, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			tc.damage(t, dir)
			_, err := PlanRepair(dir, nil)
			ce := asCorrupt(t, err)
			if ce.Position != tc.pos || ce.End != tc.end || ce.Segment != rebase(dir, segs[tc.damagedSeg].Path) {
				t.Fatalf("PlanRepair: %+v, want positions %d to %d of %s", ce, tc.pos, tc.end-1, segs[tc.damagedSeg].Path)
			}
			contains(t, "error", err.Error(), "positions ")

			// A Log reading the same directory meets the same run.
			l := mustOpen(t, dir, Options{NoSync: true, ReadOnly: true, Logger: quiet()})
			defer mustClose(t, l)
			err = l.Scan(context.Background(), tc.pos, func(Record) error { return nil })
			if le := asCorrupt(t, err); le.Position != ce.Position || le.End != ce.End {
				t.Fatalf("Scan from %d: %+v; PlanRepair: %+v", tc.pos, le, ce)
			}
		})
	}
}
