package pm_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// purchase is a process that acknowledges an order at once and reminds its customer
// timeout after it was placed unless it was paid by then: a command issued and a
// deadline pending at the same time.
type purchase struct {
	Placed, Paid bool
	Started      time.Time
}

func purchaseDef() pm.Definition[purchase] {
	return pm.Definition[purchase]{
		Name:      "O",
		Handles:   []string{"OrderPlaced", "OrderPaid"},
		ProcessID: pm.DataField("order_id"),
		Init:      func(string) purchase { return purchase{} },
		Apply: func(s purchase, e pmd.Event) purchase {
			switch e.Type {
			case "OrderPlaced":
				if !s.Placed {
					s.Placed, s.Started = true, e.Timestamp
				}
			case "OrderPaid":
				s.Paid = true
			}
			return s
		},
		Decide: func(s purchase) []pm.Command {
			var out []pm.Command
			if s.Placed {
				out = append(out, pm.Command{Type: "Acknowledge"})
			}
			if s.Placed && !s.Paid {
				out = append(out, pm.Command{Type: "Remind", At: s.Started.Add(timeout)})
			}
			if s.Paid {
				out = append(out, pm.Command{Type: "Ship"})
			}
			return out
		},
	}
}

func purchaseFact(typ, id string) pmd.Event {
	return pmd.Event{Type: typ, Data: map[string]any{"order_id": id}}
}

