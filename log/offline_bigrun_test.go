package log

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestRepairOfABigHiddenRunTakesLittleMemory: the plan of a hidden run (here 200,000
// positions of segment files missing) holds the run as its first position and length,
// not a record per position, and Apply makes each void record as it writes it: planning
// (for a single node and a cluster node) and applying take memory that does not grow
// with the run.
func TestRepairOfABigHiddenRunTakesLittleMemory(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 3, 2)
	mustClose(t, l)
	const next = 200_001
	// A segment file starting at position next after the log's: the positions between
	// are hidden, as if the segment files holding them were missing.
	var b, rec []byte
	for pos := uint64(next); pos < next+3; pos++ {
		rec = AppendRecord(rec[:0], &Record{Position: pos, Kind: KindVoid, Commit: true})
		b = appendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d", next)), b, 0o640); err != nil {
		t.Fatal(err)
	}
	run := next - uint64(len(want)) - 1

	measure := func(what string, f func()) {
		t.Helper()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		// Generous bounds: a record per position takes 200,000 allocations and tens of MB.
		mallocs, bytes := after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc
		if mallocs > run/20 || bytes > 8<<20 {
			t.Errorf("%s of a run of %d positions: %d allocations, %d bytes", what, run, mallocs, bytes)
		}
	}
	measure("PlanReplicaRepair", func() {
		if _, err := PlanReplicaRepair(dir, func() (uint64, error) { return 0, nil }, nil); err != nil {
			t.Fatal(err)
		}
	})
	var plan *RepairPlan
	measure("PlanRepair", func() {
		var err error
		if plan, err = PlanRepair(dir, nil); err != nil {
			t.Fatal(err)
		}
	})
	if len(plan.Actions) != 1 || plan.Actions[0].Position != uint64(len(want))+1 || plan.Actions[0].Records != int(run) {
		t.Fatalf("plan %+v, want positions %d to %d voided", plan.Actions, len(want)+1, next-1)
	}
	measure("Apply", func() {
		if err := plan.Apply(filepath.Join(t.TempDir(), "quarantine")); err != nil {
			t.Fatal(err)
		}
	})

	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if l.LastPosition() != next+2 || len(l.Damage()) != 0 {
		t.Fatalf("after Apply: last position %d, damage %v", l.LastPosition(), l.Damage())
	}
	for _, pos := range []uint64{1, uint64(len(want)), uint64(len(want)) + 1, next / 2, next - 1, next} {
		r, err := l.Read(pos)
		if err != nil || r.Position != pos || (pos > uint64(len(want)) && r.Kind != KindVoid) || (pos <= uint64(len(want)) && r.Kind != want[pos-1].Kind) {
			t.Fatalf("Read(%d) after Apply: %+v, %v", pos, r, err)
		}
	}
}
