package pm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// reopen closes s and opens the store in dir again.
func reopen(t *testing.T, s *pmd.Store, dir string) *pmd.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openStore(t, dir)
}

// TestSubscriptionLastErrorAtSurvivesRestart: a subscription's LastErrAt is when the
// failed attempt failed (by its clock), and a restart, with the store reopened and the
// clock moved on, reads that same time back: for an event failing, parked, or parked and
// then retried by an operator (the retry, written later, is not the error's time).
func TestSubscriptionLastErrorAtSurvivesRestart(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maxAttempts int
		retry       bool
	}{
		{"failing", 3, false},
		{"parked", 1, false},
		{"parked then retried", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			// Years from the wall clock: a time read from anywhere but the record of
			// the failure shows.
			failedAt := time.Date(2031, 3, 4, 5, 6, 7, 890123456, time.UTC)
			clock := pmtest.NewClock(failedAt)
			put(t, s, "S", "E", 1)
			var mu sync.Mutex
			calls := 0
			retried := make(chan struct{})
			handle := func(ctx context.Context, e pmd.Event) error {
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				if n == 1 {
					return errors.New("receiver down")
				}
				// The attempt after the retry is cut short by the stop: not recorded,
				// so that the retry is the last record the restart reads.
				close(retried)
				<-ctx.Done()
				return ctx.Err()
			}
			opts := pm.SubscriptionOptions{Deliver: handle, Clock: clock, MaxAttempts: tc.maxAttempts, RetryMin: time.Hour, RetryMax: time.Hour}
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
			sub.idle(t)
			st := sub.status(t)
			if st.LastErr != "receiver down" || !st.LastErrAt.Equal(failedAt) {
				t.Fatalf("after the failure: last error %q at %v, want %q at %v", st.LastErr, st.LastErrAt, "receiver down", failedAt)
			}
			if tc.retry {
				clock.Advance(time.Minute)
				if len(st.Parked) != 1 {
					t.Fatalf("status %+v: want the event parked", st)
				}
				if err := sub.Retry(context.Background(), st.Parked[0].Event.ID); err != nil {
					t.Fatal(err)
				}
				<-retried
			}
			sub.stop(t)
			s = reopen(t, s, dir)
			clock.Advance(10 * time.Minute) // less than the retry's hour: nothing is attempted
			opts.Deliver = func(context.Context, pmd.Event) error { return nil }
			sub = startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
			sub.idle(t)
			st = sub.status(t)
			if st.LastErr != "receiver down" || !st.LastErrAt.Equal(failedAt) {
				t.Fatalf("after a restart: last error %q at %v, want %q at %v, when it failed", st.LastErr, st.LastErrAt, "receiver down", failedAt)
			}
			if tc.retry {
				return // the retried event was delivered: no error is left to read
			}
			// And again: a start does not re-stamp what it read.
			sub.stop(t)
			s = reopen(t, s, dir)
			sub = startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
			sub.idle(t)
			if st := sub.status(t); !st.LastErrAt.Equal(failedAt) {
				t.Fatalf("after a second restart: last error at %v, want %v", st.LastErrAt, failedAt)
			}
		})
	}
}

// TestSubscriptionLastErrorAtOfAdoptedRecords: records a subscription takes over from
// a stream it has no record of its own in (written by an earlier version, whose record
// ids were other) keep the time of their failure through the copy it writes of them:
// the second start reads the copy, and still says when the attempt failed, not when the
// copy was written.
func TestSubscriptionLastErrorAtOfAdoptedRecords(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	put(t, s, "S", "E", 1)
	bad := put(t, s, "S", "E", 2).IDs[0]
	res, err := s.Append(context.Background(), pm.SubscriptionStream("billing"), pmd.Any,
		subRecord("SubscriptionPosition", 2, nil, nil), subRecord("EventDeliveryFailed", 2, bad, nil), subRecord("EventParked", 2, bad, nil))
	if err != nil {
		t.Fatal(err)
	}
	parked, err := s.Event(context.Background(), res.IDs[2])
	if err != nil {
		t.Fatal(err)
	}
	failedAt := parked.Timestamp
	opts := pm.SubscriptionOptions{Deliver: func(context.Context, pmd.Event) error { return nil }, MaxAttempts: 1}
	for i := range 3 {
		sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
		sub.idle(t)
		st := sub.status(t)
		if len(st.Parked) != 1 || st.LastErr != "down" || !st.LastErrAt.Equal(failedAt) {
			t.Fatalf("start %d: status %+v: want event 2 parked, its last error %q at %v", i+1, st, "down", failedAt)
		}
		sub.stop(t)
		s = reopen(t, s, dir)
	}
}
