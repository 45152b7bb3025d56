package pm

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
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

func (idleSource) deliver(context.Context, *delivery) (Command, error)  { return Command{}, nil }
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
				for x := range d.itemsLocked() {
					if x.state == stateInflight {
						n++
					}
				}
				return n
			}
			for range keys + 2 {
				d.startLocked()
				clock.now = clock.now.Add(time.Second)
				d.lateLocked(clock.now)
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
			for x := range d.itemsLocked() {
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

// TestASlowReceiverKeepsDeliverers: attempts that run past hangAfter while the
// receiver still answers (others of its attempts end) are slow, not hung: however long
// heads of other keys wait, at most deliverers attempts of the receiver run. With
// nobody waiting, a late attempt keeps its slot too, and nothing is logged.
func TestASlowReceiverKeepsDeliverers(t *testing.T) {
	var mu sync.Mutex
	var logged logLines
	clock := &stillClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := newDispatcher(&mu, func() {}, idleSource{}, deliveryOptions{deliverers: 2, hangAfter: time.Second},
		clock, slog.New(slog.NewTextHandler(&logged, nil)))
	d.spawn = func(func(context.Context) error) {}
	mu.Lock()
	defer mu.Unlock()
	running := func() []*delivery {
		var xs []*delivery
		for x := range d.itemsLocked() {
			if x.state == stateInflight {
				xs = append(xs, x)
			}
		}
		slices.SortFunc(xs, func(a, b *delivery) int { return a.startedAt.Compare(b.startedAt) })
		return xs
	}

	// Nobody waiting: two keys, both attempts late, each keeps its slot.
	d.add(&delivery{id: uuid.New(), key: "a", typ: "Step"})
	d.add(&delivery{id: uuid.New(), key: "b", typ: "Step"})
	d.startLocked()
	clock.now = clock.now.Add(time.Second)
	d.lateLocked(clock.now)
	d.startLocked()
	if r := d.receivers[""]; r.inflight != 2 || r.hung != 0 || logged.count() != 0 {
		t.Fatalf("nobody waiting: inflight %d, hung %d, %d lines logged; want 2, 0, 0", r.inflight, r.hung, logged.count())
	}

	// Heads waiting, and the receiver answers its oldest attempt every 1.5s: the other
	// late attempt is slow, not hung.
	for i := range 20 {
		d.add(&delivery{id: uuid.New(), key: "k" + strconv.Itoa(i), typ: "Step"})
	}
	for range 10 {
		clock.now = clock.now.Add(1500 * time.Millisecond)
		d.lateLocked(clock.now)
		oldest := running()[0]
		d.endedLocked(oldest)
		d.doneLocked(oldest)
		d.startLocked()
		if n := len(running()); n != 2 {
			t.Fatalf("%d attempts of a slow receiver run, want its 2 deliverers", n)
		}
	}
	if logged.count() != 0 {
		t.Errorf("a slow receiver was logged as hanging:\n%s", logged.String())
	}
}

// TestHangingIsLoggedOncePerMinute: a receiver that never answers has a hung attempt
// for every waiting head; the warning is logged once a minute per receiver, saying how
// many were not logged since.
func TestHangingIsLoggedOncePerMinute(t *testing.T) {
	var mu sync.Mutex
	var logged logLines
	clock := &stillClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := newDispatcher(&mu, func() {}, idleSource{}, deliveryOptions{deliverers: 1, hangAfter: time.Second},
		clock, slog.New(slog.NewTextHandler(&logged, nil)))
	d.spawn = func(func(context.Context) error) {}
	for i := range 10 {
		d.add(&delivery{id: uuid.New(), key: "k" + strconv.Itoa(i), typ: "Step"})
	}
	mu.Lock()
	defer mu.Unlock()
	d.startLocked()
	for range 6 { // six hung within a minute
		clock.now = clock.now.Add(time.Second)
		d.lateLocked(clock.now)
		d.startLocked()
	}
	if r := d.receivers[""]; r.hung != 6 || logged.count() != 1 {
		t.Fatalf("hung %d, %d lines logged; want 6 hung and 1 line:\n%s", r.hung, logged.count(), logged.String())
	}
	clock.now = clock.now.Add(time.Minute)
	d.lateLocked(clock.now)
	d.startLocked()
	if logged.count() != 2 || !strings.Contains(logged.String(), "suppressed=5") {
		t.Fatalf("a minute later, want a second line counting the 5 not logged:\n%s", logged.String())
	}
}

// logLines is a log destination a test reads.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logLines) count() int { return strings.Count(l.String(), "\n") }
