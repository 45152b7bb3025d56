package log

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/tidwall/wal"
)

func TestOpenEmpty(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "log")
	l := mustOpen(t, dir, Options{}) // durable: exercises every fsync path
	if got := l.LastPosition(); got != 0 {
		t.Fatalf("LastPosition = %d", got)
	}
	if _, err := l.Read(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read(1) on an empty log: %v", err)
	}
	if err := l.Scan(context.Background(), 0, func(Record) error { return errors.New("called") }); err != nil {
		t.Fatalf("Scan of an empty log: %v", err)
	}
	if r := l.Repairs(); len(r) != 0 {
		t.Fatalf("Repairs = %v", r)
	}
	checkFiles(t, l)
	want := writeBatches(t, l, nil, 1, 3)
	checkContent(t, l, want)
	mustClose(t, l)

	l = mustOpen(t, dir, Options{})
	defer mustClose(t, l)
	checkContent(t, l, want)
	if r := l.Repairs(); len(r) != 0 {
		t.Fatalf("Repairs after a clean close = %v", r)
	}
}

func TestWriteSetsPositions(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true})
	defer mustClose(t, l)
	for _, n := range []int{1, 4, 2} {
		first := l.LastPosition() + 1
		recs := genBatch(first-1, n)
		for i := range recs {
			recs[i].Position, recs[i].WriteStart = 99, 99 // overwritten
		}
		if err := l.Write(recs); err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.Position != first+uint64(i) || r.WriteStart != first {
				t.Fatalf("record %d: Position %d WriteStart %d, want %d, %d", i, r.Position, r.WriteStart, first+uint64(i), first)
			}
		}
		if got := l.LastPosition(); got != first+uint64(n)-1 {
			t.Fatalf("LastPosition = %d", got)
		}
	}
}

// TestManySegments writes through many small segments with batches of every size, some
// crossing segment boundaries, and reads everything back before and after reopening.
func TestManySegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 4096}
	l := mustOpen(t, dir, opts)
	rng := rand.New(rand.NewSource(1))
	var want []Record
	for len(want) < 1500 {
		want = writeBatches(t, l, want, 1+rng.Intn(40))
	}
	if n := len(l.Segments()); n < 20 {
		t.Fatalf("only %d segments", n)
	}
	checkContent(t, l, want)
	checkFiles(t, l)
	segs := l.Segments()
	mustClose(t, l)

	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if r := l.Repairs(); len(r) != 0 {
		t.Fatalf("Repairs = %v", r)
	}
	if got := l.Segments(); !reflect.DeepEqual(got, segs) {
		t.Fatalf("Segments after reopen = %v, want %v", got, segs)
	}
	checkContent(t, l, want)
	want = writeBatches(t, l, want, 7, 60)
	checkContent(t, l, want)
	checkFiles(t, l)
}

// TestSegmentCycleMirror checks that the Log knows where tidwall/wal put every entry
// and when it started a segment, for segment sizes around the record sizes, records
// larger than a segment, and a tail already over the size when the log is reopened
// with a smaller SegmentSize.
func TestSegmentCycleMirror(t *testing.T) {
	big := func(prev uint64, n, dataLen int) []Record {
		recs := genBatch(prev, n)
		for i := range recs {
			if recs[i].Kind == KindEvent {
				recs[i].Event.Data = make([]byte, dataLen)
			}
		}
		return recs
	}
	for _, size := range []int{1, 150, 151, 300, 1000} {
		dir := t.TempDir()
		l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: size})
		var want []Record
		rng := rand.New(rand.NewSource(int64(size)))
		for i := 0; i < 20; i++ {
			recs := big(l.LastPosition(), 1+rng.Intn(6), rng.Intn(400))
			if err := l.Write(recs); err != nil {
				t.Fatal(err)
			}
			want = append(want, recs...)
			checkFiles(t, l)
		}
		checkContent(t, l, want)
		mustClose(t, l)
		// Reopen smaller: the tail is already over SegmentSize before the next write.
		l = mustOpen(t, dir, Options{NoSync: true, SegmentSize: max(1, size/3)})
		for i := 0; i < 10; i++ {
			recs := big(l.LastPosition(), 1+rng.Intn(3), rng.Intn(200))
			if err := l.Write(recs); err != nil {
				t.Fatal(err)
			}
			want = append(want, recs...)
			checkFiles(t, l)
		}
		checkContent(t, l, want)
		mustClose(t, l)
	}
}

