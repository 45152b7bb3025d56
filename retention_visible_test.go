package pmd

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestScavengeWaitsForAnAcknowledgedRetention: the applier answers a batch's writers
// before it indexes the batch, and a scavenge reads the streams' settings from the index.
// A SetRetention that has returned, but that the index does not hold yet, must still
// count: here the applier is held after answering it until the scavenge either waits for
// the index (it is then let go) or finishes without waiting, having read the settings
// from before it.
func TestScavengeWaitsForAnAcknowledgedRetention(t *testing.T) {
	ctx := context.Background()
	s := openQuiet(t)
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
	if _, err := s.Append(ctx, "S$a", NoStream, EventData{Type: "T"}, EventData{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	if err := s.visible(ctx); err != nil {
		t.Fatal(err)
	}
	hold.Store(true)
	if err := s.SetRetention(ctx, "S$a", Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	<-held // acknowledged, not indexed

	type outcome struct {
		res ScavengeResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.Scavenge(ctx, ScavengeOptions{BytesPerSecond: -1})
		done <- outcome{res, err}
	}()
	var out outcome
	select {
	case <-waiting: // it waits for the index: let the applier index the retention
		close(release)
		out = <-done
	case out = <-done: // it read the settings without waiting
		close(release)
	}
	if out.err != nil || out.res.Expired != 1 {
		t.Fatalf("Scavenge = %+v, %v; want S$a expired: its max age was acknowledged before the scavenge began", out.res, out.err)
	}
}
