package pm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/pm"
)

// TestSubscriptionFiltersGoOnPastADamagedRecord: whatever it follows, a subscription
// skips a damaged record, the last matching one or not, delivers every event around
// it, and ends caught up: position past the last event, no lag.
func TestSubscriptionFiltersGoOnPastADamagedRecord(t *testing.T) {
	const n = 40
	for _, tc := range []struct {
		name     string
		filter   pm.Filter
		victim   int
		position uint64 // where it ends: past the last event (at log position n, or version n-1)
	}{
		{"types", pm.Filter{Types: []string{"A"}}, 7, n + 1},
		{"types, the last", pm.Filter{Types: []string{"A"}}, n - 1, n + 1},
		{"category", pm.Filter{Category: "Order"}, 7, n + 1},
		{"category, the last", pm.Filter{Category: "Order"}, n - 1, n + 1},
		{"stream", pm.Filter{Stream: "Order$1"}, 7, n},
		{"stream, the last", pm.Filter{Stream: "Order$1"}, n - 1, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := damagedStore(t, func(s *pmd.Store) {
				for i := range n {
					put := pmd.EventData{Type: "A", Data: map[string]any{"n": i, "pad": pad, "mark": fmt.Sprintf("MARK-%03d-MARK", i)}}
					if _, err := s.Append(ctx, "Order$1", pmd.Any, put); err != nil {
						t.Fatal(err)
					}
				}
				// Behind them, so that the last one lies in a sealed segment too.
				for range n {
					if _, err := s.Append(ctx, "Noise$1", pmd.Any, pmd.EventData{Type: "N", Data: map[string]any{"pad": pad}}); err != nil {
						t.Fatal(err)
					}
				}
			}, fmt.Sprintf("MARK-%03d-MARK", tc.victim))
			r := &receiver{}
			sub := startSub(t, s, "billing", tc.filter, pm.SubscriptionOptions{Deliver: r.handle})
			sub.idle(t)
			var want []string
			for i := range n {
				if i != tc.victim {
					want = append(want, fmt.Sprintf("A/%d", i))
				}
			}
			if got := r.got(); got != strings.Join(want, " ") {
				t.Fatalf("delivered %q, want every event but the damaged one", got)
			}
			if st := sub.status(t); st.Position != tc.position || st.Lag != 0 {
				t.Fatalf("status %+v, want position %d, no lag", st, tc.position)
			}
		})
	}
}

// TestSubscriptionResumesPastADamagedRecordOfItsOwn: a damaged record in the
// subscription's own stream does not stop it: it resumes from the readable records
// before it (delivering again what came after them: at least once), and a parked event
// after the damage stays parked.
func TestSubscriptionResumesPastADamagedRecordOfItsOwn(t *testing.T) {
	const mark = "MARK-OWN-MARK"
	for _, tc := range []struct {
		name string
		recs func(ids []fmt.Stringer) []pmd.EventData // written to billing.subscription
		want string                                   // delivered after the restart
		park bool                                     // E/1 stays parked
	}{
		{"the newest position", func([]fmt.Stringer) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 2, nil, nil),
				subRecord("SubscriptionPosition", 3, nil, map[string]any{"mark": mark})}
		}, "E/1 E/2", false},
		{"the only record", func([]fmt.Stringer) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 3, nil, map[string]any{"mark": mark})}
		}, "E/0 E/1 E/2", false},
		{"before a parking", func(ids []fmt.Stringer) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 1, nil, nil),
				subRecord("SubscriptionPosition", 2, nil, map[string]any{"mark": mark}),
				subRecord("EventDeliveryFailed", 2, ids[1], nil), subRecord("EventParked", 2, ids[1], nil)}
		}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := damagedStore(t, func(s *pmd.Store) {
				var ids []fmt.Stringer
				for i := range 3 {
					ids = append(ids, put(t, s, "S", "E", i).IDs[0])
				}
				for _, rec := range tc.recs(ids) {
					if _, err := s.Append(ctx, pm.SubscriptionStream("billing"), pmd.Any, rec); err != nil {
						t.Fatal(err)
					}
				}
				for range 40 {
					if _, err := s.Append(ctx, "Noise", pmd.Any, pmd.EventData{Type: "N", Data: map[string]any{"pad": pad}}); err != nil {
						t.Fatal(err)
					}
				}
			}, mark)
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

