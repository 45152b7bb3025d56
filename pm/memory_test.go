package pm_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

func TestCateringEveryOrder(t *testing.T) {
	def := matchDef("CateringMatch")
	tests := []struct {
		name  string
		facts []pmd.Event
		want  []pm.Command
	}{
		{"complete", []pmd.Event{customer("1"), caterer("1")}, []pm.Command{confirm("1")}},
		{"incomplete", []pmd.Event{customer("1"), customer("1")}, nil},
		{"duplicates", []pmd.Event{customer("1"), caterer("1"), customer("1"), caterer("1")}, []pm.Command{confirm("1")}},
		{"interleaved", []pmd.Event{customer("1"), caterer("2"), caterer("1"), customer("3"), customer("2")},
			[]pm.Command{confirm("1"), confirm("2")}},
		{"other events", []pmd.Event{customer("1"), {Type: "MenuChanged", Data: map[string]any{"order_id": "1"}},
			caterer("1"), {Type: "CatererConfirmedMenu", Data: map[string]any{"no_order": "1"}}},
			[]pm.Command{confirm("1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pmtest.EveryOrder(t, def, tt.facts, func(t *testing.T, s *pmtest.Scenario[match]) {
				s.Expect(tt.want...)
			})
		})
	}
}

func TestMoreFactsAfterCompletionIssueNothing(t *testing.T) {
	s := pmtest.Given(t, matchDef("CateringMatch"), customer("1"), caterer("1")).Expect(confirm("1"))
	s.When(customer("1"), caterer("1"), caterer("1")).After(100 * time.Hour).Expect(confirm("1"))
	p := s.Process("1")
	if p.Status != pm.StatusCompleted || len(p.Deadlines) != 0 {
		t.Fatalf("status %s, deadlines %v; want completed, none", p.Status, p.Deadlines)
	}
}

func TestRedeliveryIsIgnored(t *testing.T) {
	first := customer("1")
	first.ID = uuid.MustParse("0195a3f0-0000-7000-8000-000000000001")
	s := pmtest.Given(t, matchDef("CateringMatch"), first, first, first)
	p := s.Process("1")
	links := 0
	for _, e := range p.Events {
		if e.Link {
			links++
		}
	}
	if links != 1 {
		t.Fatalf("the event is linked %d times, want once", links)
	}
	s.When(caterer("1"), first).Expect(confirm("1"))
}

func TestDeadlines(t *testing.T) {
	def := matchDef("CateringMatch")
	t.Run("fires once when incomplete", func(t *testing.T) {
		s := pmtest.Given(t, def, customer("1")).After(timeout - time.Second).Expect()
		s.After(time.Second).Expect(cancel("1"))
		s.After(timeout).When(caterer("1")).After(timeout).Expect(cancel("1"))
		if p := s.Process("1"); p.Status != pm.StatusExpired || len(p.Deadlines) != 0 {
			t.Fatalf("status %s, deadlines %v; want expired, none", p.Status, p.Deadlines)
		}
	})
	t.Run("cancelled by completion", func(t *testing.T) {
		s := pmtest.Given(t, def, customer("1"))
		if p := s.Process("1"); len(p.Deadlines) != 1 || !p.Deadlines[0].Due.Equal(s.Now().Add(timeout)) {
			t.Fatalf("pending deadlines %v, want CancelOrder at %v", p.Deadlines, s.Now().Add(timeout))
		}
		s.When(caterer("1")).After(2 * timeout).Expect(confirm("1"))
		types := recordTypes(s.Process("1"))
		want := "CustomerConfirmedMenu DeadlineScheduled CatererConfirmedMenu ConfirmOrder DeadlineCancelled"
		if types != want {
			t.Fatalf("stream %q, want %q", types, want)
		}
	})
	t.Run("overdue when decided", func(t *testing.T) {
		// Facts stored a year before the clock are decided when they were stored: the
		// deadline, past by the clock, waits for the facts stored before it, and fires
		// when the clock is next moved (the runtime's deadline check).
		late := customer("1")
		late.Timestamp = time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
		s := pmtest.Given(t, def, late).Expect()
		s.After(0).Expect(cancel("1"))
		if got, want := recordTypes(s.Process("1")), "CustomerConfirmedMenu DeadlineScheduled DeadlineFired CancelOrder"; got != want {
			t.Fatalf("stream %q, want %q", got, want)
		}
		// The caterer's confirmation stored an hour later, before the deadline, completes
		// the order; stored at the deadline, it comes after it.
		completing := caterer("1")
		completing.Timestamp = late.Timestamp.Add(time.Hour)
		pmtest.Given(t, def, late, completing).After(0).Expect(confirm("1"))
		completing.Timestamp = late.Timestamp.Add(timeout)
		s = pmtest.Given(t, def, late, completing).After(0).Expect(cancel("1"))
		if got, want := recordTypes(s.Process("1")), "CustomerConfirmedMenu DeadlineScheduled DeadlineFired CancelOrder CatererConfirmedMenu"; got != want {
			t.Fatalf("stream %q, want %q", got, want)
		}
	})
	t.Run("every order with the clock", func(t *testing.T) {
		// Whichever confirmation comes first starts the clock; the deadline is 48h after it.
		pmtest.EveryOrder(t, def, []pmd.Event{customer("1"), caterer("2"), customer("3")}, func(t *testing.T, s *pmtest.Scenario[match]) {
			s.After(timeout).Expect(cancel("1"), cancel("2"), cancel("3"))
		})
	})
}

