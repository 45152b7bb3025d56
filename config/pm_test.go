package config

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

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
			c, err := compileCondition(tt.when, p.Handles)
			if err != nil {
				t.Fatal(err)
			}
			p.CompleteWhen = c
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
