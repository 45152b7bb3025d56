package engine_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestFlushCountsFromTheDurablePoint: Apply asks for a flush once FlushEvery records are
// applied that the index does not hold on disk, not FlushEvery records after the last
// flush it asked for. The index hands a full overlay to disk by itself (here: a Flush
// of the index's own), and a flush counted from the one before came right after it and
// handed pebble a table of a few records, one more table in its level 0 to compact.
func TestFlushCountsFromTheDurablePoint(t *testing.T) {
	const every = 100
	flushed := make(chan struct{}, 1)
	// FlushInterval an hour: only Apply's kicks flush in this test.
	opts := engine.WithAfterFlush(engine.Options{Logger: slog.New(slog.DiscardHandler), NoScrub: true, NoSync: true,
		FlushEvery: every, FlushInterval: time.Hour}, func() {
		select {
		case flushed <- struct{}{}:
		default:
		}
	})
	e, err := engine.Open(filepath.Join(t.TempDir(), "data"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	apply := func(n int) uint64 { return applyEvents(t, e, n) }
	apply(every * 6 / 10)
	if err := e.Index.Flush(); err != nil { // the index hands its overlay to disk
		t.Fatal(err)
	}
	durable := e.Index.Durable()
	// 60 records since the durable point, 120 since the engine's start.
	apply(every * 6 / 10)
	select {
	case <-flushed:
		t.Fatalf("the index was flushed with %d records above its durable point, FlushEvery %d", e.Index.Position()-durable, every)
	case <-time.After(100 * time.Millisecond):
		// Nothing kicked the flush loop (a kick flushes within microseconds; a slow
		// machine could only hide a wrong flush here, never fail a right one).
	}
	want := apply(every * 4 / 10) // FlushEvery records above the durable point
	select {
	case <-flushed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no flush with %d records above the durable point, FlushEvery %d", want-durable, every)
	}
	if got := e.Index.Durable(); got != want {
		t.Fatalf("durable point %d after the flush, want %d", got, want)
	}
}

// applyEvents writes n events to e's log and applies them to its index through Apply,
// returning the index's position after them.
func applyEvents(t *testing.T, e *engine.Engine, n int) uint64 {
	t.Helper()
	b := engine.NewBatch(e.Index, e.Log)
	for range n {
		r := pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true, Event: pmdlog.Event{ID: uuid.New(), Stream: "Order$" + uuid.NewString(), Type: "T"}}
		if err := e.Log.Write([]pmdlog.Record{r}); err != nil {
			t.Fatal(err)
		}
		r.Position = e.Log.LastPosition()
		if err := engine.ApplyRecord(b, &r, uuid.Nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Apply(b); err != nil {
		t.Fatal(err)
	}
	return e.Index.Position()
}

// openFlushed opens an engine in a new directory with FlushEvery out of reach, so that
// only the flush loop's timer flushes, and a channel that receives after its flushes.
func openFlushed(t *testing.T, interval time.Duration) (*engine.Engine, <-chan struct{}) {
	t.Helper()
	flushed := make(chan struct{}, 1)
	opts := engine.WithAfterFlush(engine.Options{Logger: slog.New(slog.DiscardHandler), NoScrub: true, NoSync: true,
		FlushEvery: 1 << 30, FlushInterval: interval}, func() {
		select {
		case flushed <- struct{}{}:
		default:
		}
	})
	e, err := engine.Open(filepath.Join(t.TempDir(), "data"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, flushed
}

// TestFlushIntervalFlushes: a record applied is flushed by the flush loop's timer,
// FlushInterval after the durable point last moved, when fewer than FlushEvery came.
func TestFlushIntervalFlushes(t *testing.T) {
	e, flushed := openFlushed(t, 40*time.Millisecond)
	want := applyEvents(t, e, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for e.Index.Durable() != want {
		select {
		case <-flushed:
		case <-ctx.Done():
			t.Fatalf("durable point %d 20s after a record was applied at %d, FlushInterval 40ms: the timer never flushed", e.Index.Durable(), want)
		}
	}
}

// TestFlushIntervalCountsFromTheDurablePoint: the timer flushes FlushInterval after the
// index's durable point last moved, not every FlushInterval: while the index hands what
// it applied to disk by itself (here a Flush of the index's own, back to back), the timer
// never flushes, and after the last hand-off it waits FlushInterval again. A flush every
// FlushInterval whatever the hand-offs did handed pebble a small table each time.
//
// The hand-offs run for 1.5 FlushInterval from the start, and the flush after them must
// come more than half a FlushInterval after the last: the slack is for a slow machine
// (the loop looks every quarter FlushInterval and may be scheduled late), and the old
// timer flushed during the hand-offs, at FlushInterval from the start. FlushInterval is
// long enough that no one apply and hand-off of a loaded machine running the race
// detector takes it, which would let the timer flush rightly during the hand-offs.
func TestFlushIntervalCountsFromTheDurablePoint(t *testing.T) {
	const interval = 1500 * time.Millisecond
	e, flushed := openFlushed(t, interval)
	start := time.Now()
	last := start // the start of the last hand-off
	handOffs := 0
	for time.Since(start) < interval*3/2 {
		select {
		case <-flushed:
			t.Fatalf("the flush loop flushed %s after the start, while the index's hand-offs moved its durable point %d times, the last %s before, FlushInterval %s",
				time.Since(start).Round(time.Millisecond), handOffs, time.Since(last).Round(time.Millisecond), interval)
		default:
		}
		applyEvents(t, e, 1)
		last = time.Now()
		if err := e.Index.Flush(); err != nil {
			t.Fatal(err)
		}
		handOffs++
	}
	want := applyEvents(t, e, 1)
	select {
	case <-flushed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no flush 20s after the index's last hand-off, FlushInterval %s", interval)
	}
	if took := time.Since(last); took < interval/2 {
		t.Fatalf("the flush loop flushed %s after the index's last hand-off moved its durable point (%d hand-offs in %s), want FlushInterval %s after it",
			took.Round(time.Millisecond), handOffs, last.Sub(start).Round(time.Millisecond), interval)
	}
	if got := e.Index.Durable(); got != want {
		t.Fatalf("durable point %d after the flush, want %d", got, want)
	}
}
