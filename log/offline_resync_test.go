package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanRepairKeepsTheIntactRecordsOfAHiddenRun: a sealed segment without its offsets
// file whose framing breaks at one entry (a length prefix damaged) hides the rest of its
// positions from a Log's reads, but the records past the damage are intact. PlanRepair
// finds them again, each one framed from the entries before the damage and holding the
// record of its position, and keeps each at its position (a record whose length prefix
// alone is damaged is framed again). From a record it cannot frame so (its bytes damaged
// too) every position is voided: the records after it, found walking back from the end
// of the segment, look intact but have no known start (TestRepairKeepsNoRecordForged-
// InAnEventsData). The plan says how many records it keeps, how many positions it voids
// and how many records that look intact it could not confirm; the quarantine keeps the
// bytes.
func TestPlanRepairKeepsTheIntactRecordsOfAHiddenRun(t *testing.T) {
	src := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 8000}
	l := mustOpen(t, src, opts)
	var want []Record
	for len(l.Segments()) < 4 {
		want = writeBatches(t, l, want, 3, 1, 4, 2)
	}
	segs := l.Segments()
	mustClose(t, l)
	first, end := segs[1].First, segs[2].First
	if end-first < 20 {
		t.Fatalf("segment %s holds %d records, want 20 or more", segs[1].Path, end-first)
	}
	// prefixLen is the length of the length prefix of the entry of pos.
	prefixLen := func(t *testing.T, dir string, pos uint64) int {
		path, off, _ := entryAt(t, dir, pos)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, k := binary.Uvarint(b[off:])
		return k
	}
	// none: no position voided.
	none := func(*testing.T, string) (uint64, int) { return 0, 0 }
	// from returns a case's voided positions: from p to the run's end; the records after
	// p look intact, but the walk back from the segment's end that finds them stops at p.
	from := func(p uint64) func(*testing.T, string) (uint64, int) {
		return func(*testing.T, string) (uint64, int) { return p, int(end - p - 1) }
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir, path string) // path: segs[1]'s file in dir
		// voided returns the first position voided (0 if none: then every record is
		// kept; else every position from it on is voided) and how many records the
		// plan finds that look intact but cannot be framed from a known start.
		voided func(t *testing.T, dir string) (uint64, int)
	}{
		{"swallowed entry", func(t *testing.T, dir, path string) {
			_, off, _ := entryAt(t, dir, first+2)
			swallowNextEntry(t, path, off)
		}, none},
		{"swallowed entry, its record damaged", func(t *testing.T, dir, path string) {
			_, off, _ := entryAt(t, dir, first+2)
			damageBody(t, path, off)
			swallowNextEntry(t, path, off)
		}, from(first + 2)},
		{"two swallowed entries", func(t *testing.T, dir, path string) {
			_, off, _ := entryAt(t, dir, first+10)
			swallowNextEntry(t, path, off)
			_, off, _ = entryAt(t, dir, first+2)
			swallowNextEntry(t, path, off)
		}, none},
		{"two swallowed entries, the later record damaged", func(t *testing.T, dir, path string) {
			_, off, _ := entryAt(t, dir, first+10)
			damageBody(t, path, off)
			swallowNextEntry(t, path, off)
			_, off, _ = entryAt(t, dir, first+2)
			swallowNextEntry(t, path, off)
		}, from(first + 10)},
		{"two swallowed entries, both records damaged", func(t *testing.T, dir, path string) {
			_, off, _ := entryAt(t, dir, first+10)
			damageBody(t, path, off)
			swallowNextEntry(t, path, off)
			_, off, _ = entryAt(t, dir, first+2)
			damageBody(t, path, off)
			swallowNextEntry(t, path, off)
		}, func(*testing.T, string) (uint64, int) {
			// The records between the two are found, but neither end of theirs is
			// framed from a record known to be in place, and those after the later
			// one are framed from its end alone: all are voided.
			return first + 2, int(end - first - 11)
		}},
		{"length prefix past the end of the file", func(t *testing.T, dir, path string) {
			_, off, _ := entryAt(t, dir, first+2)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[off], b[off+1] = 0xff, 0x7f
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir string) (uint64, int) {
			if prefixLen(t, dir, first+2) < 2 {
				return from(first+2)(t, dir) // the record's first byte is overwritten
			}
			return 0, 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			path := rebase(dir, segs[1].Path)
			v, unconfirmed := tc.voided(t, dir)
			var voided []uint64
			for p := v; v != 0 && p < end; p++ {
				voided = append(voided, p)
			}
			tc.damage(t, dir, path)
			if err := removeSidecar(path); err != nil {
				t.Fatal(err)
			}
			damaged, err := os.ReadFile(path)
			if err != nil {
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
			run := int(end - first - 2)
			if a.Op != RepairVoid || a.Segment != path || a.Position != first+2 || a.Records != len(voided) || a.Kept != run-len(voided) || a.Unconfirmed != unconfirmed {
				t.Fatalf("action %+v, want positions %d to %d, %d voided, %d kept and %d not confirmed", a, first+2, end-1, len(voided), run-len(voided), unconfirmed)
			}
			if len(voided) > 0 && a.Voided != voided[0] {
				t.Fatalf("action %+v voids from %d, want %d", a, a.Voided, voided[0])
			}
			if run > len(voided) {
				contains(t, "description", a.String(), fmt.Sprintf("%d intact record(s) kept", run-len(voided)))
			}
			contains(t, "description", a.String(), fmt.Sprintf("%d void record(s)", len(voided)))
			if unconfirmed > 0 {
				contains(t, "description", a.String(), fmt.Sprintf("%d record(s) that look intact", unconfirmed))
			}
			replica, err := PlanReplicaRepair(copyDir(t, dir), func() (uint64, error) {
				t.Error("PlanReplicaRepair asked which positions Raft writes again")
				return 0, nil
			}, nil)
			if err != nil || len(replica.Actions) != 1 {
				t.Fatalf("PlanReplicaRepair: %v, %v; want %+v", replica, err, a)
			}
			if r := replica.Actions[0]; r.Position != a.Position || r.Records != a.Records || r.Kept != a.Kept || r.Voided != a.Voided || r.Bytes != a.Bytes || r.Unconfirmed != a.Unconfirmed {
				t.Fatalf("PlanReplicaRepair: %+v, want %+v", r, a)
			}

			q := filepath.Join(t.TempDir(), "quarantine")
			if err := plan.Apply(q); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			qb, err := os.ReadFile(q)
			if err != nil {
				t.Fatal(err)
			}
			header := fmt.Sprintf("pmd-quarantine 1 void segment=%s offset=%d position=%d bytes=%d records=%d",
				filepath.Base(path), a.Offset, a.Position, a.Bytes, a.Records)
			if a.Kept > 0 {
				header += fmt.Sprintf(" kept=%d", a.Kept)
			}
			if unconfirmed > 0 {
				header += fmt.Sprintf(" unconfirmed=%d", unconfirmed)
			}
			header += " reason="
			if !strings.HasPrefix(string(qb), header) || a.Bytes == 0 ||
				!bytes.Contains(qb, append([]byte("\n"), damaged[a.Offset:a.Offset+a.Bytes]...)) {
				t.Fatalf("quarantine %.300q, want %q and the %d bytes from offset %d", qb, header, a.Bytes, a.Offset)
			}

			kept := append([]Record(nil), want...)
			for i, p := range voided {
				last := i == len(voided)-1
				kept[p-1] = Record{Position: p, Kind: KindVoid, Commit: !last || writeStart(&want[p]) == p+1}
			}
			checkRepaired(t, dir, opts, kept)
			if plan, err := PlanRepair(dir, nil); err != nil || len(plan.Actions) != 0 {
				t.Fatalf("PlanRepair after Apply: %v, %v; want nothing to do", plan, err)
			}
		})
	}
}

// damageBody flips a byte in the body of the record of the entry at off in the segment
// file path, leaving its length prefix as it is.
func damageBody(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, k := binary.Uvarint(b[off:])
	if k <= 0 || n <= headerSize+2 {
		t.Fatalf("%s: no record to damage at offset %d", path, off)
	}
	b[off+int64(k)+headerSize+1] ^= 0x55
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}
