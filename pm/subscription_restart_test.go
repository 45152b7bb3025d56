package pm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// subRecord is a record of a subscription's stream as pm/FORMAT.md describes it, for
// tests that write what a run (or a user) would have left there.
func subRecord(typ string, position uint64, id fmt.Stringer, extra map[string]any) pmd.EventData {
	data := map[string]any{"position": position}
	if id != nil {
		data["event_id"], data["event_type"], data["event_stream"], data["attempt"] = id.String(), "E", "S", 1
		if typ != "SubscriptionPosition" {
			data["error"] = "down"
		}
	}
	for k, v := range extra {
		data[k] = v
	}
	return pmd.EventData{Type: typ, Data: data}
}

// subscriptionRecords lists the types of the records of the subscription's stream.
func subscriptionRecords(t testing.TB, s *pmd.Store, name string) []string {
	t.Helper()
	var types []string
	for e, err := range s.ReadStream(context.Background(), pm.SubscriptionStream(name), pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.Type)
	}
	return types
}

// TestSubscriptionParkedSurvivesAPositionRecordAfterIt: a position record written after
// the records of the event at that position (as an earlier version's save racing a
// failure left them) says nothing new about that event: a restart keeps it parked, or
// failing with its failures counted.
func TestSubscriptionParkedSurvivesAPositionRecordAfterIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tail    []string // record types about the event at 2, after SubscriptionPosition(2)
		parked  bool
		retried bool // the restart attempts it at once
	}{
		{"parked", []string{"EventDeliveryFailed", "EventParked"}, true, false},
		{"parked twice over", []string{"EventDeliveryFailed", "EventParked", "SubscriptionPosition", "EventRetried", "EventDeliveryFailed", "EventParked"}, true, false},
		{"retried", []string{"EventDeliveryFailed", "EventParked", "EventRetried"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			put(t, s, "S", "E", 1)
			bad := put(t, s, "S", "E", 2).IDs[0]
			recs := []pmd.EventData{subRecord("SubscriptionPosition", 2, nil, nil)}
			for _, typ := range tc.tail {
				id := fmt.Stringer(bad)
				if typ == "SubscriptionPosition" {
					id = nil
				}
				recs = append(recs, subRecord(typ, 2, id, nil))
			}
			recs = append(recs, subRecord("SubscriptionPosition", 2, nil, nil))
			if _, err := s.Append(ctx, pm.SubscriptionStream("billing"), pmd.Any, recs...); err != nil {
				t.Fatal(err)
			}
			r := &receiver{}
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: r.handle, MaxAttempts: 1})
			sub.idle(t)
			st := sub.status(t)
			want, position := "", uint64(2)
			if tc.retried {
				want, position = "E/2", 3
			}
			if parked := len(st.Parked) == 1 && st.Parked[0].Event.ID == bad; parked != tc.parked || st.Position != position {
				t.Fatalf("status %+v: want position %d, event 2 parked %v", st, position, tc.parked)
			}
			if got := r.got(); got != want {
				t.Fatalf("after the restart delivered %q, want %q", got, want)
			}
		})
	}
}