// recordTypes lists the event types of a process stream.
func recordTypes(p pm.Process) string {
	var types []string
	for _, e := range p.Events {
		types = append(types, e.Type)
	}
	return strings.Join(types, " ")
}

func TestDeadlineMoves(t *testing.T) {
	// A reminder due one hour after the latest ping; Ack ends it.
	type state struct {
		Last  time.Time
		Acked bool
	}
	def := pm.Definition[state]{
		Name:      "Reminder",
		Handles:   []string{"Ping", "Ack"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) state { return state{} },
		Apply: func(s state, e pmd.Event) state {
			switch {
			case e.Type == "Ping" && e.Link:
				s.Last = e.Timestamp
			case e.Type == "Ack":
				s.Acked = true
			}
			return s
		},
		Decide: func(s state) []pm.Command {
			if s.Acked {
				return nil
			}
			return []pm.Command{{Type: "Remind", At: s.Last.Add(time.Hour)}}
		},
	}
	ping := pmd.Event{Type: "Ping", Data: map[string]any{"id": 7}}
	ack := pmd.Event{Type: "Ack", Data: map[string]any{"id": int64(7)}}
	remind := pm.Command{Type: "Remind", ProcessID: "7"}

	s := pmtest.Given(t, def, ping).After(50 * time.Minute).When(ping).After(50 * time.Minute).Expect()
	if p := s.Process("7"); len(p.Deadlines) != 1 || !p.Deadlines[0].Due.Equal(s.Now().Add(10*time.Minute)) {
		t.Fatalf("deadlines %v, want one moved to %v", p.Deadlines, s.Now().Add(10*time.Minute))
	}
	s.After(10 * time.Minute).Expect(remind)

	s = pmtest.Given(t, def, ping, ack).After(2 * time.Hour).Expect()
	if got, want := recordTypes(s.Process("7")), "Ping DeadlineScheduled Ack DeadlineCancelled"; got != want {
		t.Fatalf("stream %q, want %q", got, want)
	}
}

