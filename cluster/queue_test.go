package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestTakeQueuedDropsAbandonedWrites: a write whose writer gave up (its context ended,
// replicate returned the context's error) while it waited for the entry in flight is not
// sent in the next entry: its client may retry it without its event ids, and it would be
// written twice. The writes taken leave the queue, which holds no pointer to them.
func TestTakeQueuedDropsAbandonedWrites(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	q := func(ctx context.Context, b string) *queuedWrite {
		return &queuedWrite{ctx: ctx, write: []byte(b), done: make(chan outcome, 1)}
	}
	n := &Node{}
	n.queue = []*queuedWrite{q(gone, "a"), q(live, "b"), q(gone, "c"), q(live, "d")}
	n.inFlight = true
	if got := n.takeQueued(); got != nil {
		t.Fatalf("takeQueued with an entry in flight returned %d writes", len(got))
	}
	n.inFlight = false
	batch := n.takeQueued()
	var sent []string
	for _, w := range batch {
		sent = append(sent, string(w.write))
	}
	if len(sent) != 2 || sent[0] != "b" || sent[1] != "d" {
		t.Fatalf("takeQueued sent %q, want [b d]", sent)
	}
	if !n.inFlight || len(n.queue) != 0 {
		t.Fatalf("after takeQueued: in flight %v, queue %d", n.inFlight, len(n.queue))
	}
	if tail := n.queue[:cap(n.queue)]; len(tail) > 0 {
		for i, w := range tail {
			if w != nil {
				t.Errorf("the queue's array still holds write %q at %d", w.write, i)
			}
		}
	}

	n.inFlight = false
	n.queue = []*queuedWrite{q(gone, "e")}
	if got := n.takeQueued(); got != nil || n.inFlight {
		t.Fatalf("a queue of abandoned writes only: took %d, in flight %v", len(got), n.inFlight)
	}
}

// neverFuture is an Apply future that never completes, as one does whose entry Raft
// took into its apply queue as it shut down.
type neverFuture struct{ raft.ApplyFuture }

func (neverFuture) Error() error { select {} }

// doneFuture completed without error.
type doneFuture struct{ raft.ApplyFuture }

func (doneFuture) Error() error { return nil }

// TestFutureErrorWhenRaftStops: the writers of an entry whose future never completes are
// answered once the node stops Raft, with Raft's shutdown error (replicate then says the
// write may not have been committed), instead of waiting for ever; a future that
// completes gives its own outcome.
func TestFutureErrorWhenRaftStops(t *testing.T) {
	n := &Node{raftStopping: make(chan struct{})}
	if err := n.futureError(doneFuture{}); err != nil {
		t.Fatalf("a completed future: %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- n.futureError(neverFuture{}) }()
	select {
	case err := <-got:
		t.Fatalf("answered before Raft stopped: %v", err)
	default:
	}
	n.raftStopOnce.Do(func() { close(n.raftStopping) })
	select {
	case err := <-got:
		if !errors.Is(err, raft.ErrRaftShutdown) {
			t.Fatalf("after Raft stopped: %v, want raft.ErrRaftShutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a writer of an entry Raft never completes is not answered once Raft stopped")
	}
}
