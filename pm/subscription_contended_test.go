package pm_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestSubscriptionOutlastsAnotherWriterOfItsStream: a program that keeps appending to
// a subscription's stream makes its writes, which expect the stream's version, miss
// again and again. That is not fatal: the subscription goes on delivering every event
// (a failure, recorded at once, waits until its record lands), Run returns no error,
// and a cancel still stops it promptly.
func TestSubscriptionOutlastsAnotherWriterOfItsStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail bool // every event's first attempt fails: a record written at once
	}{
		{name: "positions"},
		{name: "failure records", fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			var mu sync.Mutex
			tried := map[string]bool{}
			var delivered []int
			deliver := func(_ context.Context, e pmd.Event) error {
				mu.Lock()
				defer mu.Unlock()
				n, _ := strconv.Atoi(fmt.Sprint(e.Data["n"]))
				if tc.fail && !tried[e.ID.String()] {
					tried[e.ID.String()] = true
					return errors.New("first attempt fails")
				}
				delivered = append(delivered, n)
				return nil
			}
			sub, err := pm.NewSubscription(s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{
				Deliver: deliver, SaveEvery: time.Millisecond, MaxAttempts: -1,
				RetryMin: time.Millisecond, RetryMax: time.Millisecond, Logger: quiet(),
			})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- sub.Run(runCtx) }()

			// The other writer: appends to the subscription's stream without a pause.
			noteCtx, stopNotes := context.WithCancel(ctx)
			notes := make(chan struct{})
			go func() {
				defer close(notes)
				for noteCtx.Err() == nil {
					if _, err := s.Append(ctx, pm.SubscriptionStream("billing"), pmd.Any, pmd.EventData{Type: "Note"}); err != nil {
						return
					}
				}
			}()
			defer func() { stopNotes(); <-notes }()

			const events = 40
			for i := range events {
				put(t, s, "S", "E", i)
				select {
				case err := <-done:
					t.Fatalf("Run ended while another writer appends to its stream: %v", err)
				case <-time.After(2 * time.Millisecond):
				}
			}
			waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
			defer waitCancel()
			for {
				mu.Lock()
				n := len(delivered)
				mu.Unlock()
				if n >= events {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("Run ended while another writer appends to its stream: %v", err)
				case <-waitCtx.Done():
					t.Fatalf("delivered %d of %d events", n, events)
				case <-time.After(time.Millisecond):
				}
			}
			mu.Lock()
			for i, n := range delivered {
				if n != i {
					t.Fatalf("delivered %v, want 0..%d in order", delivered, events-1)
				}
			}
			mu.Unlock()

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after its context was cancelled")
			}
		})
	}
}
