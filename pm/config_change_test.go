package pm_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// logged collects what a logger writes, for tests that look for one warning.
type logged struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logged) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logged) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logged) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// TestSubscriptionFilterChangedStartsOver: a subscription whose filter changed between
// two runs (same name) starts from the beginning of its new filter, with a warning
// naming both filters, so that no event of the new filter below the old position is
// lost; the records it writes then carry the new filter, so the next run resumes. The
// same filter (types in another order) resumes, and so does a types filter that only
// lost types: every event of it below the position was delivered.
func TestSubscriptionFilterChangedStartsOver(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new pm.Filter
		want     string // delivered by the run with the new filter
	}{
		{"types to stream", pm.Filter{Types: []string{"A"}}, pm.Filter{Stream: "Order"}, "OrderPlaced/3 OrderPlaced/6 OrderPlaced/9"},
		{"stream to stream", pm.Filter{Stream: "Other$13"}, pm.Filter{Stream: "Order"}, "OrderPlaced/3 OrderPlaced/6 OrderPlaced/9"},
		{"category to category", pm.Filter{Category: "Other"}, pm.Filter{Category: "Order"}, "OrderPlaced/3 OrderPlaced/6 OrderPlaced/9"},
		{"a type added", pm.Filter{Types: []string{"A"}}, pm.Filter{Types: []string{"A", "OrderPlaced"}},
			"A/1 A/2 OrderPlaced/3 A/4 A/5 OrderPlaced/6 A/7 A/8 OrderPlaced/9 A/10 A/11 A/12 A/13"},
		{"types reordered", pm.Filter{Types: []string{"OrderPlaced", "A"}}, pm.Filter{Types: []string{"A", "OrderPlaced", "A"}}, ""},
		{"a type removed", pm.Filter{Types: []string{"A", "OrderPlaced"}}, pm.Filter{Types: []string{"OrderPlaced"}}, ""},
		{"the same stream", pm.Filter{Stream: "Order"}, pm.Filter{Stream: "Order"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			// OrderPlaced/3, /6 and /9 in stream Order, A/1 to A/13 but those in
			// streams Other$n: the old filters' positions end past all of them.
			for i := 1; i <= 13; i++ {
				if i%3 == 0 && i < 10 {
					put(t, s, "Order", "OrderPlaced", i)
				} else {
					put(t, s, fmt.Sprintf("Other$%d", i), "A", i)
				}
			}
			first := startSub(t, s, "sub", tc.old, pm.SubscriptionOptions{Deliver: (&receiver{}).handle})
			first.idle(t)
			first.stop(t)

			var log logged
			r := &receiver{}
			second := startSub(t, s, "sub", tc.new, pm.SubscriptionOptions{Deliver: r.handle, Logger: log.logger()})
			second.idle(t)
			if got := r.got(); got != tc.want {
				t.Fatalf("with the new filter delivered %q, want %q", got, tc.want)
			}
			if st := second.status(t); st.Lag != 0 {
				t.Fatalf("status %+v, want caught up", st)
			}
			second.stop(t)
			warned := strings.Contains(log.String(), "filter changed")
			if warned != (tc.want != "") {
				t.Fatalf("warned %v, want %v; log:\n%s", warned, tc.want != "", log.String())
			}
			if warned && (!strings.Contains(log.String(), fmt.Sprintf("old=%q", filterString(tc.old))) ||
				!strings.Contains(log.String(), fmt.Sprintf("new=%q", filterString(tc.new)))) {
				t.Fatalf("the warning does not name the filters %s and %s:\n%s", filterString(tc.old), filterString(tc.new), log.String())
			}

			put(t, s, "Order", "OrderPlaced", 14)
			r3 := &receiver{}
			third := startSub(t, s, "sub", tc.new, pm.SubscriptionOptions{Deliver: r3.handle})
			third.idle(t)
			if got := r3.got(); got != "OrderPlaced/14" {
				t.Fatalf("a third run with the same filter delivered %q, want only the new OrderPlaced/14", got)
			}
		})
	}
}

// filterString is how the warning names a filter.
func filterString(f pm.Filter) string {
	switch {
	case f.Stream != "":
		return fmt.Sprintf("stream %q", f.Stream)
	case f.Category != "":
		return fmt.Sprintf("category %q", f.Category)
	}
	types := slices.Compact(slices.Sorted(slices.Values(f.Types)))
	return fmt.Sprintf("types %q", types)
}

