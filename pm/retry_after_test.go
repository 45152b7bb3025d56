package pm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// askLater is a handler's error that asks for the next attempt no sooner than after, as
// a webhook's 429 or 503 with Retry-After does (server.RetryAfterError).
type askLater struct{ after time.Duration }

func (e askLater) Error() string             { return fmt.Sprintf("busy, retry after %s", e.after) }
func (e askLater) RetryAfter() time.Duration { return e.after }

// retryAfterCases: what a receiver asks for, and the wait that follows with RetryMin
// 100ms (a first back-off of 50–100ms) and RetryMax a minute.
var retryAfterCases = []struct {
	name  string
	after time.Duration
	want  time.Duration // 0: the back-off's, at most RetryMin
}{
	{"longer than the back-off", 30 * time.Second, 30 * time.Second},
	{"absurd, capped at RetryMax", 365 * 24 * time.Hour, time.Minute},
	{"shorter than the back-off", time.Nanosecond, 0},
}

// checkRetryWait checks that a first failure at now waits as tc says before retryAt.
func checkRetryWait(t *testing.T, now, retryAt time.Time, after, want time.Duration) {
	t.Helper()
	wait := retryAt.Sub(now)
	if want == 0 && (wait < 50*time.Millisecond || wait > 100*time.Millisecond) ||
		want != 0 && wait != want {
		t.Fatalf("the receiver asked for %s: the retry waits %s, want %s (0: the back-off, 50-100ms)", after, wait, want)
	}
}

// TestSubscriptionHonoursRetryAfter: a receiver that asks to be tried again later (a
// webhook's Retry-After) is not attempted before then, however short the back-off, but
// no later than RetryMax: a receiver asking for a year holds the subscription back a
// minute at most. The attempt counts as failed, as any other.
func TestSubscriptionHonoursRetryAfter(t *testing.T) {
	for _, tc := range retryAfterCases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
			put(t, s, "S", "E", 1)
			r := &receiver{}
			r.set("1", fmt.Errorf("webhook: %w", askLater{tc.after}))
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{
				Deliver: r.handle, Clock: clock, RetryMin: 100 * time.Millisecond, RetryMax: time.Minute})
			sub.idle(t)
			st := sub.status(t)
			if st.Failing == nil || st.Failing.Attempts != 1 || !strings.Contains(st.LastErr, "busy") {
				t.Fatalf("status %+v: want event 1 failing after one attempt", st)
			}
			checkRetryWait(t, clock.Now(), st.RetryAt, tc.after, tc.want)
			clock.Advance(st.RetryAt.Sub(clock.Now()) - time.Nanosecond)
			sub.idle(t)
			if got := r.got(); got != "E/1" {
				t.Fatalf("a nanosecond before its retry time: attempts %q, want one", got)
			}
			r.set("1", nil)
			clock.Advance(time.Nanosecond)
			sub.idle(t)
			if got := r.got(); got != "E/1 E/1" {
				t.Fatalf("at its retry time: attempts %q, want two", got)
			}
		})
	}
}

// TestCommandDeliveryHonoursRetryAfter: a process manager's commands follow a
// receiver's Retry-After as a subscription's events do, capped at RetryMax, and the
// retry time recorded is that one.
func TestCommandDeliveryHonoursRetryAfter(t *testing.T) {
	for _, tc := range retryAfterCases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
			h := &script{}
			h.set("p/Step1", fmt.Errorf("webhook: %w", askLater{tc.after}))
			r := start(t, s, stepsDef("Steps"), pm.Options{Deliver: h.handle, Clock: clock,
				RetryMin: 100 * time.Millisecond, RetryMax: time.Minute})
			appendFact(t, s, goFact("p"))
			r.idle(t)
			ds, err := r.Deliveries(context.Background(), "p")
			if err != nil || len(ds) != 1 || ds[0].Outcome != pm.OutcomeFailed {
				t.Fatalf("deliveries %+v, %v: want one failure", ds, err)
			}
			checkRetryWait(t, clock.Now(), ds[0].RetryAt, tc.after, tc.want)
			clock.Advance(ds[0].RetryAt.Sub(clock.Now()) - time.Nanosecond)
			r.idle(t)
			if got := strings.Join(h.got(), " "); got != "p/Step1" {
				t.Fatalf("a nanosecond before its retry time: attempts %q, want one", got)
			}
			h.set("p/Step1", nil)
			clock.Advance(time.Nanosecond)
			r.idle(t)
			if got := outcomes(t, r, "p"); got != "Step1:failed Step1:delivered Step2:delivered Step3:delivered" {
				t.Fatalf("at its retry time: %s", got)
			}
		})
	}
}

// TestRetryAfterStillParks: an attempt whose receiver asked to wait counts as a failed
// one: max_attempts of them park the event.
func TestRetryAfterStillParks(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	put(t, s, "S", "E", 1)
	r := &receiver{}
	r.set("1", askLater{time.Hour})
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{
		Deliver: r.handle, Clock: clock, MaxAttempts: 2, RetryMax: time.Minute})
	sub.idle(t)
	clock.Advance(time.Minute)
	sub.idle(t)
	st := sub.status(t)
	if len(st.Parked) != 1 || st.Parked[0].Attempts != 2 {
		t.Fatalf("status %+v: want event 1 parked after 2 attempts", st)
	}
}
