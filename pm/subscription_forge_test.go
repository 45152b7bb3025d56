package pm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestSubscriptionPassesOverForgedRecords: what a writer appends to a subscription's
// stream in the form of the subscription's own records (a position far ahead, a skip
// or a parking of the next event) is not the subscription's: its records have ids made
// from the store id, the stream and the version they land at, which no writer can make.
// After a restart every matching event past the real position is delivered, and the
// forgery is logged as not the subscription's own.
func TestSubscriptionPassesOverForgedRecords(t *testing.T) {
	types := map[string]any{"types": []string{"E"}}
	for _, tc := range []struct {
		name    string
		forge   func(e3 pmd.WriteResult) []pmd.EventData
		deleted bool   // the stream is deleted before the forgery
		want    string // delivered after the restart
	}{
		{name: "a position far ahead", forge: func(pmd.WriteResult) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 1_000_000, nil, map[string]any{"filter": types})}
		}, want: "E/3"},
		{name: "a skip of the next event", forge: func(e3 pmd.WriteResult) []pmd.EventData {
			return []pmd.EventData{subRecord("EventSkipped", e3.FirstPosition+1, e3.IDs[0], map[string]any{"filter": types})}
		}, want: "E/3"},
		{name: "a parking of the next event", forge: func(e3 pmd.WriteResult) []pmd.EventData {
			return []pmd.EventData{subRecord("EventDeliveryFailed", e3.FirstPosition, e3.IDs[0], map[string]any{"filter": types}),
				subRecord("EventParked", e3.FirstPosition, e3.IDs[0], map[string]any{"filter": types})}
		}, want: "E/3"},
		{name: "a position past the log after a deletion", deleted: true, forge: func(pmd.WriteResult) []pmd.EventData {
			return []pmd.EventData{subRecord("SubscriptionPosition", 1_000_000, nil, map[string]any{"filter": types})}
		}, want: "E/0 E/1 E/2 E/3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			for i := range 3 {
				put(t, s, "S", "E", i)
			}
			first := &receiver{}
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: first.handle})
			sub.idle(t)
			sub.stop(t)
			if got := first.got(); got != "E/0 E/1 E/2" {
				t.Fatalf("first run delivered %q", got)
			}
			e3 := put(t, s, "S", "E", 3)
			if tc.deleted {
				if err := s.DeleteStream(ctx, pm.SubscriptionStream("billing"), pmd.Any); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Append(ctx, pm.SubscriptionStream("billing"), pmd.Any, tc.forge(e3)...); err != nil {
				t.Fatal(err)
			}
			var log logged
			r := &receiver{}
			sub = startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: r.handle, Logger: log.logger()})
			sub.idle(t)
			if got := r.got(); got != tc.want {
				t.Fatalf("after the forgery delivered %q, want %q", got, tc.want)
			}
			if st := sub.status(t); st.Position != e3.FirstPosition+1 || st.Lag != 0 || len(st.Parked) != 0 {
				t.Fatalf("status %+v, want position %d, nothing parked", st, e3.FirstPosition+1)
			}
			if !strings.Contains(log.String(), "not its own") {
				t.Fatalf("the forgery was not logged:\n%s", log.String())
			}
		})
	}
}

// TestSubscriptionWritesAfterAWriterAppendedToItsStream: a record someone else appends
// to the subscription's stream while it runs moves the version its next record lands
// at; the subscription writes after it, and its position holds over a restart.
func TestSubscriptionWritesAfterAWriterAppendedToItsStream(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	put(t, s, "S", "E", 0)
	r := &receiver{}
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: r.handle})
	sub.idle(t)
	if _, err := s.Append(ctx, pm.SubscriptionStream("billing"), pmd.Any, pmd.EventData{Type: "Note"}); err != nil {
		t.Fatal(err)
	}
	last := put(t, s, "S", "E", 1)
	sub.idle(t)
	sub.stop(t) // Run writes the position, after the note
	r2 := &receiver{}
	sub = startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{Deliver: r2.handle})
	sub.idle(t)
	if got := r.got() + "|" + r2.got(); got != "E/0 E/1|" {
		t.Fatalf("delivered %q, want E/0 E/1 and nothing after the restart", got)
	}
	if st := sub.status(t); st.Position != last.FirstPosition+1 {
		t.Fatalf("status %+v, want position %d", st, last.FirstPosition+1)
	}
}