// TestSubscriptionFilterChangedDropsTheOldParking: an event parked under the old filter
// is attempted again under the new one, which starts over: its failures and parking
// belonged to the old filter.
func TestSubscriptionFilterChangedDropsTheOldParking(t *testing.T) {
	s := openStore(t, t.TempDir())
	put(t, s, "S", "A", 1)
	put(t, s, "S", "B", 2)
	r := &receiver{}
	r.set("1", fmt.Errorf("receiver down"))
	first := startSub(t, s, "sub", pm.Filter{Types: []string{"A"}}, pm.SubscriptionOptions{Deliver: r.handle, MaxAttempts: 1})
	first.idle(t)
	if st := first.status(t); len(st.Parked) != 1 {
		t.Fatalf("status %+v, want A/1 parked", st)
	}
	first.stop(t)

	r2 := &receiver{}
	second := startSub(t, s, "sub", pm.Filter{Types: []string{"A", "B"}}, pm.SubscriptionOptions{Deliver: r2.handle, MaxAttempts: 1})
	second.idle(t)
	if st := second.status(t); len(st.Parked) != 0 || st.Position != 3 {
		t.Fatalf("status %+v, want nothing parked, position 3", st)
	}
	if got := r2.got(); got != "A/1 B/2" {
		t.Fatalf("delivered %q, want A/1 B/2", got)
	}
}

// TestSubscriptionRecordsWithoutFilterKeepTheirPosition: the records an earlier version
// wrote (without the filter) are taken as of the filter configured now, so an upgrade
// delivers nothing again; a parked event stays parked.
func TestSubscriptionRecordsWithoutFilterKeepTheirPosition(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	for i := 1; i <= 4; i++ {
		put(t, s, "S", "E", i)
	}
	parked := put(t, s, "S", "E", 5).IDs[0]
	put(t, s, "S", "E", 6)
	if _, err := s.Append(ctx, pm.SubscriptionStream("sub"), pmd.Any,
		subRecord("SubscriptionPosition", 3, nil, nil),
		subRecord("EventDeliveryFailed", 5, parked, nil),
		subRecord("EventParked", 5, parked, nil)); err != nil {
		t.Fatal(err)
	}
	var log logged
	r := &receiver{}
	sub := startSub(t, s, "sub", pm.Filter{Category: "S"}, pm.SubscriptionOptions{Deliver: r.handle, Logger: log.logger()})
	sub.idle(t)
	if st := sub.status(t); st.Position != 5 || len(st.Parked) != 1 || st.Parked[0].Event.ID != parked {
		t.Fatalf("status %+v, want E/5 parked at 5", st)
	}
	if got := r.got(); got != "" {
		t.Fatalf("delivered %q, want nothing", got)
	}
	if strings.Contains(log.String(), "filter changed") {
		t.Fatalf("warned of a filter change:\n%s", log.String())
	}
}

// shipDef is a manager of the handled types: it ships an order once it has seen one
// event of each. reads counts the events it was handed (ProcessID's calls).
func shipDef(handles []string, reads *atomic.Int64) pm.Definition[map[string]bool] {
	return pm.Definition[map[string]bool]{
		Name:    "Ship",
		Handles: handles,
		ProcessID: func(e pmd.Event) (string, bool) {
			reads.Add(1)
			return pm.DataField("order_id")(e)
		},
		Init: func(string) map[string]bool { return map[string]bool{} },
		Apply: func(s map[string]bool, e pmd.Event) map[string]bool {
			if e.Link {
				s = maps.Clone(s)
				s[e.Type] = true
			}
			return s
		},
		Decide: func(s map[string]bool) []pm.Command {
			for _, typ := range handles {
				if !s[typ] {
					return nil
				}
			}
			return []pm.Command{{Type: "Ship"}}
		},
	}
}

func order(typ, id string) pmd.Event {
	return pmd.Event{Type: typ, Data: map[string]any{"order_id": id}}
}

