package pm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// eventLog is an EventHandler that keeps the events it is handed, failing those whose
// "n" is in fail.
type eventLog struct {
	mu   sync.Mutex
	fail map[string]bool
	got  []pmd.Event
}

func (l *eventLog) handle(_ context.Context, e pmd.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, e)
	if l.fail[fmt.Sprint(e.Data["n"])] {
		return errors.New("receiver down")
	}
	return nil
}

func (l *eventLog) heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = nil
}

func (l *eventLog) events() []pmd.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pmd.Event(nil), l.got...)
}

// TestSubscriptionDeliversEventsAsTheStoreReadsThemNow: an event read before its stream
// was erased or deleted (parked, failing, or read ahead behind a parked event) is
// delivered as the store reads it when its attempt starts: erased, without its data; or,
// dead, not at all: it is dropped, the position moves past it and it is no longer
// parked. Status lists a parked erased event as erased too.
func TestSubscriptionDeliversEventsAsTheStoreReadsThemNow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ahead   bool // the victim is read ahead behind a parked event, not stuck itself
		failing bool // the victim is failing, due again later, not parked
		erase   bool // its stream is erased; otherwise deleted, and the event is dead
	}{
		{"erased while parked", false, false, true},
		{"erased while failing", false, true, true},
		{"erased while read ahead", true, false, true},
		{"dead while parked", false, false, false},
		{"dead while failing", false, true, false},
		{"dead while read ahead", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			stuck := "1"
			if tc.ahead {
				put(t, s, "S", "E", 0)
				stuck = "0"
			}
			victim, err := s.Append(ctx, "Cust$1", pmd.Any, pmd.EventData{Type: "E", Data: map[string]any{"n": 1, "ssn": "SECRET"}})
			if err != nil {
				t.Fatal(err)
			}
			l := &eventLog{fail: map[string]bool{stuck: true}}
			attempted := make(chan pmd.Event, 64) // OnAttempt runs after the attempt's outcome shows
			opts := pm.SubscriptionOptions{Deliver: l.handle, Clock: clock, MaxAttempts: 1,
				RetryMin: time.Minute, RetryMax: time.Minute,
				OnAttempt: func(a pm.AttemptInfo) { attempted <- a.Event }}
			if tc.failing {
				opts.MaxAttempts = 5
			}
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, opts)
			sub.idle(t)
			st := sub.status(t)
			stuckID := victim.IDs[0]
			switch {
			case tc.failing && (len(st.Parked) != 0 || st.RetryAt.IsZero()):
				t.Fatalf("status %+v, want the victim failing", st)
			case !tc.failing && len(st.Parked) != 1:
				t.Fatalf("status %+v, want one event parked", st)
			case !tc.failing:
				stuckID = st.Parked[0].Event.ID
			}
			if tc.erase {
				err = s.EraseStream(ctx, "Cust$1")
			} else {
				err = s.DeleteStream(ctx, "Cust$1", pmd.Any)
			}
			if err != nil {
				t.Fatal(err)
			}
			if st := sub.status(t); tc.erase && !tc.ahead && !tc.failing {
				if p := st.Parked[0].Event; !p.Erased || p.Data != nil {
					t.Fatalf("status lists the erased parked event as %+v", p)
				}
			}
			before := len(l.events())
			l.heal()
			switch {
			case tc.ahead:
				err = sub.Skip(ctx, stuckID)
			case tc.failing:
				clock.Advance(time.Hour)
			default:
				err = sub.Retry(ctx, stuckID)
			}
			if err != nil {
				t.Fatal(err)
			}
			sub.idle(t)
			after := put(t, s, "S", "E", 2)
			sub.idle(t)

			handed := l.events()[before:]
			want := 1
			if tc.erase {
				want = 2
				if v := handed[0]; v.ID != victim.IDs[0] || !v.Erased || v.Data != nil || v.Metadata != nil {
					t.Fatalf("the erased event was delivered as %+v, want it erased", v)
				}
			}
			if len(handed) != want || handed[len(handed)-1].ID != after.IDs[0] {
				t.Fatalf("delivered %d events after the release (%+v), want %d ending with the next one", len(handed), handed, want)
			}
			st = sub.status(t)
			if len(st.Parked) != 0 || !st.RetryAt.IsZero() || st.Lag != 0 || st.Position != after.LastPosition+1 {
				t.Fatalf("status %+v, want nothing parked or failing, position %d", st, after.LastPosition+1)
			}
			// A dropped event is no attempt: OnAttempt (metrics) sees the receiver's calls
			// only. In any order: OnAttempt runs after an attempt's outcome shows, which
			// may be after the next attempt began.
			all := l.events()
			var calls, seen []string
			deadline := time.After(30 * time.Second)
			for i := range all {
				calls = append(calls, all[i].ID.String())
				select {
				case e := <-attempted:
					seen = append(seen, e.ID.String())
				case <-deadline:
					t.Fatalf("OnAttempt saw %d attempts, the receiver %d calls", i, len(all))
				}
			}
			slices.Sort(calls)
			slices.Sort(seen)
			if !slices.Equal(calls, seen) {
				t.Fatalf("OnAttempt saw attempts of %v, the receiver calls of %v", seen, calls)
			}
			select {
			case e := <-attempted:
				t.Fatalf("OnAttempt saw an attempt of %+v the receiver never had", e)
			default:
			}
		})
	}
}