// TestSubscriptionReleasePassesTheDamageBehind: when a stuck event is released (skipped,
// or retried and delivered) and the feeder skipped a damaged record behind it, the
// position passes that record too: no lag stays behind.
func TestSubscriptionReleasePassesTheDamageBehind(t *testing.T) {
	for _, skip := range []bool{true, false} {
		t.Run(fmt.Sprintf("skip %v", skip), func(t *testing.T) {
			ctx := context.Background()
			s := damagedStore(t, func(s *pmd.Store) {
				for i := range 2 {
					put := pmd.EventData{Type: "E", Data: map[string]any{"n": i, "pad": pad, "mark": fmt.Sprintf("MARK-%03d-MARK", i)}}
					if _, err := s.Append(ctx, "S", pmd.Any, put); err != nil {
						t.Fatal(err)
					}
				}
				for range 40 {
					if _, err := s.Append(ctx, "Noise", pmd.Any, pmd.EventData{Type: "N", Data: map[string]any{"pad": pad}}); err != nil {
						t.Fatal(err)
					}
				}
			}, "MARK-001-MARK")
			r := &receiver{}
			r.set("0", errors.New("refused"))
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: r.handle, MaxAttempts: 1})
			sub.idle(t)
			st := sub.status(t)
			if len(st.Parked) != 1 || st.Position != 1 {
				t.Fatalf("status %+v, want E/0 parked at 1", st)
			}
			r.set("0", nil)
			var err error
			if skip {
				err = sub.Skip(ctx, st.Parked[0].Event.ID)
			} else {
				err = sub.Retry(ctx, st.Parked[0].Event.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			sub.idle(t)
			if st := sub.status(t); st.Position != 3 || st.Lag != 0 || len(st.Parked) != 0 {
				t.Fatalf("status %+v, want position 3 past the damaged record at 2, no lag", st)
			}
		})
	}
}

// TestSubscriptionWithADamagedParkedEvent: the record of a parked event is damaged while
// the subscription runs (a bad sector after the fact): its status still answers, listing
// the event as it was read.
func TestSubscriptionWithADamagedParkedEvent(t *testing.T) {
	const n, victim = 40, 5
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 16 << 10, Logger: quiet()}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i := range n {
		_, err := s.Append(context.Background(), "S$1", pmd.Any, pmd.EventData{Type: "A",
			Data: map[string]any{"n": i, "pad": pad, "mark": fmt.Sprintf("MARK-%03d-MARK", i)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	r := &receiver{}
	r.set(fmt.Sprint(victim), errors.New("receiver refuses it"))
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"A"}}, pm.SubscriptionOptions{Deliver: r.handle, MaxAttempts: 1})
	sub.idle(t)
	if p := sub.status(t).Parked; len(p) != 1 {
		t.Fatalf("parked %v, want the one event the receiver refuses", p)
	}
	damagetest.FlipIn(t, dir, fmt.Sprintf("MARK-%03d-MARK", victim))
	if _, err := s.Event(context.Background(), sub.status(t).Parked[0].Event.ID); !errors.Is(err, pmd.ErrCorrupt) {
		t.Fatalf("reading the damaged event: %v, want it damaged", err)
	}
	if p := sub.status(t).Parked; len(p) != 1 || fmt.Sprint(p[0].Event.Data["n"]) != fmt.Sprint(victim) {
		t.Fatalf("parked %+v, want the damaged event as it was read", p)
	}
}