// TestSubscriptionPositionSaveNeverFollowsAFailure: the position record a delivery
// triggers and the failure of the next event are written in the order they happened,
// so the subscription's stream ends with the parking. The save and the failure race on
// every round; the rounds are many so that an unserialised save loses one of them.
func TestSubscriptionPositionSaveNeverFollowsAFailure(t *testing.T) {
	const rounds = 60
	ctx := context.Background()
	for i := range rounds {
		s := openStore(t, t.TempDir())
		r := &receiver{}
		r.set("2", errors.New("refused"))
		sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: r.handle, MaxAttempts: 1})
		sub.idle(t) // caught up on an empty log: the save loop waits for the position to move
		if _, err := s.Append(ctx, "S", pmd.Any, pmd.EventData{Type: "E", Data: map[string]any{"n": 1}},
			pmd.EventData{Type: "E", Data: map[string]any{"n": 2}}); err != nil {
			t.Fatal(err)
		}
		sub.idle(t)
		sub.stop(t)
		recs := subscriptionRecords(t, s, "billing")
		if len(recs) == 0 || recs[len(recs)-1] != "EventParked" {
			t.Fatalf("round %d: records %q, want EventParked last", i, recs)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSubscriptionPassesOverRecordsNotItsOwn: what a user writes into the subscription's
// stream (any event type but the subscription's own) is passed over when it resumes, so
// is a record erased with the stream; deleting or erasing the stream starts the
// subscription from the beginning of the log again.
func TestSubscriptionPassesOverRecordsNotItsOwn(t *testing.T) {
	note := pmd.EventData{Type: "Note", Data: map[string]any{"position": 99, "text": "hello"}}
	for _, tc := range []struct {
		name   string
		recs   func(e1 fmt.Stringer) []pmd.EventData
		remove func(ctx context.Context, s *pmd.Store) error
		want   string // delivered after the restart
		park   bool   // E/1 stays parked
	}{
		{name: "a note last", recs: func(fmt.Stringer) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 2, nil, nil), note}
		}, want: "E/1 E/2"},
		{name: "a note after a parking", recs: func(e1 fmt.Stringer) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 2, nil, nil), subRecord("EventDeliveryFailed", 2, e1, nil),
				note, subRecord("EventParked", 2, e1, nil), note}
		}, park: true},
		{name: "erased", recs: func(fmt.Stringer) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 2, nil, nil)}
		}, remove: func(ctx context.Context, s *pmd.Store) error {
			return s.EraseStream(ctx, pm.SubscriptionStream("billing"))
		}, want: "E/0 E/1 E/2"},
		{name: "deleted", recs: func(fmt.Stringer) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 2, nil, nil)}
		}, remove: func(ctx context.Context, s *pmd.Store) error {
			return s.DeleteStream(ctx, pm.SubscriptionStream("billing"), pmd.Any)
		}, want: "E/0 E/1 E/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			var e1 fmt.Stringer
			for i := range 3 {
				if id := put(t, s, "S", "E", i).IDs[0]; i == 1 {
					e1 = id
				}
			}
			for _, rec := range tc.recs(e1) {
				if _, err := s.Append(ctx, pm.SubscriptionStream("billing"), pmd.Any, rec); err != nil {
					t.Fatal(err)
				}
			}
			if tc.remove != nil {
				if err := tc.remove(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			r := &receiver{}
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: r.handle})
			sub.idle(t)
			if got := r.got(); got != tc.want {
				t.Fatalf("delivered %q, want %q", got, tc.want)
			}
			if st := sub.status(t); (len(st.Parked) == 1) != tc.park {
				t.Fatalf("status %+v, want E/1 parked %v", st, tc.park)
			}
		})
	}
}

// TestSubscriptionWaitIdleReturnsWhenRunCannotStart: when Run fails before it delivers
// anything (the store is closed), WaitIdle returns its error rather than wait.
func TestSubscriptionWaitIdleReturnsWhenRunCannotStart(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sub, err := pm.NewSubscription(s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: (&receiver{}).handle, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sub.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.WaitIdle(ctx); !errors.Is(err, pmd.ErrClosed) {
		t.Fatalf("WaitIdle: %v, want the store closed", err)
	}
	if err := <-done; !errors.Is(err, pmd.ErrClosed) {
		t.Fatalf("Run: %v, want the store closed", err)
	}
}

// TestSubscriptionTrimsItsStream: as it writes positions, a subscription hides the
// records of its stream no restart needs, keeping at most 2·KeepRecords visible; it still
// resumes where it was, and a parking after a trim survives a restart.
func TestSubscriptionTrimsItsStream(t *testing.T) {
	const keep = 2
	s := openStore(t, t.TempDir())
	r := &receiver{}
	opts := pm.SubscriptionOptions{Deliver: r.handle, KeepRecords: keep, MaxAttempts: 1}
	filter := pm.Filter{Types: []string{"E"}}
	var want []string
	for i := range 12 {
		put(t, s, "S", "E", i)
		want = append(want, fmt.Sprintf("E/%d", i))
		sub := startSub(t, s, "billing", filter, opts)
		sub.idle(t)
		sub.stop(t) // writes the position, if the save loop did not
		if recs := subscriptionRecords(t, s, "billing"); len(recs) > 2*keep {
			t.Fatalf("round %d: %d records visible, want at most %d: %q", i, len(recs), 2*keep, recs)
		}
	}
	if ret, err := s.Retention(pm.SubscriptionStream("billing")); err != nil || ret.TruncateBefore == 0 {
		t.Fatalf("retention %+v, %v: want old records hidden", ret, err)
	}
	if got := r.got(); got != strings.Join(want, " ") {
		t.Fatalf("delivered %q, want each event once: %q", got, strings.Join(want, " "))
	}

	r.set("12", errors.New("refused"))
	put(t, s, "S", "E", 12)
	sub := startSub(t, s, "billing", filter, opts)
	sub.idle(t)
	sub.stop(t)
	sub = startSub(t, s, "billing", filter, opts)
	sub.idle(t)
	if st := sub.status(t); len(st.Parked) != 1 || fmt.Sprint(st.Parked[0].Event.Data["n"]) != "12" {
		t.Fatalf("after a restart: %+v, want E/12 parked", st)
	}
	if got, want := r.got(), strings.Join(want, " ")+" E/12"; got != want {
		t.Fatalf("delivered %q, want %q: the parked event was attempted again", got, want)
	}
}