func TestRecordsCarryCausationAndDeterministicIDs(t *testing.T) {
	run := func() pm.Process {
		m, err := pm.NewMemory(matchDef("CateringMatch"), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		c := customer("9")
		c.ID = uuid.MustParse("0195a3f0-0000-7000-8000-00000000000c")
		c.Metadata = map[string]any{pmd.CorrelationID: "checkout-1"}
		k := caterer("9")
		k.ID = uuid.MustParse("0195a3f0-0000-7000-8000-00000000000d")
		for _, e := range []pmd.Event{c, k} {
			if _, err := m.Handle(e); err != nil {
				t.Fatal(err)
			}
		}
		p, ok := m.Process("9")
		if !ok {
			t.Fatal("process 9 unknown")
		}
		return p
	}
	p := run()
	if len(p.Events) != 5 {
		t.Fatalf("stream has %d events, want 5: %s", len(p.Events), recordTypes(p))
	}
	sched, cmd := p.Events[1], p.Events[3]
	checks := []struct {
		what string
		got  any
		want any
	}{
		{"scheduled causation", sched.Metadata[pmd.CausationID], "0195a3f0-0000-7000-8000-00000000000c"},
		{"scheduled correlation", sched.Metadata[pmd.CorrelationID], "checkout-1"},
		{"command causation", cmd.Metadata[pmd.CausationID], "0195a3f0-0000-7000-8000-00000000000d"},
		{"command correlation defaults to the trigger", cmd.Metadata[pmd.CorrelationID], "0195a3f0-0000-7000-8000-00000000000d"},
		{"command kind", cmd.Metadata[pm.MetaKind], pm.KindCommand},
		{"command key", cmd.Metadata[pm.MetaKey], "ConfirmOrder"},
		{"command version", cmd.Version, uint64(3)},
		{"command stream", cmd.Stream, "CateringMatch$9"},
		{"issued id", p.Commands[0].ID, cmd.ID},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if again := run(); again.Commands[0].ID != p.Commands[0].ID || again.Events[1].ID != sched.ID {
		t.Fatalf("ids differ between two runs of the same history: %v/%v, %v/%v",
			again.Commands[0].ID, p.Commands[0].ID, again.Events[1].ID, sched.ID)
	}
}

func TestBadDecisionsAreErrors(t *testing.T) {
	base := matchDef("Bad")
	tests := []struct {
		name   string
		decide func(match) []pm.Command
		want   string
	}{
		{"empty type", func(match) []pm.Command { return []pm.Command{{}} }, "type must not be empty"},
		{"same key twice", func(match) []pm.Command {
			return []pm.Command{{Type: "A", Key: "k"}, {Type: "B", Key: "k"}}
		}, `key "k" returned twice`},
		{"same type twice", func(match) []pm.Command {
			return []pm.Command{{Type: "A"}, {Type: "A", At: time.Now()}}
		}, `key "A" returned twice`},
		{"unencodable data", func(match) []pm.Command {
			return []pm.Command{{Type: "A", Data: map[string]any{"ch": make(chan int)}}}
		}, "cannot encode"},
		// The store refuses it (JSON has no such number): the runtime's write fails, and
		// Memory must fail the same decision.
		{"a NaN in the data", func(match) []pm.Command {
			return []pm.Command{{Type: "A", Data: map[string]any{"ratio": math.NaN()}}}
		}, "data.ratio: NaN is not a JSON number"},
		{"an infinity deep in the data", func(match) []pm.Command {
			return []pm.Command{{Type: "A", Data: map[string]any{"lines": []any{1.5, math.Inf(1)}}}}
		}, "data.lines[1]: +Inf is not a JSON number"},
		// The store refuses it too (a JSON object's keys are strings); the decision was
		// taken and its write failed.
		{"a key that is not a string", func(match) []pm.Command {
			return []pm.Command{{Type: "A", Data: map[string]any{"qty": map[int]int{7: 1}}}}
		}, "data.qty: the key 7 is not a string"},
		// It cannot be written; the walks of the data ran until the stack overflowed.
		{"data that holds itself", func(match) []pm.Command {
			loop := map[string]any{"k": 1}
			loop["self"] = loop
			return []pm.Command{{Type: "A", Data: map[string]any{"m": loop}}}
		}, "data.m.self: holds itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := base
			def.Decide = tt.decide
			m, err := pm.NewMemory(def, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Handle(customer("1"))
			if !errors.Is(err, pm.ErrInvalidDefinition) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidDefinition saying %q", err, tt.want)
			}
			if _, ok := m.State("1"); ok {
				t.Fatal("a refused decision left the process behind")
			}
		})
	}
}

func TestInvalidProcessIDs(t *testing.T) {
	def := matchDef("CateringMatch")
	tests := []struct {
		name string
		id   any
	}{
		{"control character", "a\nb"},
		{"too long", strings.Repeat("x", 250)},
		{"invalid utf-8", "\xff"},
		{"dot", "."},
		{"dot dot", ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := pm.NewMemory(def, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Handle(pmd.Event{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": tt.id}})
			if !errors.Is(err, pm.ErrInvalidProcessID) {
				t.Fatalf("err = %v, want ErrInvalidProcessID", err)
			}
			if ids := m.Processes(); len(ids) != 0 {
				t.Fatalf("processes %v after a refused event", ids)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := matchDef("CateringMatch")
	tests := []struct {
		name  string
		edit  func(*pm.Definition[match])
		field string
	}{
		{"valid", func(*pm.Definition[match]) {}, ""},
		{"no name", func(d *pm.Definition[match]) { d.Name = "" }, "Name"},
		{"dollar in name", func(d *pm.Definition[match]) { d.Name = "A$B" }, "Name"},
		{"dot in name", func(d *pm.Definition[match]) { d.Name = "A.B" }, "Name"},
		{"long name", func(d *pm.Definition[match]) { d.Name = strings.Repeat("a", 65) }, "Name"},
		{"no handles", func(d *pm.Definition[match]) { d.Handles = nil }, "Handles"},
		{"empty type", func(d *pm.Definition[match]) { d.Handles = []string{"A", ""} }, "Handles[1]"},
		{"repeated type", func(d *pm.Definition[match]) { d.Handles = []string{"A", "A"} }, "Handles[1]"},
		{"no process id", func(d *pm.Definition[match]) { d.ProcessID = nil }, "ProcessID"},
		{"no init", func(d *pm.Definition[match]) { d.Init = nil }, "Init"},
		{"no apply", func(d *pm.Definition[match]) { d.Apply = nil }, "Apply"},
		{"no decide", func(d *pm.Definition[match]) { d.Decide = nil }, "Decide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			d.Handles = append([]string(nil), ok.Handles...)
			tt.edit(&d)
			err := d.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var de *pm.DefinitionError
			if !errors.As(err, &de) || de.Field != tt.field || !errors.Is(err, pm.ErrInvalidDefinition) {
				t.Fatalf("Validate() = %v, want a DefinitionError about %s", err, tt.field)
			}
			if _, err := pm.NewMemory(d, time.Now()); !errors.Is(err, pm.ErrInvalidDefinition) {
				t.Fatalf("NewMemory accepted an invalid definition: %v", err)
			}
		})
	}
}

// TestDataField: DataField takes a string, an integer, or a float with no fraction (what
// a JSON number decodes to) as the process id; DataFieldProblem says what is wrong with
// any other value.
func TestDataField(t *testing.T) {
	f, problem := pm.DataField("id"), pm.DataFieldProblem("id")
	tests := []struct {
		val  any
		want string
		ok   bool
		why  string
	}{
		{"42", "42", true, ""},
		{42, "42", true, ""},
		{int8(-4), "-4", true, ""},
		{int16(300), "300", true, ""},
		{int32(70000), "70000", true, ""},
		{int64(1) << 40, "1099511627776", true, ""},
		{uint(7), "7", true, ""},
		{uint8(200), "200", true, ""},
		{uint16(60000), "60000", true, ""},
		{uint32(1) << 31, "2147483648", true, ""},
		{uint64(1) << 63, "9223372036854775808", true, ""},
		{42.0, "42", true, ""},
		{float32(-7), "-7", true, ""},
		{float64(1 << 53), "9007199254740992", true, ""},
		{"", "", false, "id is empty"},
		{nil, "", false, "id is null"},
		{4.5, "", false, "id is a float64 (4.5), want a string or an integer"},
		{float64(1 << 54), "", false, "id is a float64 (1.8014398509481984e+16), want a string or an integer"},
		{true, "", false, "id is a bool (true), want a string or an integer"},
		{[]any{"1"}, "", false, "id is a []interface {} ([1]), want a string or an integer"},
	}
	for _, tt := range tests {
		e := pmd.Event{Data: map[string]any{"id": tt.val}}
		got, ok := f(e)
		if got != tt.want || ok != tt.ok {
			t.Errorf("DataField(%#v) = %q, %v; want %q, %v", tt.val, got, ok, tt.want, tt.ok)
		}
		if why := problem(e); why != tt.why {
			t.Errorf("DataFieldProblem(%#v) = %q, want %q", tt.val, why, tt.why)
		}
	}
	if _, ok := f(pmd.Event{}); ok {
		t.Error("DataField found an id in an event without data")
	}
	if why := problem(pmd.Event{}); why != "id is missing" {
		t.Errorf("DataFieldProblem of an event without data = %q", why)
	}
}

// TestMemoryRefusesAnEventThatHoldsItself: Memory writes a test's event through msgpack,
// as the store would; data that holds itself is refused, as Append refuses it, instead
// of overflowing the stack, which ends the test binary.
func TestMemoryRefusesAnEventThatHoldsItself(t *testing.T) {
	m, err := pm.NewMemory(matchDef("CateringMatch"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	loop := map[string]any{"order_id": "1"}
	loop["self"] = loop
	if _, err := m.Handle(pmd.Event{Type: "CustomerConfirmedMenu", Data: loop}); err == nil || !strings.Contains(err.Error(), ".self holds itself") {
		t.Fatalf("Handle: %v, want an error saying .self holds itself", err)
	}
}