// TestErasedProcessEnds: erasing a process stream (its commands carry personal data)
// ends the process, however the manager comes to fold it next (from the first event
// after a restart, from a snapshot written before the erasure, or from the state it
// had cached when the erasure came): it issues no command again, its pending deadline
// never fires, a later event of it is not linked and starts nothing, retention removes
// it, and the process view says it was erased.
func TestErasedProcessEnds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		snapshots int
		restart   bool
		// oldSnapshot: the newest snapshot is one written before snapshots kept the
		// version of the stream's first record of its own ("own").
		oldSnapshot bool
	}{
		{"folded from the first event", -1, true, false},
		{"folded from a snapshot", 1, true, false},
		{"folded from an old snapshot", 1, true, true},
		{"cached", -1, false, false},
		{"cached with snapshots", 1, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			var got issued
			opts := pm.Options{
				Clock: clock, Deliver: got.deliver, SnapshotEvery: tc.snapshots,
				Retention: pm.Retention{Completed: keep},
			}
			r := start(t, s, purchaseDef(), opts)
			for _, id := range []string{"1", "2"} {
				appendFact(t, s, purchaseFact("OrderPlaced", id))
			}
			r.idle(t)
			for _, id := range []string{"1", "2"} {
				if n := got.count(id, "Acknowledge"); n != 1 {
					t.Fatalf("process %s: Acknowledge delivered %d times, want 1", id, n)
				}
				v, err := r.Process(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if len(v.Deadlines) != 1 || v.Status != pm.StatusOpen {
					t.Fatalf("process %s before the erasure: status %s, %d deadlines, want open with 1", id, v.Status, len(v.Deadlines))
				}
			}
			if tc.snapshots > 0 && !exists(t, s, "O.snapshots$1") {
				t.Fatal("no snapshot written before the erasure")
			}
			if tc.restart {
				r.stop(t)
			}
			if tc.oldSnapshot {
				for _, id := range []string{"1", "2"} {
					snaps := processStream(t, s, "O.snapshots$"+id)
					last := snaps[len(snaps)-1]
					if _, ok := last.Data["own"]; !ok {
						t.Fatalf("snapshot of process %s without own: %v", id, last.Data)
					}
					delete(last.Data, "own")
					if _, err := s.Append(ctx, "O.snapshots$"+id, pmd.Any, pmd.EventData{Type: last.Type, Data: last.Data, Metadata: last.Metadata}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, id := range []string{"1", "2"} {
				if err := s.EraseStream(ctx, "O$"+id); err != nil {
					t.Fatal(err)
				}
			}
			if tc.restart {
				r = start(t, s, purchaseDef(), opts)
				r.idle(t)
			}
			versions := map[string]int{}
			for _, id := range []string{"1", "2"} {
				versions[id] = len(processStream(t, s, "O$"+id))
			}

			// A later event of process 2 is not linked and starts nothing.
			appendFact(t, s, purchaseFact("OrderPaid", "2"))
			r.idle(t)
			if n := len(processStream(t, s, "O$2")); n != versions["2"] {
				t.Errorf("process 2: %d events in its stream after a late event, want %d: it was linked", n, versions["2"])
			}
			if st, err := r.Stats(ctx); err != nil {
				t.Fatal(err)
			} else if st.Late != 1 {
				t.Errorf("Stats.Late = %d, want 1 (the event of the erased process)", st.Late)
			}

			// The process view says what happened.
			for _, id := range []string{"1", "2"} {
				v, err := r.Process(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if !v.Erased || v.Status != pm.StatusCompleted || len(v.Deadlines) != 0 {
					t.Errorf("process %s after the erasure: erased %t, status %s, %d deadlines; want erased, completed, none",
						id, v.Erased, v.Status, len(v.Deadlines))
				}
				page, err := r.ProcessPage(ctx, id, -1, 10)
				if err != nil {
					t.Fatal(err)
				}
				if !page.Erased || page.Status != pm.StatusCompleted || len(page.Deadlines) != 0 {
					t.Errorf("page of process %s after the erasure: erased %t, status %s, %d deadlines",
						id, page.Erased, page.Status, len(page.Deadlines))
				}
			}
			list, err := r.List(ctx, pm.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range list.Processes {
				if !p.Erased || p.Status != pm.StatusCompleted || p.Deadlines != 0 {
					t.Errorf("listed process %s: erased %t, status %s, %d deadlines", p.ID, p.Erased, p.Status, p.Deadlines)
				}
			}

			// The deadline never fires, and retention removes the processes.
			clock.Advance(timeout + time.Minute)
			r.idle(t)
			clock.Advance(keep)
			r.idle(t)
			for _, id := range []string{"1", "2"} {
				for _, typ := range []string{"Acknowledge", "Remind", "Ship"} {
					want := map[string]int{"Acknowledge": 1}[typ]
					if n := got.count(id, typ); n != want {
						t.Errorf("process %s: %s delivered %d times, want %d", id, typ, n, want)
					}
				}
				if exists(t, s, "O$"+id) || !exists(t, s, "O.removed$"+id) {
					t.Errorf("process %s: not removed by retention after its erasure", id)
				}
			}
		})
	}
}

// TestErasedCachedProcessCounts: a cached process that the manager finds erased when it
// is about to decide moves from open to completed in Counts at once, as a restart would
// count it, and retention removing it later leaves Counts at zero, not negative.
func TestErasedCachedProcessCounts(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	var got issued
	opts := pm.Options{
		Clock: clock, Deliver: got.deliver, SnapshotEvery: -1,
		Retention: pm.Retention{Completed: keep},
	}
	r := start(t, s, purchaseDef(), opts)
	placeThenErase(t, s, r)
	appendFact(t, s, purchaseFact("OrderPaid", "1"))
	r.idle(t)
	if c := r.Counts(); c != (pm.Counts{Completed: 1}) {
		t.Errorf("Counts after the erased process was found erased = %+v, want 1 completed", c)
	}
	if n := got.count("1", "Ship"); n != 0 {
		t.Errorf("Ship delivered %d times to the erased process, want 0", n)
	}

	clock.Advance(timeout + time.Minute)
	r.idle(t)
	clock.Advance(keep)
	r.idle(t)
	if exists(t, s, "O$1") {
		t.Fatal("the erased process was not removed by retention")
	}
	if c := r.Counts(); c != (pm.Counts{}) {
		t.Errorf("Counts after retention removed the erased process = %+v, want zero", c)
	}
}

// TestErasedProcessWritesNoSnapshot: once a process is found erased, the manager writes
// no snapshot of it again (the operator erased or deleted its snapshots stream with it,
// and a snapshot would put its state back there), however many events of it come late,
// and across restarts.
func TestErasedProcessWritesNoSnapshot(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	opts := pm.Options{SnapshotEvery: 1, Deliver: (&issued{}).deliver}
	r := start(t, s, purchaseDef(), opts)
	appendFact(t, s, purchaseFact("OrderPlaced", "1"))
	r.idle(t)
	if !exists(t, s, "O.snapshots$1") {
		t.Fatal("no snapshot written before the erasure")
	}
	r.stop(t)
	if err := s.EraseStream(ctx, "O$1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "O.snapshots$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	for restart := range 2 {
		r = start(t, s, purchaseDef(), opts)
		for range 3 {
			appendFact(t, s, purchaseFact("OrderPaid", "1"))
			r.idle(t)
		}
		if n := len(processStream(t, s, "O.snapshots$1")); n != 0 {
			t.Errorf("after restart %d: %d snapshots of the erased process written, want none", restart+1, n)
		}
		r.stop(t)
	}
}

// TestErasureBeforeDecisionWrite: an erasure that comes after a cached process checked
// its stream and before it writes what it decided (an erasure does not change the
// stream's version, so the write succeeds) does not let the decision through: what was
// written after the erasure is erased too, the command is not delivered, and the
// process is counted and viewed as erased.
func TestErasureBeforeDecisionWrite(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	var erased atomic.Bool
	var got issued
	r := startWith(t, s, purchaseDef(), pm.Options{Deliver: got.deliver, SnapshotEvery: -1}, func(m *pm.Manager) {
		pm.SetBeforeDecisionWrite(m, func(stream string) {
			if stream == "O$1" && erased.CompareAndSwap(false, true) {
				if err := s.EraseStream(ctx, stream); err != nil {
					t.Error(err)
				}
			}
		})
	})
	erased.Store(true) // not on the first decision
	appendFact(t, s, purchaseFact("OrderPlaced", "1"))
	r.idle(t)
	if n := got.count("1", "Acknowledge"); n != 1 {
		t.Fatalf("Acknowledge delivered %d times, want 1", n)
	}
	erased.Store(false)
	appendFact(t, s, purchaseFact("OrderPaid", "1"))
	r.idle(t)
	if !erased.Load() {
		t.Fatal("the hook did not run before the decision was written")
	}
	if n := got.count("1", "Ship"); n != 0 {
		t.Errorf("Ship delivered %d times after the erasure, want 0", n)
	}
	for _, e := range processStream(t, s, "O$1") {
		if !e.Link && !e.Erased {
			t.Errorf("O$1 version %d (%s) reads not erased: written after the erasure and left so", e.Version, e.Type)
		}
	}
	if c := r.Counts(); c != (pm.Counts{Completed: 1}) {
		t.Errorf("Counts = %+v, want 1 completed", c)
	}
	v, err := r.Process(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Erased || v.Status != pm.StatusCompleted {
		t.Errorf("process after the erasure: erased %t, status %s; want erased, completed", v.Erased, v.Status)
	}
}
