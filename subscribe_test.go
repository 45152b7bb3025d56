package pmd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestSubscribeCatchUpThenLive writes while a subscriber is mid catch-up and checks that
// it sees every event exactly once, in order.
func TestSubscribeCatchUpThenLive(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts pmd.SubscribeOptions
	}{
		{"all", pmd.SubscribeOptions{}},
		{"stream", pmd.SubscribeOptions{Stream: "S"}},
		{"types", pmd.SubscribeOptions{Types: []string{"E"}}},
		{"category", pmd.SubscribeOptions{Category: "S"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, "")
			const before, during = 600, 300 // more than a page, so catch-up spans pages
			var want []uuid.UUID
			appendOne := func(i int) {
				e := ev("E", "i", i)
				want = append(want, e.ID)
				mustAppend(t, s, "S", pmd.Any, e)
				mustAppend(t, s, "Noise", pmd.Any, ev("N")) // filtered out by stream and types
			}
			for i := 0; i < before; i++ {
				appendOne(i)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan pmd.Event)
			go func() {
				defer close(got)
				for e, err := range s.Subscribe(ctx, tc.opts) {
					if err != nil {
						t.Errorf("subscription: %v", err)
						return
					}
					select {
					case got <- e:
					case <-ctx.Done():
						return
					}
				}
			}()
			var seen []uuid.UUID
			for len(seen) < before+during {
				e, ok := <-got
				if !ok {
					t.Fatal("subscription ended early")
				}
				if tc.name == "all" && e.Type != "E" {
					continue
				}
				seen = append(seen, e.ID)
				// Write the live part while the subscriber is still catching up.
				if n := len(seen); n > before/2 && n <= before/2+during {
					appendOne(before + n - before/2)
				}
			}
			if fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Fatalf("subscription saw %d events, not exactly the %d written in order", len(seen), len(want))
			}
			cancel()
			for range got { // the subscription ends once ctx is done
			}
		})
	}
}

func TestSubscribeWaitsForAStreamAndEndsOnClose(t *testing.T) {
	s := openStore(t, "")
	sub := make(chan error, 2)
	first := make(chan pmd.Event, 1)
	go func() {
		for e, err := range s.Subscribe(context.Background(), pmd.SubscribeOptions{Stream: "Later"}) {
			if err != nil {
				sub <- err
				return
			}
			first <- e
		}
		sub <- nil
	}()
	e := ev("E")
	mustAppend(t, s, "Later", pmd.NoStream, e)
	if got := <-first; got.ID != e.ID {
		t.Fatalf("got %v, want %v", got.ID, e.ID)
	}
	s.Close()
	if err := <-sub; !errors.Is(err, pmd.ErrClosed) {
		t.Fatalf("subscription ended with %v, want ErrClosed", err)
	}
}
