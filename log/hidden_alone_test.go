package log

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// TestContentDamageBeforeAHiddenRunStaysAlone: in a sealed segment without its offsets
// file, a record whose contents are damaged (its length prefix intact) is damaged on its
// own, even when damage later in the segment (a broken length prefix, or the next
// segment file missing) hides the segment's rest: the intact records between the two
// are served, the run starts after the last of them.
func TestContentDamageBeforeAHiddenRunStaysAlone(t *testing.T) {
	for _, later := range []string{"length prefix", "next segment missing"} {
		t.Run(later, func(t *testing.T) {
			dir := t.TempDir()
			want, segs := writeSegments(t, dir, Options{SegmentSize: 1024}, 5)
			first, next := segs[1].first, segs[2].first
			if next-first < 6 {
				t.Fatalf("segment %s holds %d records: too few for the test", segs[1].path, next-first)
			}
			flipped := first + 1 // its contents damaged, its framing intact
			runFrom := next      // the first record of the hidden run
			path, off, _ := entryAt(t, dir, flipped)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, k := binary.Uvarint(b[off:])
			b[off+int64(k)] ^= 0x40 // a bit of its stored checksum
			switch later {
			case "length prefix":
				runFrom = next - 2
				_, at, _ := entryAt(t, dir, runFrom)
				b[at], b[at+1] = 0xff, 0x7f // past the end of the file
			case "next segment missing":
				if err := os.Remove(segs[2].path); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := removeSidecar(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			l := mustOpen(t, dir, Options{SegmentSize: 1024})
			defer mustClose(t, l)
			for pos := first; pos < next; pos++ {
				r, err := l.Read(pos)
				switch {
				case pos == flipped:
					if ce := asCorrupt(t, err); ce.Position != flipped || ce.End != 0 {
						t.Fatalf("Read(%d): %v: want the damage of that record alone", pos, err)
					}
				case pos < runFrom:
					if err != nil || r.Position != pos || r.Kind != want[pos-1].Kind {
						t.Fatalf("Read(%d) = %d, %v: want the intact record", pos, r.Position, err)
					}
				default:
					if ce := asCorrupt(t, err); ce.Position != runFrom {
						t.Fatalf("Read(%d): %v: want the run hidden from %d", pos, err, runFrom)
					}
				}
			}
		})
	}
}

// TestAForgedEntryBehindADamagedPrefixIsNotServed: an event's data may hold the bytes of
// a whole entry of the next position. A length prefix damaged to end right before them
// frames that embedded entry as the next record, and it passes its checksum: the
// damaged entry's bytes no longer read as a whole record, so the framing after it is not
// trusted and the embedded entry is hidden with the rest, never served as good.
func TestAForgedEntryBehindADamagedPrefixIsNotServed(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 1024})
	want := writeBatches(t, l, nil, 1, 1)
	p := l.LastPosition() + 1
	fake := AppendRecord(nil, &Record{Position: p + 1, Kind: KindEvent, Commit: true, WriteStart: p + 1,
		Event: Event{ID: testID(99), Stream: "Fake$1", Type: "Forged", Timestamp: 1}})
	emb := append(binary.AppendUvarint(nil, uint64(len(fake))), fake...)
	if err := l.Write([]Record{{Kind: KindEvent, Commit: true, Event: Event{ID: testID(p), Stream: "S", Type: "T", Timestamp: 5, Data: emb}}}); err != nil {
		t.Fatal(err)
	}
	for len(l.Segments()) < 3 {
		want = writeBatches(t, l, want, 1)
	}
	mustClose(t, l)
	path, off, _ := entryAt(t, dir, p)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, k := binary.Uvarint(b[off:])
	short := n - 1 - uint64(len(emb)) // the entry then ends where the embedded one starts (its nil metadata is its last byte)
	if len(binary.AppendUvarint(nil, short)) != k {
		t.Fatalf("the damaged prefix needs another size: %d bytes, not %d", len(binary.AppendUvarint(nil, short)), k)
	}
	binary.PutUvarint(b[off:], short)
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := removeSidecar(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{SegmentSize: 1024})
	defer mustClose(t, l)
	if r, err := l.Read(p + 1); err == nil {
		t.Fatalf("Read(%d) = %s in %s, served as good: want the damage hiding it", p+1, r.Event.Type, r.Event.Stream)
	} else if ce := asCorrupt(t, err); ce.Position != p || ce.End == 0 {
		t.Fatalf("Read(%d): %v: want the run hidden from %d", p+1, err, p)
	}
}
