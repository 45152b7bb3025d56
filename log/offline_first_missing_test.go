package log

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRepairMissingFirstSegment: a log whose first segment file is missing (its
// positions are known: 1 up to the one the next file's name starts at) is repaired as a
// first segment cut to nothing is, each of those positions getting a void record, and
// every later record is served at its position. PlanRepair failed ("the segments before
// it are missing") and the store never opened again, while the same records lost with
// the file left there, empty, were repaired.
func TestRepairMissingFirstSegment(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1024, Logger: quiet()}
	l := mustOpen(t, dir, opts)
	var want []Record
	for len(l.Segments()) < 3 {
		want = writeBatches(t, l, want, 2)
	}
	second := l.Segments()[1].First
	mustClose(t, l)
	first := filepath.Join(dir, segmentName(1))
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	if err := removeSidecar(first); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(dir, opts); err == nil {
		l.Close()
		t.Fatal("Open succeeded without the first segment")
	}

	before := snapshot(t, dir)
	plan, err := PlanRepair(dir, nil)
	if err != nil {
		t.Fatalf("PlanRepair: %v", err)
	}
	if len(plan.Actions) != 1 || plan.Actions[0].Op != RepairVoid || plan.Actions[0].Position != 1 || plan.Actions[0].Records != int(second-1) {
		t.Fatalf("plan %v, want positions 1 to %d voided", plan.Actions, second-1)
	}
	if got := snapshot(t, dir); len(got) != len(before) {
		t.Fatal("PlanRepair changed files")
	}
	if err := plan.Apply(filepath.Join(t.TempDir(), "quarantine")); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got := readAll(t, dir, opts)
	if len(got) != len(want) {
		t.Fatalf("%d records after the repair, want %d", len(got), len(want))
	}
	for i, r := range got {
		pos := uint64(i + 1)
		if pos < second && r.Kind != KindVoid {
			t.Fatalf("position %d: kind %d, want a void record", pos, r.Kind)
		}
		if pos >= second && (r.Kind != want[i].Kind || r.Event.ID != want[i].Event.ID) {
			t.Fatalf("position %d: %+v, want %+v", pos, r, want[i])
		}
	}
	if plan, err := PlanRepair(dir, nil); err != nil || len(plan.Actions) != 0 {
		t.Fatalf("a second plan: %v, %v; want nothing to repair", plan, err)
	}
}
