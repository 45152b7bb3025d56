package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
)

// TestFailedTableLoadIsRemembered: the offset table of a damaged sealed segment without
// its offsets file is framed once per open Log, not once per read: every later Read,
// Scan and Scrub of the segment answers from the failure kept with it, naming the same
// hidden run. A load that fails for a reason other than damage (the file cannot be
// opened) is not kept, and a reopen after the segment is made whole again reads it whole.
func TestFailedTableLoadIsRemembered(t *testing.T) {
	src := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 1024, Logger: quiet()}
	want, segs := writeSegments(t, src, opts, 5)
	first, next := segs[2].first, segs[3].first
	bad := first + (next-first)/2 // the first record hidden

	for _, how := range []string{"length prefix", "swallowed entry", "cut"} {
		t.Run(how, func(t *testing.T) {
			dir := copyDir(t, src)
			path, off, _ := entryAt(t, dir, bad)
			whole, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			switch how {
			case "length prefix":
				b := append([]byte(nil), whole...)
				b[off], b[off+1] = 0xff, 0x7f // 16383 bytes: past the end of the file
				if err := os.WriteFile(path, b, 0o640); err != nil {
					t.Fatal(err)
				}
			case "swallowed entry":
				swallowNextEntry(t, path, off)
			case "cut":
				truncateFile(t, path, off)
			}
			if err := removeSidecar(path); err != nil {
				t.Fatal(err)
			}
			l := mustOpen(t, dir, opts)
			defer func() {
				if l != nil {
					mustClose(t, l)
				}
			}()
			framings := func() int {
				l.tables.mu.Lock()
				defer l.tables.mu.Unlock()
				return l.tables.framings
			}
			hidden := func(what string, err error) {
				t.Helper()
				ce := asCorrupt(t, err)
				if ce.Position != bad || ce.End != next || ce.Segment != path {
					t.Fatalf("%s: %v: want the damage of %s at positions %d to %d", what, err, path, bad, next-1)
				}
			}
			for round := range 3 {
				for pos := first; pos < next; pos++ {
					r, err := l.Read(pos)
					if pos >= bad {
						hidden(fmt.Sprintf("round %d: Read(%d)", round, pos), err)
						continue
					}
					if err != nil || !reflect.DeepEqual(r, want[pos-1]) {
						t.Fatalf("round %d: Read(%d) before the damage: %v, %v", round, pos, r.Position, err)
					}
				}
				err := l.Scan(context.Background(), bad+1, func(Record) error { return nil })
				hidden(fmt.Sprintf("round %d: Scan(%d)", round, bad+1), err)
				found, err := l.Scrub(context.Background(), nil)
				if err != nil || len(found) != 1 {
					t.Fatalf("round %d: Scrub = %v, %v", round, found, err)
				}
				hidden(fmt.Sprintf("round %d: Scrub", round), found[0])
				if n := framings(); n != 1 {
					t.Fatalf("round %d: the segment was framed %d times, want once", round, n)
				}
			}

			// A segment file that cannot be opened is not damage: nothing is kept,
			// and the next read frames the segment again.
			l.files.forget(first)
			if err := os.Rename(path, path+".away"); err != nil {
				t.Fatal(err)
			}
			l.tables.mu.Lock()
			l.tables.drop(l.segs[2])
			l.tables.mu.Unlock()
			_, err = l.Read(bad)
			if err == nil || errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read(%d) of a segment file that is away: %v, want an I/O error", bad, err)
			}
			if err := os.Rename(path+".away", path); err != nil {
				t.Fatal(err)
			}
			_, err = l.Read(bad)
			hidden("Read after the file is back", err)
			if n := framings(); n != 3 {
				t.Fatalf("the segment was framed %d times in all, want 3", n)
			}

			// Made whole while the store is stopped, the segment is read whole by the
			// next open: the failure lived with the Log that found it.
			mustClose(t, l)
			l = nil
			if err := os.WriteFile(path, whole, 0o640); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, opts)
			checkContent(t, l, want)
		})
	}
}