func TestWriteRefusesBadInput(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true})
	defer mustClose(t, l)
	want := writeBatches(t, l, nil, 2)
	ev := func(mod func(*Record)) []Record {
		r := Record{Kind: KindEvent, Commit: true, Event: Event{ID: uuid.New(), Stream: "s", Type: "t"}}
		mod(&r)
		return []Record{r}
	}
	tests := []struct {
		name   string
		recs   []Record
		reason string
	}{
		{"no records", nil, "no records"},
		{"no commit", append(genBatch(2, 2), ev(func(r *Record) { r.Commit = false })...), "the last of 3 records is not a commit"},
		{"event without id", ev(func(r *Record) { r.Event.ID = uuid.Nil }), "record 1 of 1: event without id"},
		{"event without stream", ev(func(r *Record) { r.Event.Stream = "" }), "event without stream"},
		{"event without type", ev(func(r *Record) { r.Event.Type = "" }), "event without type"},
		{"unknown kind", ev(func(r *Record) { r.Kind = 9 }), "unknown record kind 9"},
		{"void", ev(func(r *Record) { r.Kind = KindVoid }), "void records are written only by repair"},
		{"link without stream", ev(func(r *Record) { r.Kind, r.Link = KindLink, Link{Event: 1, ID: testID(1)} }), "link without stream"},
		{"link to the future", ev(func(r *Record) { r.Kind, r.Link = KindLink, Link{Stream: "s", Event: 3, ID: testID(1)} }), "link to position 3, not before the link at 3"},
		{"delete without stream", ev(func(r *Record) { r.Kind = KindDelete }), "delete without stream"},
		{"bad second record", append(genBatch(2, 1), ev(func(r *Record) { r.Event.Type = "" })...), "record 2 of 2: event without type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Write(tc.recs)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Write: %v, want ErrInvalid", err)
			}
			contains(t, "error", err.Error(), tc.reason)
			checkContent(t, l, want)
		})
	}
	// Refused input does not fail the log.
	want = writeBatches(t, l, want, 3)
	checkContent(t, l, want)
}

func TestReadNotFound(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true})
	defer mustClose(t, l)
	writeBatches(t, l, nil, 3)
	for _, pos := range []uint64{0, 4, 1 << 40} {
		if _, err := l.Read(pos); !errors.Is(err, ErrNotFound) {
			t.Errorf("Read(%d): %v, want ErrNotFound", pos, err)
		}
	}
}

func TestScan(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: 1024})
	defer mustClose(t, l)
	want := writeBatches(t, l, nil, 10, 20, 5, 30, 1, 1, 15)
	last := uint64(len(want))
	collect := func(from uint64) ([]Record, error) {
		var got []Record
		err := l.Scan(context.Background(), from, func(r Record) error {
			got = append(got, r)
			return nil
		})
		return got, err
	}
	for _, from := range []uint64{0, 1, 2, 11, 31, 35, 36, last - 1, last, last + 1, last + 100} {
		got, err := collect(from)
		if err != nil {
			t.Fatalf("Scan(%d): %v", from, err)
		}
		start := max(from, 1) - 1
		if start > last {
			start = last
		}
		if !reflect.DeepEqual(got, want[start:]) && !(len(got) == 0 && start == last) {
			t.Fatalf("Scan(%d): %d records, want %d", from, len(got), len(want[start:]))
		}
	}

	t.Run("fn error is returned as is", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := l.Scan(context.Background(), 1, func(Record) error {
			if n++; n == 5 {
				return stop
			}
			return nil
		})
		if err != stop || n != 5 {
			t.Fatalf("Scan: %v after %d records", err, n)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := l.Scan(ctx, 1, func(Record) error {
			if n++; n == 7 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 7 {
			t.Fatalf("Scan: %v after %d records", err, n)
		}
	})
	t.Run("sees the log as of the call", func(t *testing.T) {
		n := 0
		err := l.Scan(context.Background(), last-2, func(Record) error {
			n++
			return l.Write(genBatch(l.LastPosition(), 2))
		})
		if err != nil || n != 3 {
			t.Fatalf("Scan: %v, %d records, want 3", err, n)
		}
	})
}

// TestConcurrentReadsAndWrites runs readers and scanners against a writer that keeps
// starting segments, with fewer open files allowed than segments: run with -race.
func TestConcurrentReadsAndWrites(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true, SegmentSize: 512, MaxOpenFiles: 2})
	defer mustClose(t, l)
	want := writeBatches(t, l, nil, 5)
	batches := 150
	if testing.Short() {
		batches = 50
	}
	var all sync.Map // position -> Record, as written
	for i, r := range want {
		all.Store(uint64(i+1), r)
	}
	done := make(chan struct{})
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for {
				select {
				case <-done:
					return
				default:
				}
				last := l.LastPosition()
				pos := 1 + uint64(rng.Int63n(int64(last)))
				r, err := l.Read(pos)
				w, _ := all.Load(pos)
				if err != nil || !reflect.DeepEqual(r, w) {
					errc <- errors.Join(err, errors.New("read differs from write"))
					return
				}
			}
		}(int64(g))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			var prev uint64
			err := l.Scan(context.Background(), 1, func(r Record) error {
				if r.Position != prev+1 {
					return errors.New("scan skipped a position")
				}
				prev = r.Position
				return nil
			})
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	for i := 0; i < batches; i++ {
		recs := genBatch(l.LastPosition(), 1+i%4)
		// Store the records under their positions before they become readable.
		first := l.LastPosition() + 1
		for j := range recs {
			recs[j].Position, recs[j].WriteStart = first+uint64(j), first
			all.Store(first+uint64(j), recs[j])
		}
		if err := l.Write(recs); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if n := l.files.open(); n > 2 {
		t.Fatalf("%d segment files open, MaxOpenFiles is 2", n)
	}
}

