package log

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestPlanRepairPastOpenRefusals damages a store the way Open refuses to repair on its
// own (damage a crash cannot explain, in a segment another segment file follows, or a
// segment whose record count does not reach the next file's name): Open fails, but
// PlanRepair plans past it, Apply carries the plan out, and Open then succeeds with
// every undamaged record before the damage and with positions continuing after it.
// Damaged records whose framing holds become void records; framing damage and missing
// records are cut, the cut saying which positions are lost. Before, PlanRepair failed
// with Open's error and only removing files by hand could open the store.
// PlanReplicaRepair (a cluster node's log) makes the same plans when Raft writes none of
// the damaged positions again (the node's snapshot covers them); when it writes them
// all again, it cuts the write of a damaged record it would leave after the last intact
// commit record as a void one, saying that its Raft index is lost: the log then ends at
// an intact commit record.
func TestPlanRepairPastOpenRefusals(t *testing.T) {
	replayed := func(pos uint64) func() (uint64, error) { return func() (uint64, error) { return pos, nil } }
	for _, v := range []struct {
		name string
		plan func(string, func(done, total int64)) (*RepairPlan, error)
		cuts bool // a replica's log whose damaged positions Raft writes again
	}{
		{"single", PlanRepair, false},
		{"replica, all replayed", func(dir string, progress func(done, total int64)) (*RepairPlan, error) {
			return PlanReplicaRepair(dir, replayed(0), progress)
		}, true},
		{"replica, none replayed", func(dir string, progress func(done, total int64)) (*RepairPlan, error) {
			return PlanReplicaRepair(dir, replayed(math.MaxUint64), progress)
		}, false},
	} {
		t.Run(v.name, func(t *testing.T) { testPlanRepairPastOpenRefusals(t, v.plan, v.cuts) })
	}
}