// TestSubscriptionOfAStreamWhoseEventsAreGone: a stream subscription counts its lag to
// the newest event the stream still shows, so one whose stream was deleted, or whose
// retention hides the events, is idle with no lag; it goes on with the events written
// after.
func TestSubscriptionOfAStreamWhoseEventsAreGone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remove func(ctx context.Context, s *pmd.Store) error
		live   string // what the stream still shows, delivered
	}{
		{"deleted", func(ctx context.Context, s *pmd.Store) error { return s.DeleteStream(ctx, "S", pmd.Any) }, ""},
		{"truncated", func(ctx context.Context, s *pmd.Store) error {
			return s.SetRetention(ctx, "S", pmd.Retention{TruncateBefore: 3})
		}, ""},
		{"max count", func(ctx context.Context, s *pmd.Store) error {
			return s.SetRetention(ctx, "S", pmd.Retention{MaxCount: 1})
		}, "E/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			for i := range 3 {
				put(t, s, "S", "E", i)
			}
			if err := tc.remove(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			r := &receiver{}
			sub := startSub(t, s, "follow", pm.Filter{Stream: "S"}, pm.SubscriptionOptions{Deliver: r.handle})
			sub.idle(t)
			if st := sub.status(t); st.Lag != 0 || len(st.Parked) != 0 {
				t.Fatalf("status %+v, want no lag", st)
			}
			if got := r.got(); got != tc.live {
				t.Fatalf("delivered %q, want %q", got, tc.live)
			}
			put(t, s, "S", "E", 3)
			sub.idle(t)
			if st := sub.status(t); st.Lag != 0 || st.Position != 4 {
				t.Fatalf("after a new event: status %+v, want position 4, no lag", st)
			}
			if got, want := r.got(), strings.TrimSpace(tc.live+" E/3"); got != want {
				t.Fatalf("delivered %q, want %q", got, want)
			}
		})
	}
}

// TestSubscriptionDropsAnEventRemovedFromItsStream: a stream subscription delivers only
// what its stream still holds when an attempt starts. An event parked (or failing) at
// version 0 of the followed stream, then removed from that stream (deleted with it, or
// truncated away) while it lives on elsewhere (its own stream, for a link; a link, for
// an event of the stream), is dropped at its next attempt like a dead event: the
// receiver never gets it, OnAttempt does not see it, and the position moves past it.
func TestSubscriptionDropsAnEventRemovedFromItsStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		linked  bool // the victim is linked into S from its own stream; otherwise written to S and linked elsewhere
		remove  func(ctx context.Context, s *pmd.Store) error
		failing bool // the victim is failing, due again later, not parked
	}{
		{"own event, stream deleted", false, deleteS, false},
		{"own event, stream truncated", false, truncateS, false},
		{"link, stream deleted", true, deleteS, false},
		{"link, stream truncated", true, truncateS, false},
		{"link, stream truncated while failing", true, truncateS, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			home, other := "S", "Elsewhere"
			if tc.linked {
				home, other = "Own$1", "S"
			}
			victim, err := s.Append(ctx, home, pmd.Any, pmd.EventData{Type: "E", Data: map[string]any{"n": 1}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Link(ctx, other, pmd.Any, victim.IDs[0]); err != nil {
				t.Fatal(err)
			}
			l := &eventLog{fail: map[string]bool{"1": true}}
			attempted := make(chan pmd.Event, 64)
			opts := pm.SubscriptionOptions{Deliver: l.handle, Clock: clock, MaxAttempts: 1,
				RetryMin: time.Minute, RetryMax: time.Minute,
				OnAttempt: func(a pm.AttemptInfo) { attempted <- a.Event }}
			if tc.failing {
				opts.MaxAttempts = 5
			}
			sub := startSub(t, s, "follow", pm.Filter{Stream: "S"}, opts)
			sub.idle(t)
			if st := sub.status(t); tc.failing && st.RetryAt.IsZero() || !tc.failing && len(st.Parked) != 1 {
				t.Fatalf("status %+v, want the victim stuck", st)
			}
			<-attempted // the failed attempt
			if err := tc.remove(ctx, s); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Event(ctx, victim.IDs[0]); err != nil {
				t.Fatalf("the victim should live on outside S: %v", err)
			}
			l.heal()
			if tc.failing {
				clock.Advance(time.Hour)
			} else if err := sub.Retry(ctx, victim.IDs[0]); err != nil {
				t.Fatal(err)
			}
			sub.idle(t)
			after := put(t, s, "S", "E", 2)
			sub.idle(t)

			got := l.events()
			if len(got) != 2 || got[0].ID != victim.IDs[0] || got[1].ID != after.IDs[0] {
				t.Fatalf("the receiver got %+v, want the failed attempt of the victim, then the next event only", got)
			}
			st := sub.status(t)
			if len(st.Parked) != 0 || !st.RetryAt.IsZero() || st.Lag != 0 || st.Position != after.Version+1 {
				t.Fatalf("status %+v, want nothing stuck, position %d", st, after.Version+1)
			}
			if e := <-attempted; e.ID != after.IDs[0] {
				t.Fatalf("OnAttempt saw an attempt of %s, want only the next event's", e.ID)
			}
			select {
			case e := <-attempted:
				t.Fatalf("OnAttempt saw an attempt of %+v the receiver never had", e)
			default:
			}
		})
	}
}

func deleteS(ctx context.Context, s *pmd.Store) error { return s.DeleteStream(ctx, "S", pmd.Any) }

func truncateS(ctx context.Context, s *pmd.Store) error {
	return s.SetRetention(ctx, "S", pmd.Retention{TruncateBefore: 1})
}
