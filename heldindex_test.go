package pmd

import (
	"context"
	"sync/atomic"
)

// heldIndex holds the store's applier, once armed, after it answers a batch's writers and
// before it indexes the batch: a write acknowledged that the index does not hold yet.
type heldIndex struct {
	armed   atomic.Bool   // the next batch is held before it is indexed
	held    chan struct{} // closed when the applier holds that batch
	release chan struct{} // closed to let the applier index it
	waiting chan struct{} // gets a value when a reader waits for the index
}

// holdIndex sets s's test hooks. Call it before any write: the applier and visible read
// the hooks after the writes' hand-over.
func holdIndex(s *Store) *heldIndex {
	h := &heldIndex{held: make(chan struct{}), release: make(chan struct{}), waiting: make(chan struct{}, 1)}
	s.beforeIndex = func() {
		if h.armed.CompareAndSwap(true, false) {
			close(h.held)
			<-h.release
		}
	}
	s.waitIndex = func() {
		select {
		case h.waiting <- struct{}{}:
		default:
		}
	}
	return h
}

// scavenge runs s.Scavenge, with no rate limit, until the held batch is acknowledged and
// not indexed; it lets the applier go once the scavenge waits for the index, or once it
// has finished without waiting, and returns what the scavenge returned.
func (h *heldIndex) scavenge(ctx context.Context, s *Store) (ScavengeResult, error) {
	type outcome struct {
		res ScavengeResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.Scavenge(ctx, ScavengeOptions{BytesPerSecond: -1})
		done <- outcome{res, err}
	}()
	<-h.held
	var out outcome
	select {
	case <-h.waiting: // the scavenge waits for the index: let the applier index the batch
		close(h.release)
		out = <-done
	case out = <-done: // it finished without waiting
		close(h.release)
	}
	return out.res, out.err
}
