package pm_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// A forged CommandDelivered appended after this version ran is ignored even when the
// legacy mark is gone from view: the checkpoint stream deleted (as FORMAT.md allows), or
// a MaxCount retention on it hiding the mark behind later checkpoints. The start after
// writes a new mark (the old id is still stored) that lets nothing pass for an earlier
// version's.
func TestLegacyMarkLostStillRefusesForgery(t *testing.T) {
	for _, lose := range []string{"delete", "maxcount"} {
		t.Run(lose, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			h := handed{fail: true}
			opts := pm.Options{Deliver: h.deliver, Clock: pmtest.NewClock(time.Now())}
			r := start(t, s, shipToDef(), opts)
			appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "42"}})
			r.idle(t)
			r.stop(t)
			h.mu.Lock()
			id := h.ids[0]
			h.fail, h.got, h.ids = false, nil, nil
			h.mu.Unlock()
			switch lose {
			case "delete":
				if err := s.DeleteStream(ctx, "Ship.checkpoint", pmd.Any); err != nil {
					t.Fatal(err)
				}
			case "maxcount":
				if err := s.SetRetention(ctx, "Ship.checkpoint", pmd.Retention{MaxCount: 1}); err != nil {
					t.Fatal(err)
				}
				r := start(t, s, shipToDef(), opts) // its checkpoint hides the mark
				appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "6"}})
				r.idle(t)
				r.stop(t)
			}
			r = start(t, s, shipToDef(), opts)
			appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "7"}})
			r.idle(t)
			r.stop(t)
			if _, err := s.Append(ctx, "Ship.deliveries$42", pmd.Any, pmd.EventData{Type: "CommandDelivered",
				Data: map[string]any{"command_id": id.String(), "command_type": "ShipOrder", "attempt": 1}}); err != nil {
				t.Fatal(err)
			}
			r = start(t, s, shipToDef(), opts)
			appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "8"}})
			r.idle(t)
			ds, err := r.Deliveries(ctx, "42")
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Outcome == pm.OutcomeDelivered {
					t.Errorf("Deliveries lists the forged %+v", d)
				}
			}
			if err := r.Retry(ctx, "42", id); err != nil {
				t.Errorf("Retry: %v", err)
			}
			r.idle(t)
			if !slices.Contains(h.list(), "42 ShipOrder customer") {
				t.Errorf("handed %v: the real command was dropped by a forged CommandDelivered", h.list())
			}
		})
	}
}

// On a fresh store the first start writes the legacy mark before anything else: a crash
// before the manager's first checkpoint does not leave the next start taking a forged
// CommandSkipped appended meanwhile for an earlier version's record.
func TestLegacyMarkWrittenAtFirstStartSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	h := handed{fail: true}
	opts := pm.Options{Deliver: h.deliver, Clock: pmtest.NewClock(time.Now()), Logger: quiet()}
	m, err := pm.New(s, shipToDef(), opts)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(rctx) }()
	appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "42"}})
	wctx, wc := context.WithTimeout(ctx, 10*time.Second)
	defer wc()
	if err := m.WaitIdle(wctx); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	id := h.ids[0]
	h.fail, h.got, h.ids = false, nil, nil
	h.mu.Unlock()
	if _, err := s.Append(ctx, "Ship.deliveries$42", pmd.Any, pmd.EventData{Type: "CommandSkipped",
		Data: map[string]any{"command_id": id.String(), "command_type": "ShipOrder", "attempt": 1}}); err != nil {
		t.Fatal(err)
	}
	// crash: the store goes away before the manager writes a checkpoint
	s.Close()
	cancel()
	<-done
	s = openStore(t, dir)
	r := start(t, s, shipToDef(), opts)
	appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "8"}})
	r.idle(t)
	if err := r.Retry(ctx, "42", id); err != nil {
		t.Errorf("Retry: %v", err)
	}
	r.idle(t)
	if !slices.Contains(h.list(), "42 ShipOrder customer") {
		t.Errorf("handed %v: the real command was dropped by a forged CommandSkipped", h.list())
	}
}
