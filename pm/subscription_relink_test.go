package pm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestSubscriptionDeliversAnEventLinkedBackIntoItsStream: a stream subscription whose
// event E is parked at version 0 of the stream, which is then deleted and E linked into
// it again (version 1), holds both copies: Retry or Skip by E's id acts on the parked
// copy at version 0 (dropped, or skipped), and E at version 1 is delivered after it. A
// restart while the copy at version 0 is parked resumes nothing of its history for the
// copy at version 1, which the stream still holds: it is delivered.
func TestSubscriptionDeliversAnEventLinkedBackIntoItsStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		act     func(ctx context.Context, sub *runningSub, e pmd.WriteResult) error
		restart bool
		want    string
	}{
		{"retry", func(ctx context.Context, sub *runningSub, e pmd.WriteResult) error { return sub.Retry(ctx, e.IDs[0]) }, false, "E/1 E/1"},
		{"skip", func(ctx context.Context, sub *runningSub, e pmd.WriteResult) error { return sub.Skip(ctx, e.IDs[0]) }, false, "E/1 E/1"},
		{"restart", nil, true, "E/1 E/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			e := put(t, s, "Src", "E", 1)
			if _, err := s.Link(ctx, "S", pmd.Any, e.IDs[0]); err != nil {
				t.Fatal(err)
			}
			r := &receiver{}
			r.set("1", errors.New("down"))
			opts := pm.SubscriptionOptions{Deliver: r.handle, Clock: clock, MaxAttempts: 1}
			sub := startSub(t, s, "sub", pm.Filter{Stream: "S"}, opts)
			sub.idle(t) // E parked at version 0
			if err := s.DeleteStream(ctx, "S", pmd.Any); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Link(ctx, "S", pmd.Any, e.IDs[0]); err != nil { // E at version 1
				t.Fatal(err)
			}
			sub.idle(t)
			if st := sub.status(t); len(st.Parked) != 1 || st.Parked[0].At != 0 || st.Lag != 2 {
				t.Fatalf("status %+v, want E parked at version 0, a lag of 2", st)
			}
			r.set("1", nil)
			if tc.restart {
				sub.stop(t)
				sub = startSub(t, s, "sub", pm.Filter{Stream: "S"}, opts)
			} else if err := tc.act(ctx, sub, e); err != nil {
				t.Fatal(err)
			}
			sub.idle(t)
			if got := r.got(); got != tc.want {
				t.Fatalf("delivered %q, want %q", got, tc.want)
			}
			if st := sub.status(t); st.Position != 2 || st.Lag != 0 || len(st.Parked) != 0 || st.Failing != nil {
				t.Fatalf("status %+v, want position 2, nothing stuck", st)
			}
		})
	}
}
