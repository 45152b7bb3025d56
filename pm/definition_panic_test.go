package pm_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// acks is the state of ackDef: the events linked, and whether one of them was bad.
type acks struct {
	N   int
	Bad bool
}

// ackDef is a definition whose process issues the command Ack with the key k<n> at its
// n-th event. While broken is set, its callback named in broken panics for process 2:
// Init at once, Apply at the event marked bad, Decide on the state after it, ProcessID
// or NoProcessID at that event.
func ackDef(broken *atomic.Value) pm.Definition[acks] {
	bad := func(callback string) bool { s, _ := broken.Load().(string); return s == callback }
	return pm.Definition[acks]{
		Name:    "Acks",
		Handles: []string{"Go"},
		ProcessID: func(e pmd.Event) (string, bool) {
			switch {
			case e.Data["bad"] == true && bad("ProcessID"):
				panic("ProcessID bug")
			case e.Data["bad"] == true && bad("NoProcessID"):
				return "", false
			}
			return pm.DataField("id")(e)
		},
		NoProcessID: func(pmd.Event) string {
			if bad("NoProcessID") {
				panic("NoProcessID bug")
			}
			return ""
		},
		Init: func(id string) acks {
			if id == "2" && bad("Init") {
				panic("Init bug")
			}
			return acks{}
		},
		Apply: func(s acks, e pmd.Event) acks {
			if !e.Link {
				return s
			}
			if e.Data["bad"] == true {
				if bad("Apply") {
					panic("Apply bug")
				}
				s.Bad = true
			}
			s.N++
			return s
		},
		Decide: func(s acks) []pm.Command {
			if s.Bad && bad("Decide") {
				panic("Decide bug")
			}
			var out []pm.Command
			for i := 1; i <= s.N; i++ {
				out = append(out, pm.Command{Type: "Ack", Key: "k" + string(rune('0'+i))})
			}
			return out
		},
	}
}

// TestAPanickingDefinitionHoldsItsProcess: a panic in a callback of the definition
// (Init, Apply, Decide) is the definition's bug about one process: it is logged with
// the process and counted (Stats.Panics), the process is held (nothing more folded,
// decided or issued for it until Run starts again) and the others go on; Process and the list say why it is held. The next start tries again: with
// the definition fixed, the process issues what it had to, each command once. Such a
// panic used to end the program, and again at every start. (A panic in ProcessID holds
// the whole manager: TestAPanickingProcessIDHoldsTheManager.)
func TestAPanickingDefinitionHoldsItsProcess(t *testing.T) {
	for _, tc := range []struct {
		callback string
		before   int // commands process 2 issued before the panic
	}{
		{"Init", 0},
		{"Apply", 1},
		{"Decide", 1},
	} {
		t.Run(tc.callback, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			var broken atomic.Value
			broken.Store(tc.callback)
			var logs lockedLog
			var sc script
			clock := pmtest.NewClock(time.Now())
			r := start(t, s, ackDef(&broken), pm.Options{Clock: clock, Deliver: sc.handle, Logger: logs.logger()})
			fact := func(id string, bad bool) pmd.Event {
				e := goFact(id)
				if bad {
					e.Data["bad"] = true
				}
				return e
			}
			appendFact(t, s, fact("1", false))
			appendFact(t, s, fact("2", false))
			appendFact(t, s, fact("2", true))
			appendFact(t, s, fact("2", false))
			appendFact(t, s, fact("3", false))
			r.idle(t)

			keys := func(id string) []string {
				t.Helper()
				v, err := r.Process(ctx, id)
				if errors.Is(err, pm.ErrProcessNotFound) {
					return nil
				}
				if err != nil {
					t.Fatalf("Process(%s): %v", id, err)
				}
				var out []string
				for _, c := range v.Commands {
					out = append(out, c.Key)
				}
				return out
			}
			if got := keys("1"); !slices.Equal(got, []string{"k1"}) {
				t.Errorf("process 1 issued %v, want [k1]", got)
			}
			if got := keys("3"); !slices.Equal(got, []string{"k1"}) {
				t.Errorf("process 3 issued %v, want [k1]", got)
			}
			if got := keys("2"); len(got) != tc.before {
				t.Errorf("held process 2 issued %v, want %d commands", got, tc.before)
			}
			st, err := r.Stats(ctx)
			if err != nil || st.Panics != 1 {
				t.Errorf("Stats: %+v, %v; want 1 panic", st, err)
			}
			if lines := logs.lines(tc.callback + " bug"); len(lines) != 1 || !strings.Contains(lines[0], "stack=") ||
				!strings.Contains(lines[0], "process=2") {
				t.Errorf("log lines about the panic:\n%s\nwant one, naming process 2 and with the stack", strings.Join(lines, "\n"))
			}
			if tc.before > 0 {
				v, err := r.Process(ctx, "2")
				if err != nil || !strings.Contains(v.Panic, tc.callback+" bug") {
					t.Errorf("Process(2).Panic = %q, %v; want the panic", v.Panic, err)
				}
				list, err := r.Processes(ctx, "", 0)
				if err != nil || len(list) != 3 || !strings.Contains(list[1].Panic, tc.callback+" bug") || list[0].Panic != "" {
					t.Errorf("Processes: %+v, %v; want process 2 shown held", list, err)
				}
			}
			r.stop(t) // Run returns nil: the others went on

			broken.Store("")
			r = start(t, s, ackDef(&broken), pm.Options{Clock: clock, Deliver: sc.handle, Logger: logs.logger()})
			r.idle(t)
			if got := keys("2"); !slices.Equal(got, []string{"k1", "k2", "k3"}) {
				t.Errorf("process 2 after the fix issued %v, want [k1 k2 k3]", got)
			}
			for _, id := range []string{"1", "3"} {
				if got := keys(id); !slices.Equal(got, []string{"k1"}) {
					t.Errorf("process %s after the restart issued %v, want [k1]", id, got)
				}
			}
			calls := sc.got()
			slices.Sort(calls)
			if want := []string{"1/Ack", "2/Ack", "2/Ack", "2/Ack", "3/Ack"}; !slices.Equal(calls, want) {
				t.Errorf("delivered %v, want %v", calls, want)
			}
		})
	}
}