// TestManagerHandlesGrewReadsAgain: a manager restarted with a type added to its
// handled types reads the log again from the start, so that the events of that type
// stored below its checkpoint are handled too; with the same types (in another order)
// or fewer, it resumes from its checkpoint. A checkpoint an earlier version wrote
// (without the types) is taken as of the types configured now.
func TestManagerHandlesGrewReadsAgain(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		old, new []string
		legacy   bool // the checkpoint is rewritten as an earlier version wrote it
		again    bool // reads the log again from the start
	}{
		{"a type added", []string{"Paid", "Packed"}, []string{"Paid", "Packed", "Picked"}, false, true},
		{"reordered", []string{"Paid", "Packed", "Picked"}, []string{"Picked", "Paid", "Packed"}, false, false},
		{"a type removed", []string{"Paid", "Packed", "Picked"}, []string{"Paid", "Packed"}, false, false},
		{"an old checkpoint", []string{"Paid", "Packed"}, []string{"Paid", "Packed", "Picked"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			var reads atomic.Int64
			r := start(t, s, shipDef(tc.old, &reads), pm.Options{})
			for _, typ := range []string{"Paid", "Packed", "Picked"} {
				appendFact(t, s, order(typ, "0"))
			}
			appendFact(t, s, order("Picked", "1"))
			appendFact(t, s, order("Paid", "1"))
			r.idle(t)
			r.stop(t)
			if tc.legacy {
				last := s.LastPosition() + 1
				if _, err := s.Append(ctx, "Ship.checkpoint", pmd.Any, pmd.EventData{Type: "Checkpoint", Data: map[string]any{"position": last}}); err != nil {
					t.Fatal(err)
				}
			}

			var log logged
			reads.Store(0)
			r = start(t, s, shipDef(tc.new, &reads), pm.Options{Logger: log.logger()})
			appendFact(t, s, order("Packed", "1"))
			r.idle(t)
			p, err := r.Process(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			readAgain := reads.Load() > 1
			if readAgain != tc.again {
				t.Fatalf("handed %d events, want the log read again %v", reads.Load(), tc.again)
			}
			if strings.Contains(log.String(), "handled types grew") != tc.again {
				t.Fatalf("logged the read again %v, want %v:\n%s", !tc.again, tc.again, log.String())
			}
			// Order 1 has Picked (below the checkpoint), Paid and Packed: shipped,
			// unless the manager did not read Picked again.
			shipped := len(p.Commands) == 1
			if wantShipped := tc.again || !slices.Contains(tc.new, "Picked") || slices.Contains(tc.old, "Picked"); shipped != wantShipped {
				t.Fatalf("process 1: commands %+v, want shipped %v", p.Commands, wantShipped)
			}
			r.stop(t)

			// The checkpoint now carries the new types: a restart resumes.
			reads.Store(0)
			r = start(t, s, shipDef(tc.new, &reads), pm.Options{})
			r.idle(t)
			if n := reads.Load(); n != 0 {
				t.Fatalf("a restart with the same types handed %d events, want none", n)
			}
		})
	}
}

// TestManagerHandlesGrewLinksOlderEventsLast pins what docs/config.md says of a type
// added to handles: the read again from the start links the added type's older events
// after what each process holds, so a process stream is not in log order then, and it
// differs from the stream a store that started with the new types would have.
func TestManagerHandlesGrewLinksOlderEventsLast(t *testing.T) {
	ctx := context.Background()
	links := func(t *testing.T, r *running) []string {
		t.Helper()
		p, err := r.Process(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, e := range p.Events {
			if e.Link {
				types = append(types, e.Type)
			}
		}
		return types
	}
	facts := func(t *testing.T, s *pmd.Store) {
		appendFact(t, s, order("Picked", "1"))
		appendFact(t, s, order("Paid", "1"))
	}
	var reads atomic.Int64

	grown := openStore(t, t.TempDir())
	r := start(t, grown, shipDef([]string{"Paid"}, &reads), pm.Options{})
	facts(t, grown)
	r.idle(t)
	r.stop(t)
	r = start(t, grown, shipDef([]string{"Paid", "Picked"}, &reads), pm.Options{})
	r.idle(t)
	if got, want := links(t, r), []string{"Paid", "Picked"}; !slices.Equal(got, want) {
		t.Fatalf("after handles grew, Ship$1 links %q, want %q (the older Picked last)", got, want)
	}

	fresh := openStore(t, t.TempDir())
	facts(t, fresh)
	r = start(t, fresh, shipDef([]string{"Paid", "Picked"}, &reads), pm.Options{})
	r.idle(t)
	if got, want := links(t, r), []string{"Picked", "Paid"}; !slices.Equal(got, want) {
		t.Fatalf("on a fresh store, Ship$1 links %q, want %q (log order)", got, want)
	}
}

// TestSubscriptionFailuresCountAcrossANarrowedFilter: the failures of the event at the
// position recorded under a types filter that then lost types still count after the
// restart that follows, with the records written under the narrower filter: the event is
// parked after MaxAttempts attempts in all, and one parked stays parked. Failures
// recorded under a filter the newer one does not narrow (a type added: it started over)
// are of another run and do not count.
func TestSubscriptionFailuresCountAcrossANarrowedFilter(t *testing.T) {
	ctx := context.Background()
	wide := map[string]any{"types": []string{"E", "F"}}
	narrow := map[string]any{"types": []string{"E"}}
	type rec struct {
		typ     string // SubscriptionPosition, or a record about E/2
		filter  map[string]any
		attempt int
	}
	pos := func(f map[string]any) rec { return rec{"SubscriptionPosition", f, 0} }
	failed := func(f map[string]any, attempt int) rec { return rec{"EventDeliveryFailed", f, attempt} }
	for _, tc := range []struct {
		name      string
		recs      []rec // the subscription's stream, oldest first
		now       []string
		max       int    // MaxAttempts
		delivered string // after the restart
		attempts  int    // when parked
		err       string // of the parked event
	}{
		{"one filter", []rec{pos(narrow), failed(narrow, 1), failed(narrow, 2), failed(narrow, 3)}, []string{"E"}, 4, "E/2", 4, "still down"},
		{"narrowed after the position", []rec{pos(wide), failed(narrow, 1), failed(narrow, 2), failed(narrow, 3)}, []string{"E"}, 4, "E/2", 4, "still down"},
		{"narrowed between failures", []rec{pos(wide), failed(wide, 1), failed(wide, 2), failed(narrow, 3)}, []string{"E"}, 4, "E/2", 4, "still down"},
		{"narrowed at the restart", []rec{pos(wide), failed(wide, 1), failed(wide, 2), failed(wide, 3)}, []string{"E"}, 4, "E/2", 4, "still down"},
		{"parked, then narrowed", []rec{pos(wide), failed(wide, 1), {"EventParked", wide, 1}, pos(narrow)}, []string{"E"}, 1, "", 1, "down 2"},
		{"widened between failures", []rec{pos(narrow), failed(narrow, 1), failed(narrow, 2), failed(wide, 1)}, []string{"E", "F"}, 2, "E/2", 2, "still down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			put(t, s, "S", "E", 1)
			bad := put(t, s, "S", "E", 2).IDs[0]
			var recs []pmd.EventData
			for i, r := range tc.recs {
				if r.typ == "SubscriptionPosition" {
					recs = append(recs, subRecord(r.typ, 2, nil, map[string]any{"filter": r.filter}))
					continue
				}
				recs = append(recs, subRecord(r.typ, 2, bad, map[string]any{
					"filter": r.filter, "attempt": r.attempt, "error": fmt.Sprintf("down %d", i)}))
			}
			if _, err := s.Append(ctx, pm.SubscriptionStream("billing"), pmd.Any, recs...); err != nil {
				t.Fatal(err)
			}
			r := &receiver{}
			r.set("2", fmt.Errorf("still down"))
			sub := startSub(t, s, "billing", pm.Filter{Types: tc.now}, pm.SubscriptionOptions{
				Deliver: r.handle, MaxAttempts: tc.max, RetryMin: time.Hour, RetryMax: time.Hour})
			sub.idle(t)
			st := sub.status(t)
			if len(st.Parked) != 1 || st.Parked[0].Event.ID != bad || st.Parked[0].Attempts != tc.attempts || st.Parked[0].Err != tc.err {
				t.Fatalf("status %+v, want E/2 parked after %d attempts with %q", st, tc.attempts, tc.err)
			}
			if got := r.got(); got != tc.delivered {
				t.Fatalf("delivered %q, want %q", got, tc.delivered)
			}
		})
	}
}

