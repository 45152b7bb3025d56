package pm

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

type forgeOrder struct{ Placed, Paid bool }

// TestAForgedSnapshotIsIgnored: a writer appends to a process's snapshots stream a
// snapshot in the runtime's form, of the right fingerprint and versions, that says its
// command was issued; the fold passes over it (its id is not the runtime's), and the
// command is issued when the process decides it.
func TestAForgedSnapshotIsIgnored(t *testing.T) {
	ctx := context.Background()
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	def := Definition[forgeOrder]{
		Name:      "Ship",
		Handles:   []string{"Placed", "Paid"},
		ProcessID: DataField("order"),
		Init:      func(string) forgeOrder { return forgeOrder{} },
		Apply: func(o forgeOrder, e pmd.Event) forgeOrder {
			if e.Link {
				o.Placed = o.Placed || e.Type == "Placed"
				o.Paid = o.Paid || e.Type == "Paid"
			}
			return o
		},
		Decide: func(o forgeOrder) []Command {
			if o.Placed && o.Paid {
				return []Command{{Type: "ShipOrder"}}
			}
			return nil
		},
	}
	var mu sync.Mutex
	var handed []string
	opts := Options{SnapshotEvery: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Deliver: func(_ context.Context, c Command) error {
			mu.Lock()
			defer mu.Unlock()
			handed = append(handed, c.ProcessID+" "+c.Type)
			return nil
		}}
	// run runs a manager until fact is handled and it is idle.
	run := func(fact string) *Manager {
		t.Helper()
		m, err := New(s, def, opts)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Run(runCtx) }()
		if _, err := s.Append(ctx, "Facts", pmd.Any, pmd.EventData{Type: fact, Data: map[string]any{"order": "42"}}); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		if err := m.WaitIdle(wctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := run("Placed")
	placed := processEvents(t, s, "Ship$42")
	if len(placed) != 1 || !placed[0].Link {
		t.Fatalf("Ship$42 holds %+v, want the link to Placed", placed)
	}
	state, err := encodeState(forgeOrder{Placed: true})
	if err != nil {
		t.Fatal(err)
	}
	forged := snapshotEvent(&snapshot{fingerprint: m.fingerprint, state: state, l: ledger{
		last: 0, first: 0, own: -1, links: 1, linked: placed[0].Position, commands: 1,
		issued: map[string]uint64{"ShipOrder": 0}, pending: map[string]Deadline{},
	}})
	if _, err := s.Append(ctx, snapshotStream("Ship", "42"), pmd.Any, forged); err != nil {
		t.Fatal(err)
	}
	run("Paid")
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"42 ShipOrder"}; !slices.Equal(handed, want) {
		t.Fatalf("handed %v, want %v: the forged snapshot says ShipOrder was issued", handed, want)
	}
}

func processEvents(t *testing.T, s *pmd.Store, stream string) []pmd.Event {
	t.Helper()
	var out []pmd.Event
	for e, err := range s.ReadStream(context.Background(), stream, pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