// TestADefinitionThatPanicsAtAFoldHoldsItsProcess: an Apply that panics at an event
// linked already (the definition changed since) panics whenever the process is folded
// from the store: the process is held at its next event while the others go on,
// Process and ProcessPage answer with the state before the panic and say why, and the
// next start with the definition fixed goes on where it stopped.
func TestADefinitionThatPanicsAtAFoldHoldsItsProcess(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	var broken atomic.Value
	broken.Store("")
	clock := pmtest.NewClock(time.Now())
	opts := pm.Options{Clock: clock, SnapshotEvery: -1}
	r := start(t, s, ackDef(&broken), opts)
	bad := goFact("2")
	bad.Data["bad"] = true
	for _, e := range []pmd.Event{goFact("1"), goFact("2"), bad} {
		appendFact(t, s, e)
	}
	r.idle(t)
	r.stop(t)

	broken.Store("Apply")
	var logs lockedLog
	opts.Logger = logs.logger()
	r = start(t, s, ackDef(&broken), opts)
	appendFact(t, s, goFact("2"))
	appendFact(t, s, goFact("1"))
	r.idle(t)
	commands := func(id string) int {
		t.Helper()
		v, err := r.Process(ctx, id)
		if err != nil {
			t.Fatalf("Process(%s): %v", id, err)
		}
		return len(v.Commands)
	}
	if n1, n2 := commands("1"), commands("2"); n1 != 2 || n2 != 2 {
		t.Errorf("processes 1 and 2 issued %d and %d commands, want 2 and 2 (held)", n1, n2)
	}
	v, err := r.Process(ctx, "2")
	if err != nil || !strings.Contains(v.Panic, "Apply panicked at version 2") || v.State != (acks{N: 1}) {
		t.Errorf("Process(2): panic %q, state %+v, %v; want the panic at version 2 and the state before it", v.Panic, v.State, err)
	}
	v, err = r.ProcessPage(ctx, "2", -1, 2)
	if err != nil || !strings.Contains(v.Panic, "Apply panicked") || len(v.Events) != 2 {
		t.Errorf("ProcessPage(2): panic %q, %d events, %v; want the panic and 2 events", v.Panic, len(v.Events), err)
	}
	if st, err := r.Stats(ctx); err != nil || st.Panics != 1 {
		t.Errorf("Stats: %+v, %v; want 1 panic", st, err)
	}
	if n := len(logs.lines("Apply bug")); n != 1 {
		t.Errorf("%d log lines about the panic, want 1", n)
	}
	r.stop(t)

	broken.Store("")
	r = start(t, s, ackDef(&broken), opts)
	r.idle(t)
	if n := commands("2"); n != 3 {
		t.Errorf("process 2 after the fix issued %d commands, want 3", n)
	}
}
