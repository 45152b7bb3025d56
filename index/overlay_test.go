package index

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestHandOffFailuresBoundFrozen: while every hand-off fails (a full disk), Apply keeps
// taking batches without waiting, at most maxFrozen overlays are frozen and the active
// one grows instead, Metrics says so, reads stay right, Flush fails; once hand-offs
// succeed again Flush writes it all and a reopen finds it.
func TestHandOffFailuresBoundFrozen(t *testing.T) {
	dir := t.TempDir()
	x, m := openTest(t, dir), newModel()
	x.ov.limit = 64
	x.ov.retry = time.Hour // the background hand-off fails once and waits
	var failing atomic.Bool
	failing.Store(true)
	errFull := errors.New("no space left on device (test)")
	x.ov.fail = func() error {
		if failing.Load() {
			return errFull
		}
		return nil
	}
	rng := rand.New(rand.NewPCG(7, 3))
	workload(t, rng, m, 1000, x) // about 100 overlays' worth of entries
	checkSame(t, x, m)
	got := x.Metrics()
	if got.OverlaysFrozen != maxFrozen {
		t.Fatalf("Metrics().OverlaysFrozen = %d while hand-offs fail, want %d", got.OverlaysFrozen, maxFrozen)
	}
	if got.OverlayEntries <= 10*x.ov.limit {
		t.Fatalf("Metrics().OverlayEntries = %d: the active overlay did not take what could not be frozen", got.OverlayEntries)
	}
	if got.OverlayBytes < uint64(got.OverlayEntries)*ovEntryBytes {
		t.Fatalf("Metrics().OverlayBytes = %d, below the active overlay's %d entries", got.OverlayBytes, got.OverlayEntries)
	}
	if err := x.Flush(); !errors.Is(err, errFull) {
		t.Fatalf("Flush() = %v while hand-offs fail, want %v", err, errFull)
	}
	if got := x.Metrics(); got.HandOffFailures < 1 || got.OverlaysFrozen > maxFrozen {
		t.Fatalf("Metrics() = %+v after failed hand-offs", got)
	}
	failing.Store(false)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := x.Metrics(); got.OverlaysFrozen != 0 || got.OverlayEntries != 0 || x.Durable() != x.Position() {
		t.Fatalf("after a Flush that succeeded: Metrics() = %+v, Durable %d, Position %d", got, x.Durable(), x.Position())
	}
	checkSame(t, x, m)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openTest(t, dir)
	checkSame(t, x, m)
}

// TestHandOffRetriesByItself: a hand-off that failed is tried again without a Flush or
// another full overlay.
func TestHandOffRetriesByItself(t *testing.T) {
	x, m := openTest(t, t.TempDir()), newModel()
	x.ov.limit = 64
	x.ov.retry = time.Millisecond
	var fails atomic.Int64
	fails.Store(3)
	x.ov.fail = func() error {
		if fails.Add(-1) >= 0 {
			return errors.New("I/O error (test)")
		}
		return nil
	}
	workload(t, rand.New(rand.NewPCG(8, 3)), m, 30, x)
	// The workload froze overlays; the hand-off fails three times, then succeeds with
	// no further batch.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := x.Metrics()
		if got.OverlaysFrozen == 0 && got.HandOffFailures == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Metrics() = %+v 30 s after three failed hand-offs: not retried", got)
		}
		time.Sleep(time.Millisecond)
	}
	checkSame(t, x, m)
}

