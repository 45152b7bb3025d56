package pm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// shipToDef issues ShipOrder to the customer once its process has a Paid fact.
func shipToDef() pm.Definition[bool] {
	return pm.Definition[bool]{
		Name:      "Ship",
		Handles:   []string{"Paid"},
		ProcessID: pm.DataField("order"),
		Init:      func(string) bool { return false },
		Apply:     func(paid bool, e pmd.Event) bool { return paid || e.Link && e.Type == "Paid" },
		Decide: func(paid bool) []pm.Command {
			if !paid {
				return nil
			}
			return []pm.Command{{Type: "ShipOrder", Data: map[string]any{"to": "customer"}}}
		},
	}
}

// handed collects the commands handed to a Deliver handler as "<process> <type> <to>",
// failing each while fail is set.
type handed struct {
	mu   sync.Mutex
	fail bool
	got  []string
	ids  []uuid.UUID
}

func (h *handed) deliver(_ context.Context, c pm.Command) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, fmt.Sprintf("%s %s %v", c.ProcessID, c.Type, c.Data["to"]))
	h.ids = append(h.ids, c.ID)
	if h.fail {
		return errors.New("down")
	}
	return nil
}

func (h *handed) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// legacyID is the id the runtime gave a record before stores had ids: in package pm's
// namespace itself, which anyone can compute (FORMAT.md).
func legacyID(stream string, version uint64) uuid.UUID {
	ns := uuid.MustParse("7b1c2f4e-5d1a-4f0e-9a57-3c0d8f6b2e91")
	return uuid.NewSHA1(ns, fmt.Appendf(nil, "%s@%d", stream, version))
}

// forgedCommand is a record in the form of the runtime's ShipOrder command.
func forgedCommand(id uuid.UUID) pmd.EventData {
	return pmd.EventData{ID: id, Type: "ShipOrder", Data: map[string]any{"to": "attacker"},
		Metadata: map[string]any{pm.MetaKind: pm.KindCommand, pm.MetaKey: "ShipOrder"}}
}

// TestAForgedCommandInAProcessStreamIsIgnored: a writer appends to a process stream a
// record in the form of the runtime's command (pm_kind command, pm_key ShipOrder), with
// an id of its own or one in the namespace of the records written before stores had ids,
// which anyone can compute; it is not handed to the handler and does not count as
// issued: the real ShipOrder is issued and delivered once, also after a restart, and the
// views list only it.
func TestAForgedCommandInAProcessStreamIsIgnored(t *testing.T) {
	tests := []struct {
		name string
		id   func(stream string, version uint64) uuid.UUID
		// afterStart appends the forgery after a first run of the manager (one with
		// nothing to do): a forgery appended before any run of a version that checks ids
		// cannot be told from a record an earlier version wrote.
		afterStart bool
	}{
		{"its own id", func(string, uint64) uuid.UUID { return uuid.New() }, false},
		{"its own id after a start", func(string, uint64) uuid.UUID { return uuid.New() }, true},
		{"an id of before store ids", legacyID, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			var h handed
			opts := pm.Options{Deliver: h.deliver}
			var want []string
			if tt.afterStart {
				// Another process's fact makes sure the run got past its start.
				r := start(t, s, shipToDef(), opts)
				appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "1"}})
				r.idle(t)
				r.stop(t)
				want = append(want, "1 ShipOrder customer")
			}
			const stream = "Ship$42"
			if _, err := s.Append(ctx, stream, pmd.NoStream, forgedCommand(tt.id(stream, 0))); err != nil {
				t.Fatal(err)
			}
			appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "42"}})
			r := start(t, s, shipToDef(), opts)
			r.idle(t)
			r.stop(t)
			r = start(t, s, shipToDef(), opts)
			r.idle(t)
			want = append(want, "42 ShipOrder customer")
			if got := h.list(); !slices.Equal(got, want) {
				t.Fatalf("handed %v, want %v", got, want)
			}
			_, commands := tally(t, processStream(t, s, stream))
			if commands["ShipOrder"] != 2 {
				t.Fatalf("%d ShipOrder records in %s, want the forged one and the real one", commands["ShipOrder"], stream)
			}
			p, err := r.Process(ctx, "42")
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Commands) != 1 || p.Commands[0].Data["to"] != "customer" {
				t.Fatalf("Process lists commands %+v, want the real ShipOrder only", p.Commands)
			}
			page, err := r.ProcessPage(ctx, "42", -1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Commands) != 1 || page.Commands[0].Data["to"] != "customer" {
				t.Fatalf("ProcessPage lists commands %+v, want the real ShipOrder only", page.Commands)
			}
		})
	}
}

// refusedOnce runs Ship on s with a handler that refuses its first command, that of
// process 42, and stops it; it returns the handler, set to accept from then on, the
// options to start Ship again with (a clock that stands still: the command is retried
// only by hand) and the refused command's id.
func refusedOnce(t *testing.T, s *pmd.Store) (*handed, pm.Options, uuid.UUID) {
	t.Helper()
	h := &handed{fail: true}
	opts := pm.Options{Deliver: h.deliver, Clock: pmtest.NewClock(time.Now())}
	r := start(t, s, shipToDef(), opts)
	appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "42"}})
	r.idle(t)
	r.stop(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ids) == 0 {
		t.Fatal("the command was not handed to the handler")
	}
	id := h.ids[0]
	h.fail, h.got, h.ids = false, nil, nil
	return h, opts, id
}

// TestAForgedDeliveryRecordIsIgnoredAfterARestart: a command the handler refused has a
// failure recorded; a writer appends to its deliveries stream a CommandSkipped or a
// CommandDelivered of it; after a restart the command is still due and is delivered.
func TestAForgedDeliveryRecordIsIgnoredAfterARestart(t *testing.T) {
	for _, typ := range []string{"CommandSkipped", "CommandDelivered"} {
		t.Run(typ, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			h, opts, id := refusedOnce(t, s)
			for _, rec := range []pmd.EventData{
				{Type: typ, Data: map[string]any{"command_id": id.String(), "command_type": "ShipOrder", "attempt": 1}},
				{ID: legacyID("Ship.deliveries$42", 9), Type: typ, Data: map[string]any{"command_id": id.String(), "command_type": "ShipOrder", "attempt": 1}},
			} {
				if _, err := s.Append(ctx, "Ship.deliveries$42", pmd.Any, rec); err != nil {
					t.Fatal(err)
				}
			}
			r := start(t, s, shipToDef(), opts)
			// Another process's command makes sure the run got past its start.
			appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "7"}})
			r.idle(t)
			ds, err := r.Deliveries(ctx, "42")
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Outcome == pm.OutcomeSkipped || d.Outcome == pm.OutcomeDelivered {
					t.Fatalf("Deliveries lists the forged %+v", d)
				}
			}
			if err := r.Retry(ctx, "42", id); err != nil {
				t.Fatalf("Retry of the command the forgery says is done: %v", err)
			}
			r.idle(t)
			if got, want := h.list(), []string{"7 ShipOrder customer", "42 ShipOrder customer"}; !slices.Equal(got, want) {
				t.Fatalf("handed %v after the restart, want %v", got, want)
			}
		})
	}
}
