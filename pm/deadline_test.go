package pm_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// streamTypes lists the event types of a process stream as the store has it.
func streamTypes(t testing.TB, s *pmd.Store, stream string) string {
	t.Helper()
	var types []string
	for _, e := range processStream(t, s, stream) {
		types = append(types, e.Type)
	}
	return strings.Join(types, " ")
}

// TestDeadlineWaitsForFactsStoredBeforeIt restarts a manager long after a deadline fell
// due, with facts stored before it still to handle: the fact that completes the order
// behind a backlog of other orders, all stored well before the deadline. The deadline is
// decided on every one of them, so the order is confirmed, not cancelled; and so are the
// orders of the backlog, complete long before their deadlines though handled after them.
func TestDeadlineWaitsForFactsStoredBeforeIt(t *testing.T) {
	const rounds, backlog = 3, 150
	def := matchDef("CateringMatch")
	for round := range rounds {
		s := openStore(t, t.TempDir())
		clock := pmtest.NewClock(time.Now())
		opts := pm.Options{Clock: clock, Workers: 1}
		r := start(t, s, def, opts)
		appendFact(t, s, customer("x"))
		r.idle(t)
		r.stop(t)

		// Stored at once, long before the deadline of x; handled 49h later.
		var facts []pmd.EventData
		for i := range backlog {
			for _, f := range []pmd.Event{customer(fmt.Sprint("b", i)), caterer(fmt.Sprint("b", i))} {
				facts = append(facts, pmd.EventData{Type: f.Type, Data: f.Data})
			}
		}
		facts = append(facts, pmd.EventData{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "x"}})
		if _, err := s.Append(context.Background(), "Facts", pmd.Any, facts...); err != nil {
			t.Fatal(err)
		}
		clock.Advance(timeout + time.Hour)
		r = start(t, s, def, opts)
		r.idle(t)
		r.stop(t)

		if got, want := streamTypes(t, s, "CateringMatch$x"),
			"CustomerConfirmedMenu DeadlineScheduled CatererConfirmedMenu ConfirmOrder DeadlineCancelled"; got != want {
			t.Fatalf("round %d: x's stream is %s, want %s", round, got, want)
		}
		for i := range backlog {
			stream := fmt.Sprint("CateringMatch$b", i)
			if _, cmds := tally(t, processStream(t, s, stream)); fmt.Sprint(cmds) != "map[ConfirmOrder:1]" {
				t.Fatalf("round %d: %s issued %v, want one ConfirmOrder: %s", round, stream, cmds, streamTypes(t, s, stream))
			}
		}
	}
}

// TestDeadlineDueWhileStoppedFiresBeforeLaterFacts stops a manager with a deadline
// pending, and stores the fact that would complete the order after the deadline: the
// deadline fires before that fact is linked, on the facts stored before it, whether or
// not the manager's clock has reached the deadline when it starts again. The store's
// timestamps order the fact and the deadline, and they say the deadline came first.
func TestDeadlineDueWhileStoppedFiresBeforeLaterFacts(t *testing.T) {
	const rounds = 20 // the clock past the deadline made a race of it: lose it 20 times running
	for _, tt := range []struct {
		name    string
		advance time.Duration // of the clock, while the manager is stopped
	}{
		{"clock past the deadline", time.Hour},
		{"clock not there yet", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			// The deadline is due a nanosecond after the first confirmation is stored:
			// before any fact stored after it.
			def := matchDefWithin("CateringMatch", time.Nanosecond)
			for round := range rounds {
				id := fmt.Sprint(round)
				clock := pmtest.NewClock(time.Now()) // behind every timestamp the store gives from now on
				opts := pm.Options{Clock: clock, Workers: 1}
				r := start(t, s, def, opts)
				appendFact(t, s, customer(id))
				r.idle(t)
				r.stop(t)
				appendFact(t, s, caterer(id))
				clock.Advance(tt.advance)
				r = start(t, s, def, opts)
				r.idle(t)
				r.stop(t)

				var stored []time.Time // of the two facts
				for _, e := range processStream(t, s, "CateringMatch$"+id) {
					if e.Link {
						stored = append(stored, e.Timestamp)
					}
				}
				if len(stored) != 2 || !stored[1].After(stored[0]) {
					t.Fatalf("round %d: the facts were stored at %v, want two, the second later", round, stored)
				}
				if got, want := streamTypes(t, s, "CateringMatch$"+id),
					"CustomerConfirmedMenu DeadlineScheduled DeadlineFired CancelOrder CatererConfirmedMenu"; got != want {
					t.Fatalf("round %d: stream %s, want %s", round, got, want)
				}
			}
		})
	}
}

