package log

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// damagedLog writes a log of several segments, closes it and damages it: a body bit and
// a header bit of records in sealed segments, the length prefix of another sealed
// record (framing damage under a valid sidecar), and a body bit of a tail record that
// later Writes follow. It returns the directory, the records written and the damaged
// positions in order.
func damagedLog(t *testing.T, opts Options) (string, []Record, []uint64) {
	t.Helper()
	dir := t.TempDir()
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 4, 4, 4, 4, 4, 4, 3, 3, 3)
	mustClose(t, l)
	tail := lastSegmentPath(t, dir)
	damaged := []uint64{6, 9, 14, uint64(len(want)) - 4}
	for i, d := range []int64{40, 12, 0, 40} {
		path, off, _ := entryAt(t, dir, damaged[i])
		if (path == tail) != (i == 3) {
			t.Fatalf("position %d is in %s, the tail is %s", damaged[i], path, tail)
		}
		flipBit(t, path, off+d)
	}
	return dir, want, damaged
}

// TestScrub shows that Scrub finds every damaged record, sealed or in the tail, framing
// damage included, each as Read reports it, and that reads and scans from the position
// after a damaged one go on.
func TestScrub(t *testing.T) {
	opts := Options{NoSync: true, SegmentSize: 500}
	dir, want, damaged := damagedLog(t, opts)
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if d := l.Damage(); len(d) != 1 || d[0].Position != damaged[3] {
		t.Fatalf("Damage = %v, want the tail's damaged position %d", d, damaged[3])
	}
	if l.LastPosition() != uint64(len(want)) {
		t.Fatalf("LastPosition = %d, want %d", l.LastPosition(), len(want))
	}

	var calls int
	var lastDone, lastTotal int64
	found, err := l.Scrub(context.Background(), func(done, total int64) { calls, lastDone, lastTotal = calls+1, done, total })
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || lastDone != lastTotal || lastTotal == 0 {
		t.Fatalf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	if len(found) != len(damaged) {
		t.Fatalf("Scrub found %v, want positions %v", found, damaged)
	}
	for i, ce := range found {
		path, off, _ := entryAt(t, dir, damaged[i])
		if ce.Position != damaged[i] || ce.Segment != path || ce.Offset != off {
			t.Errorf("Scrub[%d] = %v, want position %d at offset %d of %s", i, ce, damaged[i], off, path)
		}
		_, err := l.Read(ce.Position)
		if rce := asCorrupt(t, err); !reflect.DeepEqual(rce, ce) {
			t.Errorf("Read(%d) = %v, Scrub said %v", ce.Position, rce, ce)
		}
		next := ce.Position + 1
		if r, err := l.Read(next); err != nil || !reflect.DeepEqual(r, want[next-1]) {
			t.Errorf("Read(%d) after the damaged record: %v", next, err)
		}
		// A scan from the next position goes on up to the next damaged record.
		stop := uint64(len(want)) + 1
		if i+1 < len(damaged) {
			stop = damaged[i+1]
		}
		n := next
		err = l.Scan(context.Background(), next, func(r Record) error {
			if !reflect.DeepEqual(r, want[n-1]) {
				t.Fatalf("Scan from %d: record %d differs", next, n)
			}
			n++
			return nil
		})
		if n != stop || (stop <= uint64(len(want))) != (err != nil) {
			t.Errorf("Scan from %d stopped at %d with %v, want to stop at %d", next, n, err, stop)
		}
	}

	// Scrub of a clean log finds nothing.
	clean := mustOpen(t, t.TempDir(), opts)
	defer mustClose(t, clean)
	writeBatches(t, clean, nil, 5, 5, 5)
	if found, err := clean.Scrub(context.Background(), nil); err != nil || len(found) != 0 {
		t.Fatalf("Scrub of a clean log: %v, %v", found, err)
	}
}

func TestScrubCancelled(t *testing.T) {
	opts := Options{NoSync: true, SegmentSize: 500}
	dir, _, _ := damagedLog(t, opts)
	l := mustOpen(t, dir, opts)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Scrub(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Scrub with a cancelled context: %v", err)
	}
	mustClose(t, l)
	if _, err := l.Scrub(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Scrub of a closed log: %v", err)
	}
}
