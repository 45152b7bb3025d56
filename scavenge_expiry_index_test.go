package pmd

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestScavengeRemovesTheEventsItsExpiryKills: the retention record a scavenge writes for
// the events past a stream's max age makes them dead in the index, and the scavenge reads
// the dead marks from the index; the applier answers the record before it indexes it. The
// scavenge must wait for the index to hold its own records, else the expired events stay
// on the disk until the next scavenge (a day later, as pmd serve schedules them). Here the
// applier is held after answering the expiry until the scavenge either waits for the index
// (it is then let go) or finishes without waiting.
func TestScavengeRemovesTheEventsItsExpiryKills(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{NoSync: true, NoScrub: true, SegmentSize: 4096, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var hold atomic.Bool // the next batch is held before it is indexed
	held, release := make(chan struct{}), make(chan struct{})
	waiting := make(chan struct{}, 1)
	// Set before any write: the applier and visible read them after the writes' hand-over.
	s.beforeIndex = func() {
		if hold.CompareAndSwap(true, false) {
			close(held)
			<-release
		}
	}
	s.waitIndex = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	pad := strings.Repeat("x", 500)
	for i, stream := range []string{"S$a", "S$a", "S$a", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad"} {
		if _, err := s.Append(ctx, stream, Any, EventData{Type: "T", Data: map[string]any{"i": i, "pad": pad}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetRetention(ctx, "S$a", Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.visible(ctx); err != nil {
		t.Fatal(err)
	}
	hold.Store(true) // the expiry the scavenge records

	type outcome struct {
		res ScavengeResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.Scavenge(ctx, ScavengeOptions{BytesPerSecond: -1})
		done <- outcome{res, err}
	}()
	<-held // the expiry is acknowledged, not indexed
	var out outcome
	select {
	case <-waiting: // the scavenge waits for the index: let the applier index the expiry
		close(release)
		out = <-done
	case out = <-done: // it read the dead marks without waiting
		close(release)
	}
	// S$a's versions 0 and 1 go; version 2, its newest, stays for its version, without data.
	if out.err != nil || out.res.Expired != 1 || out.res.Gone != 2 || out.res.Erased != 1 {
		t.Fatalf("Scavenge = %+v, %v; want S$a's 3 expired events removed by the scavenge that recorded their expiry (2 gone, the newest without its data)", out.res, out.err)
	}
}
