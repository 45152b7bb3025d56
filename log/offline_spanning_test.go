package log

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestPlanRepairCutNamesTheSpanningWritesFirstPosition: framing damage at the start of
// the last segment, in a write that began in the segment before it, with records of
// later synced writes past it, is cut where that write began, in the segment before:
// its commit record is lost with the damage. The cut's description named the last
// segment's first position as the first one lost, while the plan cut (and the store
// filled) from the write's start, and called the write's records it cuts in the segment
// before uncommitted.
func TestPlanRepairCutNamesTheSpanningWritesFirstPosition(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 1024, Logger: quiet()}
	l := mustOpen(t, dir, opts)
	var want []Record
	var start, first uint64 // the spanning write's first position, the last segment's
	for i := 0; start == 0; i++ {
		if i == 1000 {
			t.Fatal("no write spanned a segment boundary")
		}
		before := len(l.Segments())
		prev := l.LastPosition()
		want = writeBatches(t, l, want, 4)
		if segs := l.Segments(); len(segs) > before && segs[len(segs)-1].First > prev+1 && segs[len(segs)-1].First <= l.LastPosition() {
			start, first = prev+1, segs[len(segs)-1].First
		}
	}
	want = writeBatches(t, l, want, 1, 1, 1)
	last := l.LastPosition()
	mustClose(t, l)

	path, from, _ := entryAt(t, dir, first)
	_, to, _ := entryAt(t, dir, first+1)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[from+5 : to+5])
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanRepair(dir, nil)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if got := plan.Last(); got != start-1 {
		t.Fatalf("plan ends the log at %d, want %d (before the write spanning position %d)", got, start-1, first)
	}
	a := plan.Actions[len(plan.Actions)-1]
	if a.Op != RepairCut || a.Position != start || a.Written != last {
		t.Fatalf("last action %+v, want the cut from position %d, written to %d", a, start, last)
	}
	desc := a.String()
	contains(t, "description", desc, fmt.Sprintf("positions %d to %d are lost, among them records of writes acknowledged", start, last))
	contains(t, "description", desc, fmt.Sprintf("(%d whole records, from position %d)", first-start, start))
	contains(t, "description", desc, fmt.Sprintf("%d record(s) of a write whose end is lost with the damage", first-start))
	if err := plan.Apply(filepath.Join(t.TempDir(), "quarantine")); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	checkRepaired(t, dir, opts, want[:start-1])
}
