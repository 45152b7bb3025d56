package pm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestALateDeadlineCheckDecidesWhenItFellDue: the timer queues a deadline check when the
// clock reaches a process's first deadline, behind the events stored by then; an event
// stored after that is queued behind the check. A worker that gets to the check late,
// with the clock past a second deadline of the process, must not fire that one too: it
// is decided on the events stored before it, and the event behind the check (Paid,
// stored before the second deadline) cancels it. The check decides at the time the
// timer found it due; the second deadline has a check of its own, behind Paid.
func TestALateDeadlineCheckDecidesWhenItFellDue(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	ctx := context.Background()
	var remindAt, cancelAt time.Time // set once the facts' timestamps are known
	type order struct{ Paid bool }
	def := Definition[order]{
		Name: "Order", Handles: []string{"Placed", "Paid"}, ProcessID: DataField("id"),
		Init: func(string) order { return order{} },
		Apply: func(s order, e pmd.Event) order {
			if e.Link && e.Type == "Paid" {
				s.Paid = true
			}
			return s
		},
		Decide: func(s order) []Command {
			out := []Command{{Type: "Remind", At: remindAt}}
			if !s.Paid {
				out = append(out, Command{Type: "Cancel", At: cancelAt})
			}
			return out
		},
	}
	var facts []pmd.Event
	for _, typ := range []string{"Placed", "Paid"} {
		if _, err := s.Append(ctx, "Facts", pmd.Any, pmd.EventData{Type: typ, Data: map[string]any{"id": "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	for e, err := range s.ReadStream(ctx, "Facts", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		facts = append(facts, e)
	}
	placed, paid := facts[0].Timestamp, facts[1].Timestamp
	if !paid.After(placed.Add(time.Nanosecond)) {
		t.Fatalf("the facts were stored at %v and %v: no time between them", placed, paid)
	}
	// Remind falls due between the two facts, Cancel an hour after Paid.
	remindAt, cancelAt = placed.Add(paid.Sub(placed)/2), paid.Add(time.Hour)
	clock := &stillClock{now: cancelAt.Add(time.Hour)} // the worker's clock: past both
	m, err := New(s, def, Options{Logger: quietLogger(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.handle(ctx, []task{{pid: "x", ev: &facts[0]}}); err != nil {
		t.Fatal(err)
	}
	// What the timer queued when the clock read remindAt, before Paid was stored, and
	// the reader after it.
	if err := m.handle(ctx, []task{{pid: "x", at: remindAt}, {pid: "x", ev: &facts[1]}}); err != nil {
		t.Fatal(err)
	}
	var types []string
	for e, err := range s.ReadStream(ctx, "Order$x", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.Type)
	}
	got := strings.Join(types, " ")
	if want := "Placed DeadlineScheduled DeadlineScheduled DeadlineFired Remind Paid DeadlineCancelled"; got != want {
		t.Errorf("the process stream is %s, want %s", got, want)
	}
}
