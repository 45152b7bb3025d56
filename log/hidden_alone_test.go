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
			l := mustOpen(t, dir, Options{SegmentSize: 1024})
			var want []Record
			for len(l.Segments()) < 5 {
				want = writeBatches(t, l, want, 1)
			}
			mustClose(t, l)
			segs, _, err := listSegments(dir)
			if err != nil {
				t.Fatal(err)
			}
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
			n, k := binary.Uvarint(b[off:])
			b[off+int64(k)+int64(n)-1] ^= 0x40
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
			l = mustOpen(t, dir, Options{SegmentSize: 1024})
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
