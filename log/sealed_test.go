package log

import (
	"os"
	"reflect"
	"testing"
)

// crashAfterRollover writes batches of size records, synced, until a batch ends exactly
// where the segment rolls over, and "crashes" there: tidwall/wal is closed without the
// Log, so the new tail segment is empty, as every rollover leaves it until the next
// write, and the Log's own state is dropped. The sealed segment's offsets file is kept
// or removed (a crash before its background write). It returns the log's last position.
func crashAfterRollover(t *testing.T, dir string, size int, sidecar bool) uint64 {
	t.Helper()
	l := mustOpen(t, dir, Options{SegmentSize: 1024})
	for i := 0; ; i++ {
		if segs := l.Segments(); len(segs) >= 2 && segs[len(segs)-1].Count == 0 {
			break
		}
		if i == 1000 {
			t.Fatal("no batch ended at a rollover")
		}
		writeBatches(t, l, nil, size)
	}
	l.sealing.Wait()
	last := l.LastPosition()
	l.wal.Close()
	if !sidecar {
		path, _, _ := entryAt(t, dir, last)
		if err := removeSidecar(path); err != nil {
			t.Fatal(err)
		}
	}
	return last
}

// TestOpenRefusesDamageBeforeEmptyTail damages the last batch of a segment that a
// rollover sealed, the new tail segment being empty. The sealed segment was synced
// whole before the tail was created, so the damage is no torn write: a record whose
// framing holds, followed by a valid record of its Write, is kept and reported by
// Damage; the last record of the segment, whose commit flag is lost with it, or damage
// that breaks the framing, or a segment cut short at an entry boundary, make Open fail
// with a *CorruptError and change nothing.
// Before, Open cut them as a torn end, losing acknowledged writes without a word.
func TestOpenRefusesDamageBeforeEmptyTail(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int    // records a write
		back    uint64 // the damaged record is back positions before the last
		zero    bool   // zero the entry, length prefix included, instead of flipping a bit
		cut     bool   // cut the segment file at the entry instead of flipping a bit
		sidecar bool   // the sealed segment's offsets file survived
		reason  string // "" when Open keeps the record as damage
	}{
		{name: "last record, flipped bit", size: 1, reason: "whether its write was committed cannot be told"},
		{name: "last record, flipped bit, offsets file", size: 1, sidecar: true, reason: "whether its write was committed cannot be told"},
		{name: "last record of a batch, flipped bit", size: 3, reason: "whether its write was committed cannot be told"},
		{name: "last record, zeroed", size: 1, zero: true, reason: "created after this segment was synced whole"},
		{name: "middle record of the last batch, zeroed", size: 3, back: 1, zero: true, reason: "created after this segment was synced whole"},
		{name: "middle record of the last batch, flipped bit", size: 3, back: 1},
		{name: "last record lost whole", size: 1, cut: true, reason: "a segment is synced whole before the next one is created"},
		{name: "last batch lost whole", size: 3, back: 2, cut: true, reason: "a segment is synced whole before the next one is created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			last := crashAfterRollover(t, dir, tc.size, tc.sidecar)
			pos := last - tc.back
			path, off, size := entryAt(t, dir, pos)
			if segs, _, _ := listSegments(dir); path == segs[len(segs)-1].path {
				t.Fatalf("position %d is in the tail segment", pos)
			}
			switch {
			case tc.cut:
				truncateFile(t, path, off)
			case tc.zero:
				b, _ := os.ReadFile(path)
				clear(b[off : off+int64(size)])
				os.WriteFile(path, b, 0o640)
			default:
				flipBit(t, path, off+int64(size)/2)
			}
			before := snapshot(t, dir)

			l, err := Open(dir, Options{SegmentSize: 1024, Logger: quiet()})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer mustClose(t, l)
				if l.LastPosition() != last || len(l.Repairs()) != 0 {
					t.Fatalf("LastPosition %d (want %d), Repairs %+v", l.LastPosition(), last, l.Repairs())
				}
				if d := l.Damage(); len(d) != 1 || d[0].Position != pos || d[0].Segment != path || d[0].Offset != off {
					t.Fatalf("Damage = %v, want position %d at offset %d of %s", d, pos, off, path)
				}
				return
			}
			if err == nil {
				defer l.Close()
				t.Fatalf("Open succeeded, LastPosition %d (last written %d), Repairs %+v", l.LastPosition(), last, l.Repairs())
			}
			ce := asCorrupt(t, err)
			if ce.Segment != path || ce.Offset != off || ce.Position != pos {
				t.Fatalf("CorruptError %+v, want segment %s offset %d position %d", ce, path, off, pos)
			}
			contains(t, "reason", ce.Reason, tc.reason)
			if !reflect.DeepEqual(snapshot(t, dir), before) {
				t.Fatal("Open changed files")
			}
		})
	}
}
