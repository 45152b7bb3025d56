package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDamagedSealedSegmentHidesItsRest: a sealed segment that cannot be framed past a
// record (its offsets file lost and a length prefix damaged: past the end of the file,
// or swallowing the next entry, so that the entries after it frame to the wrong
// positions), or whose file ends before
// the next segment's name says it should (cut at an entry boundary, or missing), hides
// the rest of its records. Read and Scan of a hidden position fail with one
// *CorruptError naming the whole run (Position to End-1); the records before it are
// served, by Read and by a Scan starting among them; a Scan from End goes on.
func TestDamagedSealedSegmentHidesItsRest(t *testing.T) {
	for _, how := range []string{"length prefix", "swallowed entry", "cut", "missing"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			_, segs := writeSegments(t, dir, Options{SegmentSize: 1024}, 5)
			first, next := segs[2].first, segs[3].first
			bad := first + (next-first)/2 // the first record hidden
			path, off, _ := entryAt(t, dir, bad)
			switch how {
			case "length prefix":
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				b[off], b[off+1] = 0xff, 0x7f // 16383 bytes: past the end of the file
				if err := os.WriteFile(path, b, 0o640); err != nil {
					t.Fatal(err)
				}
			case "swallowed entry":
				swallowNextEntry(t, path, off)
			case "cut":
				truncateFile(t, path, off)
			case "missing":
				// The segment before it seems to end short.
				if err := os.Remove(segs[2].path); err != nil {
					t.Fatal(err)
				}
				first, bad, path = segs[1].first, segs[2].first, segs[1].path
			}
			if err := removeSidecar(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			l := mustOpen(t, dir, Options{SegmentSize: 1024})
			defer mustClose(t, l)

			hidden := func(what string, err error) {
				t.Helper()
				ce := asCorrupt(t, err)
				if ce.Position != bad || ce.End != next || ce.Segment != path {
					t.Fatalf("%s: %v: want the damage of %s at positions %d to %d", what, err, path, bad, next-1)
				}
				contains(t, what, err.Error(), fmt.Sprintf("positions %d to %d", bad, next-1))
			}
			for pos := first; pos < next; pos++ {
				r, err := l.Read(pos)
				if pos >= bad {
					hidden(fmt.Sprintf("Read(%d)", pos), err)
					continue
				}
				if err != nil || r.Position != pos {
					t.Fatalf("Read(%d) before the damage: %v, %v", pos, r.Position, err)
				}
			}
			for _, from := range []uint64{first, first + 1, bad - 1, bad, bad + 1, next - 1, next} {
				var got []uint64
				err := l.Scan(context.Background(), from, func(r Record) error {
					got = append(got, r.Position)
					return nil
				})
				what := fmt.Sprintf("Scan(%d)", from)
				switch {
				case from >= next:
					if err != nil || len(got) != int(l.LastPosition()-from+1) {
						t.Fatalf("%s past the damage: %d records, %v", what, len(got), err)
					}
					continue
				case (how == "length prefix" || how == "swallowed entry") && from == first:
					// Framed from the start of the file, the damaged prefix is met
					// without knowing that the rest cannot be framed: a scan from
					// the next position learns it.
					if ce := asCorrupt(t, err); ce.Position != bad || ce.End != 0 {
						t.Fatalf("%s: %v: want the damaged record at %d", what, err, bad)
					}
				default:
					hidden(what, err)
				}
				if wantN := int(max(bad, from) - from); len(got) != wantN {
					t.Fatalf("%s: %d records before the damage, want %d", what, len(got), wantN)
				}
			}
		})
	}
}

func TestCorruptErrorNamesTheRunItHides(t *testing.T) {
	for _, tc := range []struct {
		err  CorruptError
		want string
	}{
		{CorruptError{Segment: "s", Offset: 9, Position: 4, Reason: "r"}, "log: corrupt: segment s offset 9, position 4: r"},
		{CorruptError{Segment: "s", Offset: 9, Position: 4, End: 5, Reason: "r"}, "log: corrupt: segment s offset 9, position 4: r"},
		{CorruptError{Segment: "s", Offset: 9, Position: 4, End: 8, Reason: "r"}, "log: corrupt: segment s offset 9, positions 4 to 7: r"},
		{CorruptError{Position: 4, End: 8, Reason: "r"}, "log: corrupt: positions 4 to 7: r"},
	} {
		if got := tc.err.Error(); got != tc.want || !strings.HasPrefix(got, "log: corrupt") {
			t.Errorf("%+v: %q, want %q", tc.err, got, tc.want)
		}
	}
}

// swallowNextEntry rewrites the length prefix of the entry at off in the segment file
// path so that the entry takes in the next one as well: the file frames without an
// error, to one entry fewer, every entry after it at the wrong position.
func swallowNextEntry(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, k := binary.Uvarint(b[off:])
	next := off + int64(k) + int64(n)
	if k <= 0 || next >= int64(len(b)) {
		t.Fatalf("%s: no entry after the one at offset %d", path, off)
	}
	n2, k2 := binary.Uvarint(b[next:])
	if k2 <= 0 {
		t.Fatalf("%s: no entry at offset %d", path, next)
	}
	out := binary.AppendUvarint(slices.Clip(b[:off]), n+uint64(k2)+n2)
	out = append(out, b[off+int64(k):]...)
	if err := os.WriteFile(path, out, 0o640); err != nil {
		t.Fatal(err)
	}
}
