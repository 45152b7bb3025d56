package pm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// receiver is an EventHandler whose answers the test sets per event "n" (a data field):
// an error, or nil. It records what it was handed, in order.
type receiver struct {
	mu    sync.Mutex
	fail  map[string]error
	calls []string // "<type>/<n>"
	ids   []uuid.UUID
}

func (r *receiver) handle(_ context.Context, e pmd.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := fmt.Sprint(e.Data["n"])
	r.calls = append(r.calls, e.Type+"/"+n)
	r.ids = append(r.ids, e.ID)
	return r.fail[n]
}

func (r *receiver) set(n string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail == nil {
		r.fail = map[string]error{}
	}
	r.fail[n] = err
}

func (r *receiver) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.calls, " ")
}

// runningSub is a Subscription whose Run goroutine the test controls.
type runningSub struct {
	*pm.Subscription
	cancel context.CancelFunc
	done   chan error
}

func startSub(t testing.TB, s *pmd.Store, name string, f pm.Filter, opts pm.SubscriptionOptions) *runningSub {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	sub, err := pm.NewSubscription(s, name, f, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningSub{Subscription: sub, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- sub.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *runningSub) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	if err, ok := <-r.done; ok {
		close(r.done)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func (r *runningSub) idle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
}

func (r *runningSub) status(t testing.TB) pm.SubscriptionStatus {
	t.Helper()
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// put appends an event of type typ with data n to stream.
func put(t testing.TB, s *pmd.Store, stream, typ string, n int) pmd.WriteResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, pmd.Any, pmd.EventData{Type: typ, Data: map[string]any{"n": n}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSubscriptionDeliversInOrderAndResumes: the matching events, and only those, go
// out in log order; the position is kept in the store, so that a new run delivers only
// what came after.
func TestSubscriptionDeliversInOrderAndResumes(t *testing.T) {
	s := openStore(t, t.TempDir())
	for i := 1; i <= 6; i++ {
		typ := []string{"A", "B", "C"}[i%3]
		put(t, s, fmt.Sprintf("S$%d", i%2), typ, i)
	}
	r := &receiver{}
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"A", "B"}}, pm.SubscriptionOptions{Deliver: r.handle})
	sub.idle(t)
	if got, want := r.got(), "B/1 A/3 B/4 A/6"; got != want {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if st := sub.status(t); st.Position != 7 || st.Lag != 0 || len(st.Parked) != 0 {
		t.Fatalf("status %+v, want position 7, no lag", st)
	}
	sub.stop(t)

	put(t, s, "S$0", "B", 7)
	put(t, s, "S$0", "C", 8)
	r2 := &receiver{}
	again := startSub(t, s, "billing", pm.Filter{Types: []string{"A", "B"}}, pm.SubscriptionOptions{Deliver: r2.handle})
	again.idle(t)
	if got := r2.got(); got != "B/7" {
		t.Fatalf("after a restart delivered %q, want only B/7", got)
	}
	// Another subscription of the same events keeps a position of its own.
	r3 := &receiver{}
	other := startSub(t, s, "audit", pm.Filter{Types: []string{"B"}}, pm.SubscriptionOptions{Deliver: r3.handle})
	other.idle(t)
	if got := r3.got(); got != "B/1 B/4 B/7" {
		t.Fatalf("audit delivered %q", got)
	}
}

// TestSubscriptionFilters: a stream subscription counts versions and sees links; a
// category subscription sees the category's streams only.
func TestSubscriptionFilters(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	put(t, s, "Order$1", "Placed", 1)
	put(t, s, "Other$1", "Placed", 2)
	res := put(t, s, "Order$2", "Placed", 3)
	if _, err := s.Link(ctx, "Picked", pmd.Any, res.IDs[0]); err != nil {
		t.Fatal(err)
	}
	put(t, s, "Picked", "Noted", 4)

	byStream := &receiver{}
	st := startSub(t, s, "picked", pm.Filter{Stream: "Picked"}, pm.SubscriptionOptions{Deliver: byStream.handle})
	st.idle(t)
	if got := byStream.got(); got != "Placed/3 Noted/4" {
		t.Fatalf("stream subscription delivered %q", got)
	}
	if pos := st.status(t).Position; pos != 2 {
		t.Fatalf("stream subscription at %d, want version 2", pos)
	}
	byCategory := &receiver{}
	cat := startSub(t, s, "orders", pm.Filter{Category: "Order"}, pm.SubscriptionOptions{Deliver: byCategory.handle})
	cat.idle(t)
	if got := byCategory.got(); got != "Placed/1 Placed/3" {
		t.Fatalf("category subscription delivered %q", got)
	}
	put(t, s, "Order$1", "Shipped", 5)
	cat.idle(t)
	if got := byCategory.got(); got != "Placed/1 Placed/3 Shipped/5" {
		t.Fatalf("category subscription, live, delivered %q", got)
	}

	for _, f := range []pm.Filter{{}, {Types: []string{"A"}, Stream: "S"}, {Category: "Order$1"}} {
		if _, err := pm.NewSubscription(s, "x", f, pm.SubscriptionOptions{Deliver: byStream.handle}); err == nil {
			t.Errorf("filter %+v accepted", f)
		}
	}
	if _, err := pm.NewSubscription(s, "x.y", pm.Filter{Stream: "S"}, pm.SubscriptionOptions{Deliver: byStream.handle}); err == nil {
		t.Error("a name with a dot accepted")
	}
}

// TestSubscriptionParkRetrySkip, on a clock moved by hand: a failing event holds back
// the events behind it, is retried at its recorded time, parked after MaxAttempts
// failures, stays parked across a restart, and Retry or Skip let the rest go.
func TestSubscriptionParkRetrySkip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	clock := pmtest.NewClock(time.Now())
	for i := 1; i <= 4; i++ {
		put(t, s, "S", "E", i)
	}
	r := &receiver{}
	r.set("2", errors.New("receiver down"))
	opts := pm.SubscriptionOptions{Deliver: r.handle, Clock: clock, MaxAttempts: 2, RetryMin: time.Second, RetryMax: time.Second}
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
	sub.idle(t)
	if got := r.got(); got != "E/1 E/2" {
		t.Fatalf("delivered %q, want E/1 then the failing E/2 and nothing behind it", got)
	}
	st := sub.status(t)
	if st.Position != 2 || st.Lag != 3 || st.RetryAt.IsZero() || st.LastErr != "receiver down" {
		t.Fatalf("status %+v: want position 2, lag 3, a retry time and the error", st)
	}
	// Not due yet: nothing happens.
	clock.Advance(st.RetryAt.Sub(clock.Now()) - time.Millisecond)
	sub.idle(t)
	if got := r.got(); got != "E/1 E/2" {
		t.Fatalf("before its retry time: %q", got)
	}
	clock.Advance(time.Millisecond)
	sub.idle(t)
	st = sub.status(t)
	if len(st.Parked) != 1 || fmt.Sprint(st.Parked[0].Event.Data["n"]) != "2" || st.Parked[0].Attempts != 2 || st.Parked[0].Err != "receiver down" {
		t.Fatalf("parked %+v, want E/2 after 2 attempts", st.Parked)
	}
	parked := st.Parked[0].Event.ID
	clock.Advance(24 * time.Hour)
	sub.idle(t)
	if got := r.got(); got != "E/1 E/2 E/2" {
		t.Fatalf("parked, it was attempted again: %q", got)
	}
	if err := sub.Retry(ctx, uuid.New()); !errors.Is(err, pm.ErrEventNotAwaiting) {
		t.Fatalf("Retry of an unknown event: %v", err)
	}

	// Parked state survives a restart.
	sub.stop(t)
	sub = startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
	sub.idle(t)
	if st := sub.status(t); len(st.Parked) != 1 || st.Parked[0].Event.ID != parked || st.Position != 2 {
		t.Fatalf("after a restart: %+v, want E/2 parked at 2", st)
	}
	if got := r.got(); got != "E/1 E/2 E/2" {
		t.Fatalf("after a restart the parked event was attempted: %q", got)
	}

	// Retry: it fails once more (its failures count from 0 again, so it waits), then
	// the receiver is fixed.
	if err := sub.Retry(ctx, parked); err != nil {
		t.Fatal(err)
	}
	sub.idle(t)
	if st := sub.status(t); len(st.Parked) != 0 || st.RetryAt.IsZero() {
		t.Fatalf("after a retry that failed once: %+v, want it failing, not parked", st)
	}
	r.set("2", nil)
	r.set("3", errors.New("bad event"))
	clock.Advance(time.Hour)
	sub.idle(t)
	clock.Advance(time.Hour)
	sub.idle(t)
	st = sub.status(t)
	if len(st.Parked) != 1 || fmt.Sprint(st.Parked[0].Event.Data["n"]) != "3" {
		t.Fatalf("status %+v, want E/3 parked", st)
	}
	if err := sub.Skip(ctx, st.Parked[0].Event.ID); err != nil {
		t.Fatal(err)
	}
	sub.idle(t)
	if got, want := r.got(), "E/1 E/2 E/2 E/2 E/2 E/3 E/3 E/4"; got != want {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if st := sub.status(t); st.Position != 5 || st.Lag != 0 {
		t.Fatalf("status %+v, want position 5", st)
	}

	// Every failure, parking, retry and skip is in the subscription's stream, between
	// the position records.
	var types []string
	for e, err := range s.ReadStream(ctx, pm.SubscriptionStream("billing"), pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != "SubscriptionPosition" {
			types = append(types, e.Type)
		}
	}
	want := "EventDeliveryFailed EventDeliveryFailed EventParked EventRetried EventDeliveryFailed " +
		"EventDeliveryFailed EventDeliveryFailed EventParked EventSkipped"
	if got := strings.Join(types, " "); !strings.HasPrefix(got, want) {
		t.Fatalf("records %q, want %q first", got, want)
	}
}

// TestSubscriptionRetriesResumeAtRecordedTime: a restart does not retry a failing
// event at once, but at the time recorded.
func TestSubscriptionRetriesResumeAtRecordedTime(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	put(t, s, "S", "E", 1)
	r := &receiver{}
	r.set("1", errors.New("down"))
	opts := pm.SubscriptionOptions{Deliver: r.handle, Clock: clock, RetryMin: time.Minute, RetryMax: time.Minute}
	sub := startSub(t, s, "billing", pm.Filter{Stream: "S"}, opts)
	sub.idle(t)
	retryAt := sub.status(t).RetryAt
	sub.stop(t)
	r.set("1", nil)
	sub = startSub(t, s, "billing", pm.Filter{Stream: "S"}, opts)
	sub.idle(t)
	if got := r.got(); got != "E/1" {
		t.Fatalf("after a restart, before its retry time: %q", got)
	}
	if st := sub.status(t); !st.RetryAt.Equal(retryAt) {
		t.Fatalf("retry at %v after a restart, recorded %v", st.RetryAt, retryAt)
	}
	clock.Advance(retryAt.Sub(clock.Now()))
	sub.idle(t)
	if got := r.got(); got != "E/1 E/1" {
		t.Fatalf("at its retry time: %q", got)
	}
}

// TestSubscriptionHangingReceiverIsolated: one subscription whose receiver hangs
// delays no other subscription, and a process manager's commands neither.
func TestSubscriptionHangingReceiverIsolated(t *testing.T) {
	s := openStore(t, t.TempDir())
	hung := make(chan struct{})
	var entered sync.Once
	inside := make(chan struct{})
	hang := func(ctx context.Context, _ pmd.Event) error {
		entered.Do(func() { close(inside) })
		select {
		case <-hung:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
	startSub(t, s, "stuck", pm.Filter{Types: []string{"Go"}}, pm.SubscriptionOptions{Deliver: hang})
	r := &receiver{}
	healthy := startSub(t, s, "healthy", pm.Filter{Types: []string{"Go"}}, pm.SubscriptionOptions{Deliver: r.handle})
	h := &script{}
	m := start(t, s, stepsDef("Steps"), pm.Options{Deliver: h.handle})
	for i := 1; i <= 20; i++ {
		appendFact(t, s, pmd.Event{Type: "Go", Data: map[string]any{"id": fmt.Sprint(i), "n": i}})
	}
	<-inside
	healthy.idle(t)
	m.idle(t)
	if got := len(strings.Fields(r.got())); got != 20 {
		t.Fatalf("the healthy subscription got %d events, want 20", got)
	}
	if got := len(h.got()); got != 60 {
		t.Fatalf("the process manager delivered %d commands, want 60", got)
	}
	close(hung)
}

// TestNewSubscriptionRefusesBadFilters: a filter naming what no event can match, a
// stream of the store's own, or the subscription's own records, is refused with an
// error naming the field.
func TestNewSubscriptionRefusesBadFilters(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, tc := range []struct {
		filter pm.Filter
		want   string
	}{
		{pm.Filter{Stream: "$all"}, `stream "$all" starts with $`},
		{pm.Filter{Stream: "$settings"}, `stream "$settings" starts with $`},
		{pm.Filter{Stream: "bad\x01name"}, "stream"},
		{pm.Filter{Stream: strings.Repeat("s", 257)}, "stream is 257 bytes long"},
		{pm.Filter{Types: []string{""}}, "types[0] must not be empty"},
		{pm.Filter{Types: []string{"A", "B\nC"}}, "types[1]"},
		{pm.Filter{Category: "bad\x01"}, "category"},
		// Following its own records: each delivery moves the position, whose record
		// is the next event to deliver, once a second for ever.
		{pm.Filter{Stream: "x.subscription"}, `stream "x.subscription" is the subscription's own`},
		{pm.Filter{Category: "x.subscription"}, `category "x.subscription" holds the subscription's own stream`},
		{pm.Filter{Types: []string{"A", "SubscriptionPosition"}}, `types[1] "SubscriptionPosition" is the type of the subscription's own position records`},
	} {
		_, err := pm.NewSubscription(s, "x", tc.filter, pm.SubscriptionOptions{Deliver: (&receiver{}).handle})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("filter %+q: %v, want an error with %q", tc.filter, err, tc.want)
		}
	}
}

// TestSubscriptionRetryAtIsWallTime: on the system clock, a failing event's retry time
// holds no monotonic reading: it compares by the wall clock, and a wall-clock step or a
// resume from suspend makes it due.
func TestSubscriptionRetryAtIsWallTime(t *testing.T) {
	s := openStore(t, t.TempDir())
	put(t, s, "S$1", "A", 1)
	r := &receiver{}
	r.set("1", errors.New("down"))
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"A"}}, pm.SubscriptionOptions{Deliver: r.handle, MaxAttempts: 5})
	sub.idle(t)
	st := sub.status(t)
	if st.Failing == nil || st.RetryAt.IsZero() {
		t.Fatalf("status %+v, want a failing event and its retry time", st)
	}
	if st.RetryAt != st.RetryAt.Round(0) {
		t.Fatalf("retry at %v carries a monotonic reading: it would not follow a wall-clock step", st.RetryAt)
	}
}
