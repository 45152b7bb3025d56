package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

const timeout = 48 * time.Hour

func customer(order string) pmd.Event {
	return pmtest.Fact("CustomerConfirmedMenu", map[string]any{"order_id": order})
}

func caterer(order string) pmd.Event {
	return pmtest.Fact("CatererConfirmedMenu", map[string]any{"order_id": order})
}

func confirm(order string) pm.Command {
	return pm.Command{Type: "ConfirmOrder", Data: map[string]any{"order_id": order}, ProcessID: order}
}

func cancel(order string) pm.Command {
	return pm.Command{Type: "CancelOrder", Data: map[string]any{"order_id": order}, ProcessID: order}
}

// TestConfirmOrderInEveryOrder is the seed example's test: exactly one ConfirmOrder per
// complete order and none for an incomplete one, whatever order the facts come in.
func TestConfirmOrderInEveryOrder(t *testing.T) {
	redelivered := customer("7")
	redelivered.ID = uuid.MustParse("0195a3f0-0000-7000-8000-000000000007")
	tests := []struct {
		name  string
		facts []pmd.Event
		want  []pm.Command
	}{
		{"both confirm", []pmd.Event{customer("42"), caterer("42")}, []pm.Command{confirm("42")}},
		{"only the customer", []pmd.Event{customer("42")}, nil},
		{"only the caterer, twice", []pmd.Event{caterer("42"), caterer("42")}, nil},
		{"duplicate facts", []pmd.Event{customer("42"), caterer("42"), customer("42"), caterer("42")},
			[]pm.Command{confirm("42")}},
		{"redelivered fact", []pmd.Event{redelivered, redelivered, caterer("7")}, []pm.Command{confirm("7")}},
		{"interleaved orders", []pmd.Event{customer("1"), caterer("2"), caterer("1"), customer("3"), customer("2"), caterer("4")},
			[]pm.Command{confirm("1"), confirm("2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pmtest.EveryOrder(t, CateringMatch(timeout), tt.facts, func(t *testing.T, s *pmtest.Scenario[Order]) {
				s.Expect(tt.want...)
			})
		})
	}
}

func TestMoreFactsAfterCompletion(t *testing.T) {
	pmtest.Given(t, CateringMatch(timeout), customer("42"), caterer("42")).
		Expect(confirm("42")).
		When(caterer("42"), customer("42")).
		After(2 * timeout).
		Expect(confirm("42"))
}

func TestCancelOrderWhenIncompleteAfterTimeout(t *testing.T) {
	tests := []struct {
		name  string
		steps func(s *pmtest.Scenario[Order])
		want  []pm.Command
	}{
		{"not yet", func(s *pmtest.Scenario[Order]) { s.When(customer("1")).After(timeout - time.Nanosecond) }, nil},
		{"expired", func(s *pmtest.Scenario[Order]) { s.When(customer("1")).After(timeout) }, []pm.Command{cancel("1")}},
		{"completed in time", func(s *pmtest.Scenario[Order]) {
			s.When(customer("1")).After(timeout - time.Nanosecond).When(caterer("1")).After(timeout)
		}, []pm.Command{confirm("1")}},
		{"completed too late", func(s *pmtest.Scenario[Order]) {
			s.When(caterer("1")).After(timeout).When(customer("1")).After(timeout)
		}, []pm.Command{cancel("1")}},
		{"the first confirmation starts the clock", func(s *pmtest.Scenario[Order]) {
			s.When(customer("1")).After(timeout/2).When(customer("1"), caterer("2")).After(timeout / 2)
		}, []pm.Command{cancel("1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := pmtest.Given(t, CateringMatch(timeout))
			tt.steps(s)
			s.Expect(tt.want...)
		})
	}
}

// TestRun runs the example program end to end on a store in a temporary directory.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	// Orders 42 and 44 complete only if their confirmations' timestamps lie within the
	// timeout of each other, and each is an fsynced append: on a loaded machine three
	// appends took more than 50 ms, so the timeout is the program's default, 2 s, which
	// the run then waits for once (the CancelOrder of 43).
	if err := run(ctx, &out, t.TempDir(), 2*time.Second); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkLineCounts(t, out.String(), map[string]int{
		"deliver ConfirmOrder for order 42":                      1,
		"deliver ConfirmOrder for order 44":                      1,
		"deliver CancelOrder for order 43":                       1,
		"deliver ConfirmOrder for order 43":                      0,
		"process 42: completed, 2 events handled, 1 commands":    1,
		"process 43: expired, 1 events handled, 1 commands":      1,
		"process 44: completed, 3 events handled, 1 commands":    1,
		"append Customer$cat CustomerConfirmedMenu for order 44": 2,
	})
}

// TestRunAgain runs the example twice on the same -data directory, as its usage line
// allows: the second run must end too, though order 43's CancelOrder was delivered by
// the first and is not issued again.
func TestRunAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	var first strings.Builder
	if err := run(ctx, &first, dir, 2*time.Second); err != nil {
		t.Fatalf("first run: %v\n%s", err, first.String())
	}
	var again strings.Builder
	if err := run(ctx, &again, dir, 2*time.Second); err != nil {
		t.Fatalf("second run: %v\n%s", err, again.String())
	}
	// Every command was delivered by the first run.
	checkLineCounts(t, again.String(), map[string]int{
		"deliver ": 0,
		"process 42: completed, 4 events handled, 1 commands": 1,
		"process 43: expired, 2 events handled, 1 commands":   1,
		"process 44: completed, 6 events handled, 1 commands": 1,
	})
}

// checkLineCounts checks that each line of want appears in the output got as many
// times as want says.
func checkLineCounts(t *testing.T, got string, want map[string]int) {
	t.Helper()
	for line, n := range want {
		if c := strings.Count(got, line); c != n {
			t.Errorf("%q appears %d times, want %d; output:\n%s", line, c, n, got)
		}
	}
}
