package log

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepairMissingFirstSegment: a log whose first segment file is missing (its
// positions are known: 1 up to the one the next file's name starts at) is repaired as a
// first segment cut to nothing is, each of those positions getting a void record, and
// every later record is served at its position. PlanRepair failed ("the segments before
// it are missing") and the store never opened again, while the same records lost with
// the file left there, empty, were repaired. Where no later segment holds a commit (the
// second and last segment empty after a clean stop, or torn at its first record), the
// log ends where the missing file did, whole: the plan opened the missing file ("no such
// file or directory").
func TestRepairMissingFirstSegment(t *testing.T) {
	for _, tc := range []struct {
		name     string
		segments int   // written until the log has this many
		extra    bool  // then one more batch
		lastSize int64 // the last segment's size after the damage, -1 as written
	}{
		{"later segments hold commits", 3, false, -1},
		{"second and last segment empty after a clean stop", 2, false, 0},
		{"second and last segment torn at its first record", 2, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentSize: 1024, Logger: quiet()}
			l := mustOpen(t, dir, opts)
			var want []Record
			for len(l.Segments()) < tc.segments {
				want = writeBatches(t, l, want, 2)
			}
			if tc.extra {
				want = writeBatches(t, l, want, 1)
			}
			segs := l.Segments()
			second := segs[1].First
			mustClose(t, l)
			if err := os.Remove(segs[0].Path); err != nil {
				t.Fatal(err)
			}
			if err := removeSidecar(segs[0].Path); err != nil {
				t.Fatal(err)
			}
			if tc.lastSize >= 0 {
				if err := os.Truncate(segs[len(segs)-1].Path, tc.lastSize); err != nil {
					t.Fatal(err)
				}
				want = want[:second-1]
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
			void := plan.Actions[len(plan.Actions)-1]
			if void.Op != RepairVoid || void.Position != 1 || void.Records != int(second-1) {
				t.Fatalf("plan %v, want positions 1 to %d voided", plan.Actions, second-1)
			}
			if cuts := len(plan.Actions) - 1; tc.lastSize > 0 && (cuts != 1 || plan.Actions[0].Op != RepairCut || plan.Actions[0].Bytes != tc.lastSize) ||
				tc.lastSize <= 0 && cuts != 0 {
				t.Fatalf("plan %v, want positions 1 to %d voided and a cut of the torn bytes only", plan.Actions, second-1)
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
		})
	}
}

// TestReplicaRepairMissingFirstSegmentEndingThere: a cluster node's log that would end at
// the void records of its missing first segment (no later segment holds a commit) is
// repaired only if Raft writes none of those positions again at the next start: their
// last void record carries no Raft index.
func TestReplicaRepairMissingFirstSegmentEndingThere(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1024, Logger: quiet()}
	l := mustOpen(t, dir, opts)
	for len(l.Segments()) < 2 {
		writeBatches(t, l, nil, 2)
	}
	segs := l.Segments()
	last := segs[1].First - 1
	mustClose(t, l)
	if err := os.Remove(segs[0].Path); err != nil {
		t.Fatal(err)
	}
	if err := removeSidecar(segs[0].Path); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segs[1].Path, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		replayed func() (uint64, error)
		fails    string
	}{
		{"raft writes them again", func() (uint64, error) { return last - 1, nil }, "writes the positions after"},
		{"unknown", func() (uint64, error) { return 0, errors.New("no raft state") }, "no raft state"},
		{"raft writes none of them again", func() (uint64, error) { return last, nil }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := PlanReplicaRepair(dir, tc.replayed, nil)
			if tc.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fails) || !strings.Contains(err.Error(), "rebuild this node") {
					t.Fatalf("PlanReplicaRepair: %v, want an error saying %q and how to rebuild the node", err, tc.fails)
				}
				return
			}
			if err != nil {
				t.Fatalf("PlanReplicaRepair: %v", err)
			}
			if len(plan.Actions) != 1 || plan.Actions[0].Op != RepairVoid || plan.Actions[0].Records != int(last) {
				t.Fatalf("plan %v, want positions 1 to %d voided", plan.Actions, last)
			}
		})
	}
}
