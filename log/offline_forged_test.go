package log

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestRepairKeepsNoRecordForgedInAnEventsData: an event's data may hold the bytes of
// whole valid records, of its own position and the one before, ending where the event's
// entry ends. When the framing of a sealed segment breaks before that event (its start
// damaged, and the entries before it), a record found by walking back from the end of
// the file has a known end but no known start: PlanRepair keeps such records only if
// their chain reaches the entries framed before the damage, and otherwise voids the
// run, saying how many records that look intact it could not confirm. No forged record
// is ever kept.
func TestRepairKeepsNoRecordForgedInAnEventsData(t *testing.T) {
	forge := func(pos uint64) []byte {
		rec := AppendRecord(nil, &Record{Position: pos, Kind: KindEvent, Commit: true, Event: Event{
			ID: testID(1000 + pos), Stream: "Admin$root", Version: 0, Type: "Forged",
			Timestamp: 1700000000000000000, Data: msgpackMap(1),
		}})
		return append(appendUvarint(nil, uint64(len(rec))), rec...)
	}
	for _, tc := range []struct {
		name      string
		forgeries int                   // how many records the event's data holds
		forged    func(p uint64) []byte // the metadata of the event at p
	}{
		{"a forged record of the event's position", 1, forge},
		{"forged records of the position before and the event's", 2, func(p uint64) []byte {
			return append(forge(p-1), forge(p)...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{NoSync: true, SegmentSize: 8000}
			l := mustOpen(t, dir, opts)
			want := writeBatches(t, l, nil, 3, 1, 4, 2, 3, 1, 4, 2)
			p := uint64(len(want)) + 1
			event := Record{Kind: KindEvent, Commit: true, Event: Event{
				ID: testID(p), Stream: "User$1", Type: "UserRegistered",
				Timestamp: 1700000000000000000, Data: msgpackMap(7), Metadata: tc.forged(p),
			}}
			if err := l.Write([]Record{event}); err != nil {
				t.Fatal(err)
			}
			event.Position, event.WriteStart = p, p
			want = append(want, event)
			for len(l.Segments()) < 3 {
				want = writeBatches(t, l, want, 3, 1, 4, 2)
			}
			segs := l.Segments()
			mustClose(t, l)
			if segs[0].First != 1 || segs[1].First <= p+1 {
				t.Fatalf("segments %+v, want position %d in the first", segs, p)
			}
			path := segs[0].Path

			// Damage the entries from 5 bytes into that of p-3 to 12 bytes into that of p.
			_, from, _ := entryAt(t, dir, p-3)
			_, to, _ := entryAt(t, dir, p)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			clear(b[from+5 : to+12])
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := removeSidecar(path); err != nil {
				t.Fatal(err)
			}

			plan, err := PlanRepair(dir, nil)
			if err != nil {
				t.Fatalf("PlanRepair: %v", err)
			}
			if len(plan.Actions) != 1 {
				t.Fatalf("plan %v, want one action", plan.Actions)
			}
			a := plan.Actions[0]
			end := segs[1].First
			// The records after p, and those forged in its data, which a walk back from
			// the end of the file finds.
			unconfirmed := int(end-p-1) + tc.forgeries
			if a.Op != RepairVoid || a.Position != p-3 || a.Kept != 0 || a.Records != int(end-a.Position) || a.Unconfirmed != unconfirmed {
				t.Fatalf("action %+v, want positions %d to %d voided, %d records not confirmed", a, p-3, end-1, unconfirmed)
			}
			contains(t, "description", a.String(), fmt.Sprintf("%d record(s) that look intact", unconfirmed))
			replica, err := PlanReplicaRepair(dir, func() (uint64, error) { return 0, nil }, nil)
			if err != nil || len(replica.Actions) != 1 || replica.Actions[0] != a {
				t.Fatalf("PlanReplicaRepair: %v, %v; want %+v", replica, err, a)
			}
			q := filepath.Join(t.TempDir(), "quarantine")
			if err := plan.Apply(q); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			qb, err := os.ReadFile(q)
			if err != nil {
				t.Fatal(err)
			}
			contains(t, "quarantine", string(qb[:bytes.IndexByte(qb, '\n')]), fmt.Sprintf(" records=%d unconfirmed=%d reason=", a.Records, unconfirmed))

			kept := append([]Record(nil), want...)
			for pos := a.Position; pos < end; pos++ {
				kept[pos-1] = Record{Position: pos, Kind: KindVoid, Commit: pos+1 < end || writeStart(&want[pos]) == pos+1}
			}
			checkRepaired(t, dir, opts, kept)
		})
	}
}