func TestClosed(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true})
	writeBatches(t, l, nil, 2)
	mustClose(t, l)
	if err := l.Write(genBatch(2, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write: %v", err)
	}
	if _, err := l.Read(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read: %v", err)
	}
	if err := l.Scan(context.Background(), 1, func(Record) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Scan: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

// TestWriteErrorRecovers shows that a Write failing under the Log (here tidwall/wal was
// closed behind its back) returns ErrUnavailable, reads still work, and the next Write
// reopens tidwall/wal and succeeds.
func TestWriteErrorRecovers(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{NoSync: true})
	want := writeBatches(t, l, nil, 3)
	l.wal.Close() // the storage under the log fails
	err := l.Write(genBatch(3, 1))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Write on a closed wal: %v, want ErrUnavailable wrapping wal.ErrClosed", err)
	}
	if l.Err() != err {
		t.Fatalf("Err() = %v, want %v", l.Err(), err)
	}
	checkContent(t, l, want)
	want = writeBatches(t, l, want, 2)
	if l.Err() != nil {
		t.Fatalf("Err() = %v after a successful Write", l.Err())
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkContent(t, l, want)
	mustClose(t, l)
	l = mustOpen(t, dir, Options{NoSync: true})
	defer mustClose(t, l)
	checkContent(t, l, want)
}

// TestWriteFailsWhenSegmentMissing shows the loud failure when tidwall/wal did not
// start the segment the Log expected: the Write fails, its records are rolled back, and
// writes work again once the mirror agrees with tidwall/wal.
func TestWriteFailsWhenSegmentMissing(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true, SegmentSize: 1 << 20})
	defer l.Close()
	want := writeBatches(t, l, nil, 2)
	l.opts.SegmentSize = 10 // the mirror now expects a cycle tidwall/wal will not do
	for range 2 {
		err := l.Write(genBatch(2, 1))
		contains(t, "error", errString(err), "should have been started")
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Write: %v, want ErrUnavailable", err)
		}
		checkContent(t, l, want)
	}
	l.opts.SegmentSize = 1 << 20
	want = writeBatches(t, l, want, 1)
	checkContent(t, l, want)
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestOpenRefuses(t *testing.T) {
	t.Run("options", func(t *testing.T) {
		for _, o := range []Options{{SegmentSize: -1}, {SegmentSize: maxSegmentSize + 1}, {MaxOpenFiles: -1}} {
			if _, err := Open(t.TempDir(), o); !errors.Is(err, ErrInvalid) {
				t.Errorf("Open(%+v): %v", o, err)
			}
		}
	})
	t.Run("truncation files", func(t *testing.T) {
		dir := t.TempDir()
		l := mustOpen(t, dir, Options{NoSync: true})
		writeBatches(t, l, nil, 2)
		mustClose(t, l)
		os.WriteFile(filepath.Join(dir, segmentName(1)+".END"), nil, 0o640)
		before := snapshot(t, dir)
		_, err := Open(dir, Options{Logger: quiet()})
		contains(t, "error", errString(err), "unexpected truncation file")
		if !reflect.DeepEqual(snapshot(t, dir), before) {
			t.Fatal("Open changed files")
		}
	})
	t.Run("missing first segment", func(t *testing.T) {
		dir := t.TempDir()
		l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: 200})
		writeBatches(t, l, nil, 5, 5, 5)
		mustClose(t, l)
		os.Remove(filepath.Join(dir, segmentName(1)))
		_, err := Open(dir, Options{Logger: quiet()})
		ce := asCorrupt(t, err)
		contains(t, "reason", ce.Reason, "segments before it are missing")
	})
}
