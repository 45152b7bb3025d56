package pm_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestUpgradedSubscriptionPassesOverLaterForgeries opens a store written by pmd at
// 71aa2c0 (testdata/records1), whose subscription records have ids the store made. The
// first start of this version resumes Mailer from them as that version would (its
// failed event due at its recorded retry time, after one attempt) and writes its own
// copy of them; a skip of that event and a position far ahead appended afterwards by a
// writer are passed over at the next start: the failed event is still due at the same
// time, and then delivered with the one it held back.
func TestUpgradedSubscriptionPassesOverLaterForgeries(t *testing.T) {
	ctx := context.Background()
	want, dir := records1(t)
	s := openStore(t, dir)
	var retryAt time.Time
	for _, e := range processStream(t, s, pm.SubscriptionStream("Mailer")) {
		if e.Type == "EventDeliveryFailed" {
			var err error
			retryAt, err = time.Parse(time.RFC3339Nano, e.Data["retry_at"].(string))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if retryAt.IsZero() {
		t.Fatal("the fixture's Mailer has no failure with a retry time")
	}
	clock := pmtest.NewClock(retryAt.Add(-time.Minute))
	var mailed collected
	var logs logged
	opts := pm.SubscriptionOptions{Clock: clock, Logger: logs.logger(),
		Deliver: func(_ context.Context, e pmd.Event) error { mailed.add(e.ID); return nil }}
	failing := func(sub *runningSub, when string) pm.SubscriptionStatus {
		t.Helper()
		st := sub.status(t)
		if f := st.Failing; f == nil || f.Event.ID.String() != want.Failing || f.Attempts != 1 || !f.RetryAt.Equal(retryAt) {
			t.Fatalf("%s: status %+v, want %s failing after 1 attempt, due at %s", when, st, want.Failing, retryAt)
		}
		if got := mailed.get(); len(got) != 0 {
			t.Fatalf("%s: delivered %v before the retry time", when, got)
		}
		return st
	}

	mailer := startSub(t, s, "Mailer", pm.Filter{Types: []string{"Placed"}}, opts)
	mailer.idle(t)
	upgraded := failing(mailer, "after the upgrade")
	mailer.stop(t)

	failedID, err := uuid.Parse(want.Failing)
	if err != nil {
		t.Fatal(err)
	}
	last := s.LastPosition()
	if _, err := s.Append(ctx, pm.SubscriptionStream("Mailer"), pmd.Any,
		subRecord("EventSkipped", last, failedID, map[string]any{"event_type": "Placed", "event_stream": "Orders$3"}),
		subRecord("SubscriptionPosition", 1_000_000, nil, nil)); err != nil {
		t.Fatal(err)
	}

	mailer = startSub(t, s, "Mailer", pm.Filter{Types: []string{"Placed"}}, opts)
	mailer.idle(t)
	if st := failing(mailer, "after the forgery"); st.Position != upgraded.Position {
		t.Fatalf("position %d after the forgery, want %d", st.Position, upgraded.Position)
	}
	if !strings.Contains(logs.String(), "not its own") {
		t.Fatalf("the forgery was not logged:\n%s", logs.String())
	}
	clock.Advance(time.Hour)
	mailer.idle(t)
	placed4 := uuid.NewSHA1(uuid.NameSpaceOID, []byte("Placed 4")).String()
	if got, w := mailed.get(), []string{want.Failing, placed4}; !slices.Equal(got, w) {
		t.Fatalf("delivered %v, want %v: the failed event and the one it held back", got, w)
	}
}