// TestDeadlineFiresOnceWhileDecideStillAsks runs a reminder whose Decide asks for its
// deadline command for ever: the runtime, not the definition, makes it fire once, however
// many events come after it and across a restart.
func TestDeadlineFiresOnceWhileDecideStillAsks(t *testing.T) {
	type reminder struct{ First time.Time }
	def := pm.Definition[reminder]{
		Name:      "Reminder",
		Handles:   []string{"Ping"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) reminder { return reminder{} },
		Apply: func(s reminder, e pmd.Event) reminder {
			if e.Link && s.First.IsZero() {
				s.First = e.Timestamp
			}
			return s
		},
		Decide: func(s reminder) []pm.Command {
			return []pm.Command{{Type: "Remind", At: s.First.Add(time.Hour)}}
		},
	}
	ping := pmd.Event{Type: "Ping", Data: map[string]any{"id": "7"}}
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	opts := pm.Options{Clock: clock}
	r := start(t, s, def, opts)
	appendFact(t, s, ping)
	r.idle(t)
	clock.Advance(2 * time.Hour)
	r.idle(t)
	for range 3 { // the deadline is in the past now, and Decide still returns it
		appendFact(t, s, ping)
		r.idle(t)
	}
	r.stop(t)
	clock.Advance(time.Hour)
	r = start(t, s, def, opts)
	r.idle(t)
	r.stop(t)

	events := processStream(t, s, "Reminder$7")
	links, cmds := tally(t, events)
	fired := 0
	for _, e := range events {
		if e.Type == pm.DeadlineFired {
			fired++
		}
	}
	if links != 4 || fmt.Sprint(cmds) != "map[Remind:1]" || fired != 1 {
		t.Fatalf("%d links, commands %v, %d DeadlineFired; want 4 links, one Remind, one DeadlineFired: %s",
			links, cmds, fired, streamTypes(t, s, "Reminder$7"))
	}
}

// TestDeadlineFiresAfterAWallClockStep runs a manager on the system clock, its wall
// clock stepped 49 hours forward (NTP, a resume from suspend) while a 48-hour deadline
// is pending: the deadline fires at once, not 48 hours of running time later.
func TestDeadlineFiresAfterAWallClockStep(t *testing.T) {
	var off atomic.Int64
	wall := func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
	s := openStore(t, t.TempDir())
	r := start(t, s, matchDef("CateringMatch"), pm.Options{Clock: pm.SteppedSystemClock(wall, 10*time.Millisecond)})
	appendFact(t, s, customer("x"))
	r.idle(t)
	if got, want := streamTypes(t, s, "CateringMatch$x"), "CustomerConfirmedMenu DeadlineScheduled"; got != want {
		t.Fatalf("before the step: stream %s, want %s", got, want)
	}
	off.Store(int64(timeout + time.Hour))
	r.idle(t)
	if got, want := streamTypes(t, s, "CateringMatch$x"), "CustomerConfirmedMenu DeadlineScheduled DeadlineFired CancelOrder"; got != want {
		t.Fatalf("after the step: stream %s, want %s", got, want)
	}
}
