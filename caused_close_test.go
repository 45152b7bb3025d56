package pmd_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// CausedSeq's loop body runs with no lock of the store's held: a body that reads the store
// while another goroutine closes it (a handler at shutdown) deadlocked, Close waiting for
// the index's iteration and the body's read waiting behind Close. Here the body closes the
// store itself, which returns only if nothing the loop holds waits for the body.
func TestCausedSeqBodyHoldsNoLock(t *testing.T) {
	s, parent := openWithParent(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "Order$1", pmd.Any, causedBy("Shipped", parent.ID), causedBy("Billed", parent.ID)); err != nil {
		t.Fatal(err)
	}
	for _, err := range s.CausedSeq(ctx, parent.ID) {
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("close: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Close waits for CausedSeq's loop body")
		}
		break
	}
}

// CausedSeq reads the caused events' positions 256 at a time: every one comes once, in
// log order, across the chunks, and a loop that stops early stops there.
func TestCausedSeqAcrossChunks(t *testing.T) {
	s, parent := openWithParent(t)
	ctx := context.Background()
	const n = 600
	batch := make([]pmd.EventData, 0, 100)
	for i := range n {
		batch = append(batch, causedBy("Shipped", parent.ID))
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := s.Append(ctx, "Order$1", pmd.Any, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	var last uint64
	got := 0
	for ev, err := range s.CausedSeq(ctx, parent.ID) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Position <= last {
			t.Fatalf("event at %d after %d: not in log order, or twice", ev.Position, last)
		}
		last = ev.Position
		got++
	}
	if got != n {
		t.Fatalf("%d caused events, want %d", got, n)
	}
	if evs, err := s.Caused(ctx, parent.ID, 300); err != nil || len(evs) != 300 || evs[299].Position != evs[0].Position+299 {
		t.Fatalf("Caused(300) = %d events, %v", len(evs), err)
	}
}

// openWithParent opens a store holding one event, Order$1's Placed, for others to name as
// their cause.
func openWithParent(t *testing.T) (*pmd.Store, pmd.EventData) {
	t.Helper()
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	parent := pmd.EventData{ID: uuid.New(), Type: "Placed"}
	if _, err := s.Append(context.Background(), "Order$1", pmd.Any, parent); err != nil {
		t.Fatal(err)
	}
	return s, parent
}