// TestSubscriptionNarrowedPastTheEventAtItsPosition: when a types filter lost the type
// of the event at the position, failing or parked there under the wider filter, that
// event is never delivered again, and its failures are not the subscription's any
// more: the status shows neither it nor its last error, and the events of the types
// kept after it are delivered.
func TestSubscriptionNarrowedPastTheEventAtItsPosition(t *testing.T) {
	ctx := context.Background()
	wide := map[string]any{"types": []string{"E", "F"}}
	for _, tc := range []struct {
		name    string
		records []string // about F/2, after the position
	}{
		{"failing", []string{"EventDeliveryFailed"}},
		{"parked", []string{"EventDeliveryFailed", "EventParked"}},
		{"retried", []string{"EventDeliveryFailed", "EventParked", "EventRetried", "EventDeliveryFailed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			put(t, s, "S", "E", 1)
			res := put(t, s, "S", "F", 2)
			at, dropped := res.FirstPosition, res.IDs[0]
			put(t, s, "S", "E", 3)
			recs := []pmd.EventData{subRecord("SubscriptionPosition", at, nil, map[string]any{"filter": wide})}
			for i, typ := range tc.records {
				recs = append(recs, subRecord(typ, at, dropped, map[string]any{
					"filter": wide, "event_type": "F", "attempt": i + 1, "error": "F is down"}))
			}
			if _, err := s.Append(ctx, pm.SubscriptionStream("billing"), pmd.Any, recs...); err != nil {
				t.Fatal(err)
			}
			r := &receiver{}
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{
				Deliver: r.handle, RetryMin: time.Hour, RetryMax: time.Hour})
			sub.idle(t)
			if got := r.got(); got != "E/3" {
				t.Fatalf("delivered %q, want E/3", got)
			}
			st := sub.status(t)
			if len(st.Parked) != 0 || st.Failing != nil || st.LastErr != "" || !st.LastErrAt.IsZero() {
				t.Fatalf("status %+v, want nothing parked or failing and no last error: F/2 is not the subscription's", st)
			}
		})
	}
}
