package log

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanRepairCutsFramingDamageInTheLastSegment: a zeroed block in the middle of the
// last segment, with records of later synced writes after it, is damage a crash cannot
// explain, and Open refuses it. PlanRepair failed on it too, so the store stayed down
// with no tool to bring it back. It now cuts the log after the last write committed
// before the damage, quarantining every byte from there to the end of the segment: the
// records past the damage look intact, but no entry start is known past it (an event's
// data may hold bytes that look like records), so none is kept. The cut says which
// positions are lost, that acknowledged writes are among them, and (Written) the last
// position the records past the damage show written, for the store to keep those
// positions from later writes. Open then opens the log at the cut; a second plan has
// nothing to do. On a cluster node the plan is the same, saying that Raft writes the
// positions again.
func TestPlanRepairCutsFramingDamageInTheLastSegment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sizes   []int  // the writes
		from    uint64 // the zeroed bytes start 5 bytes into this position's entry
		to      uint64 // and end 5 bytes into this one's
		cutFrom uint64 // the first position the cut takes
	}{
		{"single-record writes", []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 8, 10, 8},
		{"in the middle of a write", []int{3, 3, 3, 3, 3, 3}, 8, 9, 7},
		{"across writes", []int{2, 4, 2, 4, 2, 4}, 4, 9, 3},
	} {
		for _, replica := range []bool{false, true} {
			name := tc.name
			if replica {
				name += ", cluster node"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				opts := Options{NoSync: true, Logger: quiet()}
				l := mustOpen(t, dir, opts)
				want := writeBatches(t, l, nil, tc.sizes...)
				if len(l.Segments()) != 1 {
					t.Fatalf("segments %+v, want one", l.Segments())
				}
				mustClose(t, l)
				last := uint64(len(want))
				path, from, _ := entryAt(t, dir, tc.from)
				_, to, _ := entryAt(t, dir, tc.to)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				_, cutAt, _ := entryAt(t, dir, tc.cutFrom)
				clear(b[from+5 : to+5])
				if err := os.WriteFile(path, b, 0o640); err != nil {
					t.Fatal(err)
				}
				var ce *CorruptError
				if _, err := Open(dir, opts); !errors.As(err, &ce) {
					t.Fatalf("Open of the damaged log: %v, want a *CorruptError", err)
				}

				plan, err := PlanRepair(dir, nil)
				if replica {
					plan, err = PlanReplicaRepair(dir, func() (uint64, error) {
						t.Error("PlanReplicaRepair asked which positions Raft writes again")
						return 0, nil
					}, nil)
				}
				if err != nil {
					t.Fatalf("plan: %v", err)
				}
				if len(plan.Actions) != 1 {
					t.Fatalf("plan %v, want one cut", plan.Actions)
				}
				a := plan.Actions[0]
				if a.Op != RepairCut || a.Segment != path || a.Position != tc.cutFrom || a.Offset != cutAt || a.Bytes != int64(len(b))-cutAt || a.Written != last {
					t.Fatalf("action %+v, want the cut of positions %d to %d, from offset %d to the end of the file", a, tc.cutFrom, last, cutAt)
				}
				desc := a.String()
				contains(t, "description", desc, fmt.Sprintf("positions %d to %d are lost, among them records of writes acknowledged", tc.cutFrom, last))
				contains(t, "description", desc, "whole record(s) of later synced writes past the damage")
				if replica {
					contains(t, "description", desc, "Raft applies again")
				} else if strings.Contains(desc, "Raft") {
					t.Errorf("description %q speaks of Raft", desc)
				}

				q := filepath.Join(t.TempDir(), "quarantine")
				if err := plan.Apply(q); err != nil {
					t.Fatalf("Apply: %v", err)
				}
				qb, err := os.ReadFile(q)
				if err != nil {
					t.Fatal(err)
				}
				header := fmt.Sprintf("pmd-quarantine 1 cut segment=%s offset=%d position=%d bytes=%d reason=", filepath.Base(path), cutAt, tc.cutFrom, a.Bytes)
				if !bytes.HasPrefix(qb, []byte(header)) || !bytes.HasSuffix(qb, append(b[cutAt:], '\n')) {
					t.Fatalf("quarantine %.200q, want %q and the bytes from offset %d on", qb, header, cutAt)
				}
				checkRepaired(t, dir, opts, want[:tc.cutFrom-1])
				if plan, err := PlanRepair(dir, nil); err != nil || len(plan.Actions) != 0 {
					t.Fatalf("PlanRepair after Apply: %v, %v; want nothing to do", plan, err)
				}
			})
		}
	}
}

// TestLastWrittenIgnoresRecordsPastWhatTheBytesHold: a record found past framing damage
// whose position is further from the damage than the bytes between them can hold (every
// entry takes at least a length prefix and a record header) lies in an event's data: it
// does not raise the last position the cut says was written, which the store keeps from
// later writes.
func TestLastWrittenIgnoresRecordsPastWhatTheBytesHold(t *testing.T) {
	p := &parsedSegment{validEnd: 100, damagePos: 10, later: []found{
		{off: 100 + 2*minEntry, pos: 12, start: 12, commit: true}, // two entries fit before it
		{off: 100 + 3*minEntry, pos: 1 << 40, start: 1 << 40, commit: true},
		{off: 100 + 4*minEntry, pos: 14, start: 14}, // not a commit: its write began at 14
	}}
	if got := p.lastWritten(); got != 13 {
		t.Fatalf("lastWritten = %d, want 13", got)
	}
}
