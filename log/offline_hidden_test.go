package log

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanRepairVoidsTheHiddenRun: a sealed segment before the log's end that holds
// fewer records than the next segment's name says (a segment file missing after it, or
// the segment cut short) or cannot be framed without its offsets file hides a run of
// positions (Position to End-1), the run a Log's reads and scans meet. PlanRepair plans
// one void action for the run: Apply keeps the entries before it, quarantines the bytes
// the run's framing cannot place, and writes a void record at each of its positions, so
// that the log opens with every position in place, the run void, nothing damaged, and a
// second plan finds nothing to do. PlanReplicaRepair plans the same for a cluster node.
func TestPlanRepairVoidsTheHiddenRun(t *testing.T) {
	src := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 400}
	l := mustOpen(t, src, opts)
	want := writeBatches(t, l, nil, 3, 5, 4, 6, 2, 5, 3)
	segs := l.Segments()
	mustClose(t, l)
	if len(segs) < 5 {
		t.Fatalf("%d segments, want 5 or more", len(segs))
	}
	for _, tc := range []struct {
		name       string
		damage     func(t *testing.T, dir string) []byte // returns the bytes the run's framing cannot place
		pos, end   uint64                                // the run hidden: Position and End
		damagedSeg int                                   // the index in segs of the segment named
	}{
		{"missing segment", func(t *testing.T, dir string) []byte {
			if err := os.Remove(rebase(dir, segs[2].Path)); err != nil {
				t.Fatal(err)
			}
			return nil
		}, segs[2].First, segs[3].First, 1},
		{"segment cut short", func(t *testing.T, dir string) []byte {
			p := rebase(dir, segs[1].Path)
			os.Remove(sidecarPath(p))
			_, off, _ := entryAt(t, dir, segs[2].First-2)
			truncateFile(t, p, off)
			return nil
		}, segs[2].First - 2, segs[2].First, 1},
		{"segment torn without offsets", func(t *testing.T, dir string) []byte {
			p := rebase(dir, segs[1].Path)
			os.Remove(sidecarPath(p))
			_, off, _ := entryAt(t, dir, segs[2].First-2)
			truncateFile(t, p, off+3)
			b, _ := os.ReadFile(p)
			return b[off:]
		}, segs[2].First - 2, segs[2].First, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			removed := tc.damage(t, dir)
			seg := rebase(dir, segs[tc.damagedSeg].Path)

			// A cluster node's log gets the same plan: the run is before the log's last
			// intact commit record, which no Raft replay writes again, so which positions
			// Raft replays is not even asked.
			replica, err := PlanReplicaRepair(copyDir(t, dir), func() (uint64, error) {
				t.Error("PlanReplicaRepair asked which positions Raft writes again")
				return 0, nil
			}, nil)
			if err != nil || len(replica.Actions) != 1 || replica.Actions[0].Op != RepairVoid ||
				replica.Actions[0].Position != tc.pos || replica.Actions[0].Records != int(tc.end-tc.pos) {
				t.Fatalf("PlanReplicaRepair: %v, %v; want positions %d to %d voided", replica, err, tc.pos, tc.end-1)
			}

			// A Log reading the directory meets the run.
			l := mustOpen(t, dir, Options{NoSync: true, ReadOnly: true, Logger: quiet()})
			err = l.Scan(context.Background(), tc.pos, func(Record) error { return nil })
			if le := asCorrupt(t, err); le.Position != tc.pos || le.End != tc.end {
				t.Fatalf("Scan from %d: %+v, want positions %d to %d", tc.pos, le, tc.pos, tc.end-1)
			}
			mustClose(t, l)

			plan, err := PlanRepair(dir, nil)
			if err != nil {
				t.Fatalf("PlanRepair: %v", err)
			}
			if len(plan.Actions) != 1 {
				t.Fatalf("plan %v, want one action", plan.Actions)
			}
			a := plan.Actions[0]
			if a.Op != RepairVoid || a.Position != tc.pos || a.Records != int(tc.end-tc.pos) || a.Segment != seg || a.Bytes != int64(len(removed)) {
				t.Fatalf("action %+v, want positions %d to %d of %s voided, %d bytes removed", a, tc.pos, tc.end-1, seg, len(removed))
			}
			contains(t, "description", a.String(), fmt.Sprintf("replace positions %d to %d", tc.pos, tc.end-1))

			q := filepath.Join(t.TempDir(), "quarantine")
			if err := plan.Apply(q); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			qb, err := os.ReadFile(q)
			if err != nil {
				t.Fatal(err)
			}
			header := fmt.Sprintf("pmd-quarantine 1 void segment=%s offset=%d position=%d bytes=%d records=%d reason=",
				filepath.Base(seg), a.Offset, tc.pos, len(removed), tc.end-tc.pos)
			if !strings.HasPrefix(string(qb), header) || !bytes.Contains(qb, append([]byte("\n"), removed...)) {
				t.Fatalf("quarantine %q, want %q and the %d bytes removed", qb, header, len(removed))
			}

			kept := append([]Record(nil), want...)
			for p := tc.pos; p < tc.end; p++ {
				// Each void stands for a write of its own; the last ends one if the
				// record after it begins a write, as a single void record does.
				commit := p+1 < tc.end || writeStart(&want[p]) == p+1
				kept[p-1] = Record{Position: p, Kind: KindVoid, Commit: commit}
			}
			checkRepaired(t, dir, opts, kept)
			l = mustOpen(t, dir, opts)
			checkFiles(t, l)
			mustClose(t, l)
			if plan, err := PlanRepair(dir, nil); err != nil || len(plan.Actions) != 0 {
				t.Fatalf("PlanRepair after Apply: %v, %v; want nothing to do", plan, err)
			}
		})
	}
}
