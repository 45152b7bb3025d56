package engine_test

import (
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
	apply := func(n int) uint64 {
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