func testPlanRepairPastOpenRefusals(t *testing.T, planRepair func(string, func(done, total int64)) (*RepairPlan, error), replica bool) {
	for _, tc := range []struct {
		name   string
		size   int    // records a write
		back   uint64 // the damaged record is back positions before the last
		damage string // flip, zero, cut (at the entry), gap (a sealed segment removed, the tail emptied), extra (a record appended to the sealed segment)
		void   bool   // the damaged record becomes a void record, else the log is cut
		kept   uint64 // positions kept, counted back from the damaged one (cut only)
	}{
		{name: "last record, flipped bit", size: 1, damage: "flip", void: true},
		{name: "last record of a batch, flipped bit", size: 3, damage: "flip", void: true},
		{name: "last record, zeroed", size: 1, damage: "zero", kept: 1},
		{name: "middle record of the last batch, zeroed", size: 3, back: 1, damage: "zero", kept: 2},
		{name: "last record lost whole", size: 1, damage: "cut", kept: 1},
		{name: "last batch lost whole", size: 3, back: 2, damage: "cut", kept: 1},
		{name: "sealed segment removed, tail emptied", size: 1, damage: "gap", kept: 1},
		{name: "a record more than the next file's name allows", size: 1, damage: "extra", kept: 1},
	} {
		if replica && tc.void {
			// The damaged record ends the last write: its write is cut.
			tc.void, tc.kept = false, uint64(tc.size)
		}
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentSize: 1024, Logger: quiet()}
			last := crashAfterRollover(t, dir, tc.size, false)
			want := readAll(t, copyDir(t, dir), opts)
			pos := last - tc.back
			path, off, size := entryAt(t, dir, pos)
			switch tc.damage {
			case "flip":
				flipBit(t, path, off+int64(size)/2)
			case "zero":
				b, _ := os.ReadFile(path)
				clear(b[off : off+int64(size)])
				os.WriteFile(path, b, 0o640)
			case "cut":
				truncateFile(t, path, off)
			case "extra":
				r := genBatch(last, 1)[0]
				r.Position = last + 1
				appendFile(t, path, encodedEntry(r))
				pos = last + 1
			case "gap":
				l := mustOpen(t, dir, opts)
				for len(l.Segments()) < 4 {
					want = writeBatches(t, l, want, tc.size)
				}
				mustClose(t, l)
				segs, _, _ := listSegments(dir)
				n := len(segs)
				truncateFile(t, segs[n-1].path, 0)
				if err := os.Remove(segs[n-2].path); err != nil {
					t.Fatal(err)
				}
				removeSidecar(segs[n-2].path)
				pos = segs[n-2].first
			}
			if l, err := Open(dir, opts); err == nil {
				l.Close()
				t.Fatal("Open succeeded: the damage is not one Open refuses")
			}
			// A crash during Apply after its first change to the segments (the truncate
			// of an offline cut, else the removals): planned and applied again, it
			// reaches the same result.
			crashed := copyDir(t, dir)
			plan, err := planRepair(crashed, nil)
			if err != nil {
				t.Fatalf("PlanRepair: %v", err)
			}
			if plan.rewrites = nil; plan.cut.loss != "" {
				plan.cut.remove = nil
			} else {
				plan.cut.truncate = nil
			}
			if err := plan.Apply(filepath.Join(t.TempDir(), "quarantine")); err != nil {
				t.Fatalf("Apply, crashed: %v", err)
			}

			plan, err = planRepair(dir, nil)
			if err != nil {
				t.Fatalf("PlanRepair: %v", err)
			}
			var voids []uint64
			var lost bool
			for _, a := range plan.Actions {
				t.Log(a)
				if a.Op == RepairVoid {
					voids = append(voids, a.Position)
				}
				lost = lost || a.Op == RepairCut && strings.Contains(a.Reason, "are lost")
				// A replica's cut of a damaged write says why: no positions of a cut
				// before damage Open refuses are lost, the cluster writes them again.
				lost = lost || replica && a.Op == RepairCut && strings.Contains(a.Reason, "Raft index")
			}
			if tc.void && (!reflect.DeepEqual(voids, []uint64{pos}) || lost) {
				t.Fatalf("plan voids %v (want [%d]), says positions are lost: %v", voids, pos, lost)
			}
			if !tc.void && (len(voids) != 0 || !lost) {
				t.Fatalf("plan voids %v, says positions are lost: %v; want a cut that says so", voids, lost)
			}
			q := filepath.Join(t.TempDir(), "quarantine")
			if err := plan.Apply(q); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if info, err := os.Stat(q); err != nil || info.Size() == 0 && tc.damage != "gap" {
				t.Fatalf("quarantine file: %v, %v", info, err)
			}

			kept := want
			if tc.void {
				v, err := DecodeRecord(AppendRecord(nil, &Record{Position: pos, Kind: KindVoid, Commit: true}))
				if err != nil {
					t.Fatal(err)
				}
				kept = append(append([]Record(nil), want[:pos-1]...), v)
				kept = append(kept, want[pos:]...)
			} else {
				kept = want[:pos-tc.kept]
			}
			checkRepaired(t, dir, opts, kept)
			plan, err = planRepair(crashed, nil)
			if err != nil {
				t.Fatalf("PlanRepair after the crash: %v", err)
			}
			if err := plan.Apply(filepath.Join(t.TempDir(), "quarantine")); err != nil {
				t.Fatalf("Apply after the crash: %v", err)
			}
			checkRepaired(t, crashed, opts, kept)
		})
	}
}

// checkRepaired checks that the log in dir, repaired offline, opens with no damage and
// no repair and holds kept, and that positions go on after it.
func checkRepaired(t *testing.T, dir string, opts Options, kept []Record) {
	t.Helper()
	l := mustOpen(t, dir, opts)
	checkContent(t, l, kept)
	if d := l.Damage(); len(d) != 0 || len(l.Repairs()) != 0 {
		t.Fatalf("after Apply, Open found Damage %v, made Repairs %+v", d, l.Repairs())
	}
	kept = writeBatches(t, l, kept, 2)
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkContent(t, l, kept)
}

// readAll returns every record of the log in dir.
func readAll(t *testing.T, dir string, opts Options) []Record {
	t.Helper()
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	var out []Record
	for pos := uint64(1); pos <= l.LastPosition(); pos++ {
		r, err := l.Read(pos)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}
