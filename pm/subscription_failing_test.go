package pm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestSubscriptionStatusNamesTheFailingEvent: while an event fails (fewer than
// MaxAttempts times), Status names it (the event, where it stands, the attempts made,
// the last error, when it is tried again) as it names a parked one; while its next
// attempt runs, it is still named, with no retry time; a restart names it again from
// the subscription's stream; once delivered, nothing is named.
func TestSubscriptionStatusNamesTheFailingEvent(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	put(t, s, "S", "E", 0)
	victim := put(t, s, "S", "E", 1)
	started, release := make(chan struct{}), make(chan struct{})
	attempts := 0
	deliver := func(ctx context.Context, e pmd.Event) error {
		if fmt.Sprint(e.Data["n"]) != "1" {
			return nil
		}
		attempts++ // one attempt at a time: events go out one by one
		switch attempts {
		case 1:
			return errors.New("503 first")
		case 2:
			close(started)
			<-release
			return errors.New("503 second")
		}
		return nil
	}
	opts := pm.SubscriptionOptions{Deliver: deliver, Clock: clock, MaxAttempts: 5, RetryMin: time.Minute, RetryMax: time.Minute}
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
	sub.idle(t)

	check := func(st pm.SubscriptionStatus, attempts int, err string, waiting bool) {
		t.Helper()
		f := st.Failing
		if f == nil || f.Event.ID != victim.IDs[0] || fmt.Sprint(f.Event.Data["n"]) != "1" || f.At != victim.LastPosition ||
			f.Attempts != attempts || f.Err != err || len(st.Parked) != 0 || st.Position != victim.LastPosition {
			t.Fatalf("status %+v, failing %+v; want event %s at %d failing, %d attempts, error %q", st, f, victim.IDs[0], victim.LastPosition, attempts, err)
		}
		if waiting && (f.RetryAt.IsZero() || !f.RetryAt.Equal(st.RetryAt) || f.RetryAt.Before(clock.Now())) ||
			!waiting && (!f.RetryAt.IsZero() || !st.RetryAt.IsZero()) {
			t.Fatalf("failing %+v, status retry at %v (now %v): want a retry time %v", f, st.RetryAt, clock.Now(), waiting)
		}
	}
	check(sub.status(t), 1, "503 first", true)

	clock.Advance(time.Hour)
	<-started // the second attempt runs
	check(sub.status(t), 1, "503 first", false)
	close(release)
	sub.idle(t)
	check(sub.status(t), 2, "503 second", true)

	// A restart reads it back from the subscription's stream.
	sub.stop(t)
	sub = startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
	sub.idle(t)
	check(sub.status(t), 2, "503 second", true)

	clock.Advance(time.Hour)
	sub.idle(t)
	if st := sub.status(t); st.Failing != nil || !st.RetryAt.IsZero() || st.Position != victim.LastPosition+1 {
		t.Fatalf("status %+v after the delivery: want nothing failing, position %d", st, victim.LastPosition+1)
	}
}
