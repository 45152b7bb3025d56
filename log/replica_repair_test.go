package log

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestPlanReplicaRepairCutsOnlyWhatRaftReplays damages the last two writes (one record
// each) of a sealed segment that an empty tail follows, in a cluster node's log. Raft
// writes again, at the node's next start, only the positions above its newest
// snapshot's and its seed entry's (replayed): the repair cuts the damaged writes above
// that position, for Raft's replay to write them again, and keeps those at or below it
// as void records, which no replay writes again (a cut there lost them: the node found
// its store behind its own snapshot, or its seed, and could not start). A position that
// does not end a damaged write, or one that cannot be told, fails the plan, naming why.
func TestPlanReplicaRepairCutsOnlyWhatRaftReplays(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int    // records a write
		damaged  int    // last writes whose last record is damaged
		replayed int64  // positions before the last that Raft's replay starts after; -1: cannot be told
		voids    int    // the damaged records kept as void records, counted from the first
		err      string // the plan fails, saying this
	}{
		{name: "all replayed", size: 1, damaged: 2, replayed: 2},
		{name: "replayed from before the last intact commit", size: 1, damaged: 2, replayed: 5},
		{name: "the last write replayed", size: 1, damaged: 2, replayed: 1, voids: 1},
		{name: "none replayed", size: 1, damaged: 2, replayed: 0, voids: 2},
		{name: "none replayed, a batch", size: 3, damaged: 1, replayed: 0, voids: 1},
		{name: "replay from inside a write", size: 3, damaged: 1, replayed: 1, err: "is not a damaged one that ends a write"},
		{name: "cannot be told", size: 1, damaged: 1, replayed: -1, err: "no snapshot to read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentSize: 1024, Logger: quiet()}
			last := crashAfterRollover(t, dir, tc.size, false)
			want := readAll(t, copyDir(t, dir), opts)
			var damaged []uint64
			for i := tc.damaged - 1; i >= 0; i-- {
				pos := last - uint64(i*tc.size)
				path, off, size := entryAt(t, dir, pos)
				flipBit(t, path, off+int64(size)/2)
				damaged = append(damaged, pos)
			}
			replayed := func() (uint64, error) {
				if tc.replayed < 0 {
					return 0, errors.New("no snapshot to read")
				}
				return last - uint64(tc.replayed), nil
			}
			plan, err := PlanReplicaRepair(dir, replayed, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "empty data directory") {
					t.Fatalf("PlanReplicaRepair: %v, want an error saying %q and what to do", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("PlanReplicaRepair: %v", err)
			}
			var voids []uint64
			cut := false
			for _, a := range plan.Actions {
				t.Log(a)
				switch {
				case a.Op == RepairVoid:
					voids = append(voids, a.Position)
				case a.Records > 0:
					cut = true
					if !strings.Contains(a.Reason, "Raft index") || !strings.Contains(a.Reason, "Raft applies that write's entry again") {
						t.Fatalf("cut %q does not say why, and what writes it again", a.Reason)
					}
				}
			}
			if want := damaged[:tc.voids]; !reflect.DeepEqual(voids, want) && len(voids)+len(want) > 0 {
				t.Fatalf("plan voids %v, want %v", voids, want)
			}
			if cut != (tc.voids < tc.damaged) {
				t.Fatalf("plan cuts records: %v, want %v", cut, tc.voids < tc.damaged)
			}
			if err := plan.Apply(filepath.Join(t.TempDir(), "quarantine")); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			kept := append([]Record(nil), want[:damaged[0]-uint64(tc.size)]...)
			for i, pos := range damaged[:tc.voids] {
				kept = append(kept, want[len(kept):pos-1]...)
				// A void record is a commit if it ends the log or a valid write follows it.
				v, err := DecodeRecord(AppendRecord(nil, &Record{Position: pos, Kind: KindVoid, Commit: i == tc.voids-1}))
				if err != nil {
					t.Fatal(err)
				}
				kept = append(kept, v)
			}
			checkRepaired(t, dir, opts, kept)
		})
	}
}
