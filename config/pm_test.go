package config

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

func catering(t *testing.T) Process {
	t.Helper()
	cfg, err := Load(filepath.Join("testdata", "catering.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Processes[0]
}

func customer(order string) pmd.Event {
	return pmtest.Fact("CustomerConfirmedMenu", map[string]any{"order_id": order})
}

func caterer(order string) pmd.Event {
	return pmtest.Fact("CatererConfirmedMenu", map[string]any{"order_id": order})
}

func confirm(order string) pm.Command {
	return pm.Command{Type: "ConfirmOrder", Key: KeyComplete, ProcessID: order, Data: map[string]any{"order_id": order}}
}

func cancel(order string) pm.Command {
	return pm.Command{Type: "CancelOrder", Key: KeyDeadline, ProcessID: order, Data: map[string]any{"order_id": order}}
}

// TestCateringFromConfigEveryOrder: the YAML definition issues exactly one ConfirmOrder
// per complete order, whatever the order of the facts, duplicates and extra facts
// included, and none for an incomplete one.
func TestCateringFromConfigEveryOrder(t *testing.T) {
	def := catering(t).Definition()
	facts := []pmd.Event{customer("42"), caterer("42"), customer("7"), caterer("42")}
	pmtest.EveryOrder(t, def, facts, func(t *testing.T, s *pmtest.Scenario[State]) {
		s.Expect(confirm("42"))
		if st := s.State("42"); !st.Completed || st.Seen["CatererConfirmedMenu"] != 2 || st.Events != 3 {
			t.Fatalf("state of 42: %+v", st)
		}
	})
}

func TestCateringFromConfigDeadline(t *testing.T) {
	def := catering(t).Definition()
	// Not complete within 48h: cancelled once, and a late fact changes nothing.
	s := pmtest.Given(t, def, customer("1")).After(47 * time.Hour)
	s.Expect()
	s.After(time.Hour).Expect(cancel("1"))
	s.When(caterer("1")).After(100 * time.Hour).Expect(cancel("1"))
	if st := s.State("1"); !st.Expired || st.Completed {
		t.Fatalf("state: %+v", st)
	}
	// Complete in time: confirmed, and the deadline never fires.
	s = pmtest.Given(t, def, customer("2")).After(time.Hour).When(caterer("2")).After(100 * time.Hour)
	s.Expect(confirm("2"))
}

func TestConditionsOfConfigProcesses(t *testing.T) {
	tests := []struct {
		when  string
		facts []pmd.Event
		want  []pm.Command
	}{
		{"any", []pmd.Event{customer("1")}, []pm.Command{confirm("1")}},
		{"seen.CustomerConfirmedMenu >= 2", []pmd.Event{customer("1"), caterer("1")}, nil},
		{"seen.CustomerConfirmedMenu >= 2", []pmd.Event{customer("1"), customer("1")}, []pm.Command{confirm("1")}},
		{"(data.guests ?? 0) >= 10", []pmd.Event{
			pmtest.Fact("CustomerConfirmedMenu", map[string]any{"order_id": "1", "guests": 4}),
			pmtest.Fact("CatererConfirmedMenu", map[string]any{"order_id": "1", "guests": 12}),
		}, []pm.Command{confirm("1")}},
		// A failing expression is not complete, and does not stop the process.
		{"data.guests >= 10", []pmd.Event{customer("1")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			p := catering(t)
			p.Deadline = nil
			p.CompleteWhen = parseCondition(t, tt.when, p.Handles)
			pmtest.Given(t, p.Definition(), tt.facts...).Expect(tt.want...)
		})
	}
}

// TestStatesAreSnapshotted: a State survives msgpack, so processes defined in a config
// file get snapshots.
func TestStatesAreSnapshotted(t *testing.T) {
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := catering(t)
	p.SnapshotEvery = 1
	opts := p.Options()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := pm.New(s, p.Definition(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	for _, e := range []pmd.Event{customer("42"), caterer("42")} {
		if _, err := s.Append(ctx, "Facts", pmd.Any, pmd.EventData{Type: e.Type, Data: e.Data}); err != nil {
			t.Fatal(err)
		}
	}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.WaitIdle(wait); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	info, err := s.StreamInfo("CateringMatch.snapshots$42")
	if err != nil || !info.Exists {
		t.Fatalf("no snapshot of CateringMatch$42: %+v, %v", info, err)
	}
}

func shipping(t *testing.T) Process {
	t.Helper()
	cfg, err := Load(filepath.Join("..", "examples", "shipping", "pmd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Processes[0]
}

// TestShippingEveryOrder: the Shipping example issues ReserveCourier once the items are
// picked and ShipOrder once both facts are in, each once, in every order of the facts,
// with data computed from the state and the event handled last.
func TestShippingEveryOrder(t *testing.T) {
	def := shipping(t).Definition()
	paid := pmtest.Fact("PaymentReceived", map[string]any{"order_id": "7", "address": "1 Main St", "amount": 12})
	picked := pmtest.Fact("ItemsPicked", map[string]any{"order_id": "7", "parcels": 2})
	other := pmtest.Fact("ItemsPicked", map[string]any{"order_id": "8"})
	courier := func(id string, parcels int) pm.Command {
		return pm.Command{Type: "ReserveCourier", Key: "ReserveCourier", ProcessID: id, Data: map[string]any{"order_id": id, "parcels": parcels}}
	}
	pmtest.EveryOrder(t, def, []pmd.Event{paid, picked, other, picked}, func(t *testing.T, s *pmtest.Scenario[State]) {
		// ShipOrder is issued while handling the event that completed order 7: the
		// first one after which both types are seen. last_fact is event.type, so it is
		// that event's type, never the type of the event handled first.
		var last string
		seen := map[string]bool{}
		for _, e := range s.Process("7").Events {
			if e.Link && last == "" {
				seen[e.Type] = true
				if len(seen) == 2 {
					last = e.Type
				}
			}
		}
		if last == "" {
			t.Fatal("order 7 never completed")
		}
		s.Expect(
			courier("7", 2),
			pm.Command{Type: "ShipOrder", Key: "ShipOrder", ProcessID: "7", Data: map[string]any{
				"order_id": "7", "address": "1 Main St", "amount": 1200, "last_fact": last}},
			courier("8", 1),
		)
	})
}

// TestEventAndProcessIDInExpressions: in a command's data, event is the event being
// handled, the one whose handling issues the command (its type, id, stream and data),
// not the first handled nor the merged state; process_id is the process id.
func TestEventAndProcessIDInExpressions(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(`
processes:
  - name: Echo
    correlate_by: order_id
    handles: [Opened, Noted]
    complete_when: all
    issue:
      - type: Echoed
        when: state.seen.Noted > 0
        data:
          pid: process_id
          by: event.type
          id: event.id
          stream: event.stream
          note: event.data.note
          merged_note: state.data.note
      - type: Closed
        data: {pid: "'order ' + process_id", note: event.data.note}
`))
	if err != nil {
		t.Fatal(err)
	}
	fact := func(id, typ, stream, note string) pmd.Event {
		e := pmtest.Fact(typ, map[string]any{"order_id": "o-1", "note": note})
		e.ID, e.Stream = uuid.MustParse(id), stream
		return e
	}
	opened := fact("00000000-0000-4000-8000-000000000001", "Opened", "Orders$o-1", "first")
	noted := fact("00000000-0000-4000-8000-000000000002", "Noted", "Notes$o-1", "second")
	later := fact("00000000-0000-4000-8000-000000000003", "Noted", "Notes$o-1", "third")
	s := pmtest.Given(t, cfg.Processes[0].Definition(), opened, noted, later)
	s.Expect(
		pm.Command{Type: "Echoed", Key: "Echoed", ProcessID: "o-1", Data: map[string]any{
			"order_id": "o-1", "pid": "o-1", "by": "Noted", "id": noted.ID.String(), "stream": "Notes$o-1",
			"note": "second", "merged_note": "second"}},
		pm.Command{Type: "Closed", Key: "Closed", ProcessID: "o-1", Data: map[string]any{
			"order_id": "o-1", "pid": "order o-1", "note": "second"}},
	)
}

// TestShippingDeadlineData: the deadline's command carries data evaluated over the
// state, and a field that cannot be evaluated yet is null.
func TestShippingDeadlineData(t *testing.T) {
	def := shipping(t).Definition()
	s := pmtest.Given(t, def, pmtest.Fact("ItemsPicked", map[string]any{"order_id": "9"})).After(72 * time.Hour)
	s.Expect(
		pm.Command{Type: "ReserveCourier", Key: "ReserveCourier", ProcessID: "9", Data: map[string]any{"order_id": "9", "parcels": 1}},
		pm.Command{Type: "EscalateOrder", Key: KeyDeadline, ProcessID: "9", Data: map[string]any{"order_id": "9", "waiting_for": "payment"}},
	)
	s.When(pmtest.Fact("PaymentReceived", map[string]any{"order_id": "9", "amount": 1})).Expect(
		pm.Command{Type: "ReserveCourier", Key: "ReserveCourier", ProcessID: "9", Data: map[string]any{"order_id": "9", "parcels": 1}},
		pm.Command{Type: "EscalateOrder", Key: KeyDeadline, ProcessID: "9", Data: map[string]any{"order_id": "9", "waiting_for": "payment"}},
	)
	// A process paid without an amount ships with a null amount: the expression failed.
	s = pmtest.Given(t, def,
		pmtest.Fact("PaymentReceived", map[string]any{"order_id": "10", "address": "x"}),
		pmtest.Fact("ItemsPicked", map[string]any{"order_id": "10"}))
	for _, c := range s.Commands() {
		if c.Type == "ShipOrder" {
			if v, ok := c.Data["amount"]; !ok || v != nil {
				t.Errorf("ShipOrder amount = %v (present %t), want null", v, ok)
			}
		}
	}
}

// TestLegacyNamesInDataAndWhen: the names complete_when knew before state existed
// (data, seen, id, events) work in a command's data and in an issue list's when too.
func TestLegacyNamesInDataAndWhen(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(`
processes:
  - name: Legacy
    correlate_by: order_id
    handles: [Opened, Noted]
    issue:
      - type: Echoed
        when: seen.Noted > 0 && events >= 2 && id == data.order_id
        data:
          pid: id
          note: data.note
          notes: seen.Noted
          count: events
`))
	if err != nil {
		t.Fatal(err)
	}
	opened := pmtest.Fact("Opened", map[string]any{"order_id": "o-1", "note": "first"})
	noted := pmtest.Fact("Noted", map[string]any{"order_id": "o-1", "note": "second"})
	def := cfg.Processes[0].Definition()
	pmtest.Given(t, def, opened).Expect()
	pmtest.Given(t, def, opened, noted).Expect(pm.Command{Type: "Echoed", Key: "Echoed", ProcessID: "o-1",
		Data: map[string]any{"order_id": "o-1", "pid": "o-1", "note": "second", "notes": 1, "count": 2}})
}

// contractSection11 is the example of the contract's section 11, as written there.
const contractSection11 = `
processes:
  - name: Shipping
    correlate_by: order_id
    handles: [PaymentReceived, ItemsPicked]
    complete_when: all
    issue:
      type: ShipOrder
      data:                                  # each value an expression over state and event
        address: state.data.address
        amount: state.data.amount * 100
    deliver:
      webhook: http://127.0.0.1:9000/commands
      max_attempts: 10                       # then the command is parked
      timeout: 10s
`

// TestContractSection11ExampleLoads: the contract's own example loads, with its deliver
// options, and issues ShipOrder once both facts are in, its data computed from the state.
func TestContractSection11ExampleLoads(t *testing.T) {
	cfg, err := Parse("contract.yaml", []byte(contractSection11))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Processes[0]
	if want := (Deliver{Webhook: "http://127.0.0.1:9000/commands", MaxAttempts: 10, Timeout: 10 * time.Second}); p.Deliver == nil || *p.Deliver != want {
		t.Fatalf("deliver = %+v, want %+v", p.Deliver, want)
	}
	if o := p.Options(); o.MaxAttempts != 10 {
		t.Errorf("options MaxAttempts = %d, want 10", o.MaxAttempts)
	}
	paid := pmtest.Fact("PaymentReceived", map[string]any{"order_id": "7", "address": "1 Main St", "amount": 12})
	picked := pmtest.Fact("ItemsPicked", map[string]any{"order_id": "7"})
	pmtest.EveryOrder(t, p.Definition(), []pmd.Event{paid, picked}, func(t *testing.T, s *pmtest.Scenario[State]) {
		s.Expect(pm.Command{Type: "ShipOrder", Key: KeyComplete, ProcessID: "7",
			Data: map[string]any{"order_id": "7", "address": "1 Main St", "amount": 1200}})
	})
}

// TestExpressionErrorsAreReported: a complete_when, a when or a data value that fails to
// evaluate, and a data value that is not a JSON number (a division by zero, also inside
// a list it builds), are reported with their place; the command still goes out, the
// field null.
func TestExpressionErrorsAreReported(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(`
processes:
  - name: Ship
    correlate_by: order_id
    handles: [Paid]
    complete_when: data.guests >= 10
    issue:
      - type: Weigh
        when: state.data.weight > 1
      - type: ShipOrder
        when: seen.Paid > 0
        data:
          ratio: state.data.amount / state.data.count
          spread: "[1, state.data.amount / state.data.count]"
          nan: 0.0 / state.data.count
          fine: state.data.amount
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []ExpressionError
	def := cfg.Processes[0].DefinitionReporting(func(e ExpressionError) { got = append(got, e) })
	paid := pmtest.Fact("Paid", map[string]any{"order_id": "1", "amount": 5, "count": 0, "guests": "12", "weight": "heavy"})
	pmtest.Given(t, def, paid).Expect(pm.Command{Type: "ShipOrder", Key: "ShipOrder", ProcessID: "1",
		Data: map[string]any{"order_id": "1", "ratio": nil, "spread": nil, "nan": nil, "fine": 5}})
	want := map[string]string{
		"complete_when":        "",
		"issue[0].when":        "",
		"issue[1].data.ratio":  "ratio is +Inf, not a JSON number",
		"issue[1].data.spread": "spread[1] is +Inf, not a JSON number",
		"issue[1].data.nan":    "nan is NaN, not a JSON number",
	}
	reported := map[string]bool{}
	for _, e := range got {
		w, ok := want[e.Where]
		if !ok || e.Manager != "Ship" || e.ProcessID != "1" || e.Err == nil || !strings.Contains(e.Err.Error(), w) || strings.Contains(e.Error(), "\n") {
			t.Errorf("unexpected report %+v", e)
		}
		reported[e.Where] = true
	}
	for where := range want {
		if !reported[where] {
			t.Errorf("%s was not reported; got %v", where, got)
		}
	}
	// Without a reporter the same definition decides the same.
	pmtest.Given(t, cfg.Processes[0].Definition(), paid).Expect(pm.Command{Type: "ShipOrder", Key: "ShipOrder", ProcessID: "1",
		Data: map[string]any{"order_id": "1", "ratio": nil, "spread": nil, "nan": nil, "fine": 5}})
}

// TestExpressionLogIsRateLimited: every error is counted by manager; one expression of
// one manager is logged at most once a minute, the next line saying how many were not.
func TestExpressionLogIsRateLimited(t *testing.T) {
	var buf strings.Builder
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &ExpressionLog{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Now: func() time.Time { return now }}
	e := ExpressionError{Manager: "Ship", Where: "complete_when", Source: "data.guests >= 10", ProcessID: "1", Err: errors.New("bad")}
	for range 3 {
		l.Report(e)
	}
	other := e
	other.Where = "issue.data.x"
	l.Report(other)
	elsewhere := e
	elsewhere.Manager = "Bill"
	l.Report(elsewhere)
	now = now.Add(time.Minute)
	l.Report(e)
	if l.Count("Ship") != 5 || l.Count("Bill") != 1 || l.Count("None") != 0 {
		t.Errorf("counts Ship %d, Bill %d, None %d; want 5, 1, 0", l.Count("Ship"), l.Count("Bill"), l.Count("None"))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		"manager=Ship where=complete_when",
		"manager=Ship where=issue.data.x",
		"manager=Bill where=complete_when",
		"manager=Ship where=complete_when",
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s, want %s", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[3], "suppressed=2") || !strings.Contains(lines[0], `expression="data.guests >= 10" process=1 err=bad`) {
		t.Errorf("lines do not say what failed or how many were not logged:\n%s", buf.String())
	}
}
