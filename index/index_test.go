package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// applyEvents applies n events at positions from, from+1, … to stream "S$1" in one batch.
func applyEvents(t *testing.T, x *Index, from uint64, n int) {
	t.Helper()
	b := x.NewBatch()
	for i := range n {
		pos := from + uint64(i)
		if _, err := b.AddEvent(pos, testID(pos), "S$1", "E"); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
}

// writeClosed writes n events into a fresh index in dir, flushes it and closes it.
func writeClosed(t *testing.T, dir string, n int) {
	t.Helper()
	x := openTest(t, dir)
	applyEvents(t, x, 1, n)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFlushIsWhatAReopenFinds(t *testing.T) {
	dir := t.TempDir()
	x := openTest(t, dir)
	applyEvents(t, x, 1, 10)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if x.Durable() != 10 {
		t.Fatalf("Durable() = %d after a flush at 10", x.Durable())
	}
	applyEvents(t, x, 11, 5) // applied, never flushed: a crash loses it
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openTest(t, dir)
	if got := x.Position(); got != 10 {
		t.Fatalf("Position() after reopen = %d, want the flushed 10", got)
	}
	st := must(x.Stream("S$1"))
	if st.Next != 10 {
		t.Fatalf("Stream after reopen = %+v, want the 10 flushed versions", st)
	}
	if _, ok, _ := x.Lookup(testID(12)); ok {
		t.Fatal("an event applied after the flush survived the close")
	}
}

func TestBatchRefusesOutOfOrder(t *testing.T) {
	x := openTest(t, t.TempDir())
	applyEvents(t, x, 5, 1)
	b := x.NewBatch()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"position not above", func() error { _, err := b.AddEvent(5, testID(5), "S$1", "E"); return err }()},
		{"position above MaxPosition", b.Advance(MaxPosition + 1)},
		{"stream with a 0 byte", func() error { _, err := b.AddEvent(9, testID(9), "S\x00", "E"); return err }()},
		{"type with a 0 byte", func() error { _, err := b.AddEvent(9, testID(9), "S$1", "E\x00"); return err }()},
		{"causation of an older event", b.AddCausation(3, 1)},
	} {
		if tc.err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if b.Len() != 0 {
		t.Fatalf("refused records left %d entries in the batch", b.Len())
	}
}

func TestSkipVersions(t *testing.T) {
	x := openTest(t, t.TempDir())
	b := x.NewBatch()
	if _, err := b.AddEvent(1, testID(1), "S$1", "E"); err != nil {
		t.Fatal(err)
	}
	// Version 1 was a damaged record a replay skipped: the next event carries version 2.
	if err := b.SkipVersions("S$1", 2); err != nil {
		t.Fatal(err)
	}
	if v, err := b.AddEvent(3, testID(3), "S$1", "E"); err != nil || v != 2 {
		t.Fatalf("AddEvent after SkipVersions = %d, %v; want version 2", v, err)
	}
	if err := b.SkipVersions("S$1", 1); err != nil { // below next: nothing changes
		t.Fatal(err)
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	got := versions(x, "S$1", 0, false, 0)
	want := []Entry{{Version: 0, Position: 1}, {Version: 2, Position: 3}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Versions = %v, want %v", got, want)
	}
}

func TestOpenRefusesAnotherFormat(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(keyFormat, appendUvs(nil, FormatVersion+1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrFormat) {
		t.Fatalf("Open of format %d: %v, want ErrFormat", FormatVersion+1, err)
	}
}

// TestDamageIsFound flips bytes in the index's tables, as a bad disk would: Check (the
// scrub) fails with ErrDamaged and reports it to OnDamage.
func TestDamageIsFound(t *testing.T) {
	dir := t.TempDir()
	x := openTest(t, dir)
	applyEvents(t, x, 1, 2000)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := x.Check(context.Background(), nil); err != nil {
		t.Fatalf("Check of a sound index: %v", err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no tables after a flush")
	}
	for _, path := range tables {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 100; i < len(b)/2; i += 200 {
			b[i] ^= 0x55
		}
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var reported []error
	x, err := Open(dir, Options{OnDamage: func(err error) { reported = append(reported, err) }})
	if err != nil {
		if errors.Is(err, ErrDamaged) || pebble.IsCorruptionError(err) {
			return // found at open: as good
		}
		t.Fatalf("Open of a damaged index: %v", err)
	}
	defer x.Close()
	if err := x.Check(context.Background(), nil); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Check of a damaged index: %v, want ErrDamaged", err)
	}
	if len(reported) == 0 || !errors.Is(reported[0], ErrDamaged) {
		t.Fatalf("OnDamage got %v", reported)
	}
}

// TestMergeSkipsNothingWhileBatchesLand follows two event types the way a subscription
// does (from the last position read, on) while a writer applies batches that alternate
// between them: every position must come once, in order, however the batches land
// between the iterators of one read.
func TestMergeSkipsNothingWhileBatchesLand(t *testing.T) {
	x := openTest(t, t.TempDir())
	const total = 3000
	done := make(chan error, 1)
	go func() {
		b := x.NewBatch()
		for pos := uint64(1); pos <= total; pos++ {
			typ := "A"
			if pos%2 == 0 {
				typ = "B"
			}
			if _, err := b.AddEvent(pos, testID(pos), "S$1", typ); err != nil {
				done <- err
				return
			}
			if err := x.Apply(b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	next := uint64(1)
	for next <= total {
		page, err := x.Types(nil, []string{"B", "A"}, next, false, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, pos := range page {
			if pos != next {
				t.Fatalf("read position %d, want %d: a position was skipped", pos, next)
			}
			next++
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCountsWhileBatchesLand: batches applied while the counting pass runs are counted
// once, whether the pass's view holds them or not.
func TestCountsWhileBatchesLand(t *testing.T) {
	x := openTest(t, t.TempDir())
	pos := uint64(1)
	for range 20 {
		applyEvents(t, x, pos, 500)
		pos += 500
	}
	// The first call starts the pass; with the entries in memory it may end before the
	// call returns, and then its counts must be those of the batches so far.
	if c, ok := x.Counts(); ok && c != (Counts{Events: 10000, Streams: 1}) {
		t.Fatalf("Counts() = %+v before the next batches, want 10000 events in 1 stream", c)
	}
	for i := range 50 {
		b := x.NewBatch()
		stream := fmt.Sprintf("New$%d", i)
		for range 3 {
			if _, err := b.AddEvent(pos, testID(pos), stream, "E"); err != nil {
				t.Fatal(err)
			}
			pos++
		}
		if i%10 == 0 {
			if err := b.DeleteStream(pos, "New$0"); err != nil {
				t.Fatal(err)
			}
			pos++
		}
		if err := x.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	// S$1 and New$1..New$49; New$0 was deleted (five times, once while it existed).
	want := Counts{Events: 10000 + 150, Streams: 50}
	if got := awaitCounts(t, x); got != want {
		t.Fatalf("Counts() = %+v, want %+v", got, want)
	}
}

// TestCloseStopsTheCount: Close does not wait for a whole counting pass.
func TestCloseStopsTheCount(t *testing.T) {
	x, err := Open(t.TempDir(), Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	applyEvents(t, x, 1, 20000)
	x.Counts()
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Counts(); ok {
		t.Log("the pass finished before Close")
	}
}

// TestStateKeyOrder pins what layout 3 relies on: a stream's state key is a prefix of its
// version keys, so it sorts right before them, and every key of a stream sorts below
// pastState of its state key and above the keys of any stream whose name sorts before it.
func TestStateKeyOrder(t *testing.T) {
	names := []string{"a", "a b", "a$1", "ab", "b"} // in byte order
	var keys [][]byte
	for _, name := range names {
		keys = append(keys, stateKey(nil, name), namedKey(nil, spaceVersion, name, 0),
			namedKey(nil, spaceVersion, name, 1<<60), namedKey(nil, spaceVersion, name, ^uint64(0)))
	}
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		t.Fatalf("keys of streams %q do not sort stream by stream, state first: %q", names, keys)
	}
	for i, k := range keys {
		name := names[i/4]
		if state := i%4 == 0; isStateKey(k) != state {
			t.Errorf("isStateKey(%q) = %v, want %v", k, !state, state)
		}
		past := pastState(keys[i-i%4])
		if bytes.Compare(k, past) >= 0 {
			t.Errorf("key %q of stream %q is not below pastState %q", k, name, past)
		}
		if i+4 < len(keys) && bytes.Compare(past, keys[i-i%4+4]) > 0 {
			t.Errorf("pastState of %q skips the state of stream %q", name, names[i/4+1])
		}
	}
}

// TestCountsWhileHandingOff: a hand-off that ingests an overlay and drops it while the
// counting pass opens its iterators leaves the overlay's entries in what the pass reads,
// in pebble's view or in the overlays it took.
func TestCountsWhileHandingOff(t *testing.T) {
	x := openTest(t, t.TempDir())
	applyEvents(t, x, 1, 100)
	x.freeze()
	x.cnt.start.Do(func() {}) // Counts reads what this pass finds and starts none
	x.cnt.openedHook = func() {
		// The pass's iterators are open: hand the frozen overlay off and drop it.
		if err := x.handOff(); err != nil {
			t.Error(err)
		}
	}
	if err := x.countAll(); err != nil {
		t.Fatal(err)
	}
	x.cnt.openedHook = nil
	if n := x.Metrics().OverlaysFrozen; n != 0 {
		t.Fatalf("%d overlays frozen after the hand-off, want 0", n)
	}
	want := Counts{Events: 100, Streams: 1}
	if got, ok := x.Counts(); !ok || got != want {
		t.Fatalf("Counts() = %+v, %v, want %+v", got, ok, want)
	}
}
