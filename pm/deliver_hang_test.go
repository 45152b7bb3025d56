package pm

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// stillClock is a Clock the test sets; nothing waits on it.
type stillClock struct{ now time.Time }

func (c *stillClock) Now() time.Time                   { return c.now }
func (c *stillClock) Until(time.Time) <-chan time.Time { return nil }

// idleSource is a source with nothing to read; the test never runs an attempt.
type idleSource struct{}

func (idleSource) deliver(context.Context, *delivery) error             { return nil }
func (idleSource) record(context.Context, *delivery, ...Delivery) error { return nil }
func (idleSource) pendingLocked() bool                                  { return false }
func (idleSource) read(context.Context) error                           { return nil }
func (idleSource) attrs(*delivery) []any                                { return nil }

// TestHungAttemptsAreBounded: each attempt that runs for hangAfter frees its slot of
// Deliverers for the next key's head, until hungFactor·deliverers attempts of the
// receiver run in all; past that nothing more starts, and an attempt that ends makes
// room again. Without hangAfter, a running attempt always keeps its slot.
func TestHungAttemptsAreBounded(t *testing.T) {
	for _, tt := range []struct {
		name      string
		hangAfter time.Duration
		most      int
	}{
		{"hangAfter", time.Second, hungFactor},
		{"never hung", 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			clock := &stillClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			d := newDispatcher(&mu, func() {}, idleSource{}, deliveryOptions{deliverers: 1, hangAfter: tt.hangAfter},
				clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
			d.spawn = func(func(context.Context) error) {}
			const keys = hungFactor + 4
			for i := range keys {
				d.add(&delivery{id: uuid.New(), key: string(rune('a' + i)), typ: "Step"})
			}
			mu.Lock()
			defer mu.Unlock()
			running := func() int {
				n := 0
				for _, x := range d.byID {
					if x.state == stateInflight {
						n++
					}
				}
				return n
			}
			for range keys + 2 {
				d.startLocked()
				clock.now = clock.now.Add(time.Second)
				d.hungLocked(clock.now)
			}
			if n := running(); n != tt.most {
				t.Fatalf("%d attempts run, want %d", n, tt.most)
			}
			r := d.receivers[""]
			if tt.hangAfter == 0 {
				if r.inflight != 1 || r.hung != 0 {
					t.Fatalf("inflight %d, hung %d; want 1 and 0", r.inflight, r.hung)
				}
				return
			}
			if r.inflight+r.hung != hungFactor || len(r.ready) != keys-hungFactor {
				t.Fatalf("inflight %d, hung %d, ready %d; want %d running and %d ready", r.inflight, r.hung, len(r.ready), hungFactor, keys-hungFactor)
			}
			// One hung attempt ends: one more head starts.
			for _, x := range d.byID {
				if x.state == stateInflight && x.hung {
					d.endedLocked(x)
					d.doneLocked(x)
					break
				}
			}
			d.startLocked()
			if n := running(); n != hungFactor {
				t.Fatalf("after one ended %d attempts run, want %d", n, hungFactor)
			}
		})
	}
}