// TestStreamNamesLetsWritersIn: StreamNames over an active overlay of many streams does
// not hold the overlays' lock while it goes through them: a batch is applied between its
// chunks.
func TestStreamNamesLetsWritersIn(t *testing.T) {
	x := openTest(t, t.TempDir())
	const streams = 4 * namesChunk
	b := x.NewBatch()
	for i := range streams {
		if _, err := b.AddEvent(uint64(i+1), testID(uint64(i+1)), fmt.Sprintf("Order$%04d", i), "Created"); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	hooked := 0
	x.ov.namesHook = func() {
		hooked++
		if hooked != 1 {
			return
		}
		// Apply takes the lock for writing: it would wait for ever on a reader holding it.
		go func() {
			b := x.NewBatch()
			_, err := b.AddEvent(streams+1, testID(streams+1), "Order$new", "Created")
			if err == nil {
				err = x.Apply(b)
			}
			applied <- err
		}()
		select {
		case err := <-applied:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Apply waited 30 s for StreamNames")
		}
	}
	got, err := x.StreamNames("Order$", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if hooked < streams/namesChunk {
		t.Fatalf("StreamNames read %d streams in %d chunks, want %d", streams, hooked, streams/namesChunk)
	}
	if len(got) != streams {
		t.Fatalf("StreamNames found %d streams, want the %d there when it started", len(got), streams)
	}
	for i, s := range got {
		if want := fmt.Sprintf("Order$%04d", i); s.Name != want || !s.Exists || s.Next != 1 {
			t.Fatalf("StreamNames()[%d] = %+v, want %s at version 0", i, s, want)
		}
	}
}

// TestStreamNamesLimitBoundsTheWork: StreamNames with a small limit reads the states of
// at most limit streams of the active overlay (one chunk, not every matching stream), and
// lists the right ones from the active overlay, a frozen one not yet handed off and one
// handed off.
func TestStreamNamesLimitBoundsTheWork(t *testing.T) {
	x := openTest(t, t.TempDir())
	const streams = 8 * namesChunk
	pos := uint64(1)
	// Three quarters of the streams: one in pebble, one frozen, then the active overlay,
	// which gets its names in descending order.
	for part := range 4 {
		b := x.NewBatch()
		for i := streams - 1; i >= 0; i-- {
			if i%4 != part {
				continue
			}
			if _, err := b.AddEvent(pos, testID(pos), fmt.Sprintf("Order$%04d", i), "Created"); err != nil {
				t.Fatal(err)
			}
			pos++
		}
		if err := x.Apply(b); err != nil {
			t.Fatal(err)
		}
		switch part {
		case 0:
			if err := x.Flush(); err != nil {
				t.Fatal(err)
			}
		case 1:
			x.freeze() // no hand-off: it stays frozen without its sorted names
		case 2:
			x.freeze()
			x.ov.mu.Lock()
			f := x.ov.frozen[len(x.ov.frozen)-1]
			x.ov.mu.Unlock()
			names := make([]string, 0, len(f.streams))
			for n := range f.streams {
				names = append(names, n)
			}
			slices.Sort(names)
			x.ov.mu.Lock()
			f.names = names // as its hand-off sets them
			x.ov.mu.Unlock()
		}
	}
	hooked := 0
	x.ov.namesHook = func() { hooked++ }
	for _, c := range []struct {
		prefix, after string
		limit         int
		from          int // the first stream listed
	}{
		{"", "", 10, 0},
		{"Order$", "", 10, 0},
		{"Order$", "Order$0100", 10, 101},
		{"Order$01", "Order$0100", 5, 101},
		{"Order$", "Order$2040", 10, 2041},
		{"Order$", "Order$0100", 3 * firstSorted, 101},
		{"Order$", "Order$2000", 3 * firstSorted, 2001},
	} {
		hooked = 0
		got, err := x.StreamNames(c.prefix, c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if hooked > 1 {
			t.Errorf("StreamNames(%q, %q, %d) read the active overlay's streams in %d chunks, want 1", c.prefix, c.after, c.limit, hooked)
		}
		var want []string
		for i := c.from; i < streams && len(want) < c.limit; i++ {
			want = append(want, fmt.Sprintf("Order$%04d", i))
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
			if !s.Exists || s.Next != 1 {
				t.Errorf("StreamNames(%q, %q, %d) gives %+v, want it at version 0", c.prefix, c.after, c.limit, s)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("StreamNames(%q, %q, %d) = %v, want %v", c.prefix, c.after, c.limit, names, want)
		}
	}
}

// TestDeadInSearchesFrozenOverlays: the dead marks of a window of positions are found in
// a frozen overlay by a search, not a walk of all its marks.
func TestDeadInSearchesFrozenOverlays(t *testing.T) {
	x := openTest(t, t.TempDir())
	const events = 2000
	applyEvents(t, x, 1, events)
	b := x.NewBatch()
	if err := b.DeleteStream(events+1, "S$1"); err != nil {
		t.Fatal(err)
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	x.freeze()
	examined := 0
	x.ov.deadHook = func(n int) { examined += n }
	got := x.ovDeadIn(100, 109)
	x.ov.deadHook = nil
	if len(got) != 10 {
		t.Fatalf("ovDeadIn(100, 109) = %v, want the 10 positions marked dead", got)
	}
	for p := uint64(100); p <= 109; p++ {
		if dead, ok := got[p]; !ok || !dead {
			t.Fatalf("ovDeadIn(100, 109) = %v, want %d marked dead", got, p)
		}
	}
	if examined > 20 {
		t.Fatalf("ovDeadIn examined %d of the %d marks for 10 positions", examined, events)
	}
}
