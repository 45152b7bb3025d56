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

// linkedPositions is the positions of the facts linked into a process stream, in the
// stream's order.
func linkedPositions(t testing.TB, s *pmd.Store, stream string) []uint64 {
	t.Helper()
	var out []uint64
	for _, e := range processStream(t, s, stream) {
		if e.Link {
			out = append(out, e.Position)
		}
	}
	return out
}

// waitHeld waits for the manager to have handled every event before the one its
// ProcessID panicked at, and checks that WaitIdle then says so with the panic.
func waitHeld(t testing.TB, r *running, callback string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.WaitIdle(ctx)
	var pe *pm.PanicError
	if !errors.As(err, &pe) || pe.Callback != callback || !errors.Is(err, pm.ErrInvalidDefinition) {
		t.Fatalf("WaitIdle: %v; want the %s panic the manager is held at", err, callback)
	}
}

// TestAPanickingProcessIDHoldsTheManager: an event that ProcessID (or NoProcessID)
// panics at belongs to a process nobody knows, so no later event may be handled before
// it: the manager handles nothing past it until Run starts again (WaitIdle and
// WaitHandled say so), and the next start handles it in log order. Only the event was
// held, and the later events of its process were linked before it, out of order; a
// retention that removed its process meanwhile had it skipped as late at the next
// start, lost.
func TestAPanickingProcessIDHoldsTheManager(t *testing.T) {
	for _, callback := range []string{"ProcessID", "NoProcessID"} {
		t.Run(callback, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			var broken atomic.Value
			broken.Store(callback)
			var logs lockedLog
			clock := pmtest.NewClock(time.Now())
			opts := pm.Options{Clock: clock, Logger: logs.logger()}
			bad := goFact("2")
			bad.Data["bad"] = true
			for _, e := range []pmd.Event{goFact("2"), goFact("1"), goFact("3"), bad, goFact("2"), goFact("1")} {
				appendFact(t, s, e) // positions 1 to 6
			}
			r := start(t, s, ackDef(&broken), opts)
			waitHeld(t, r, callback)
			hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := r.WaitHandled(hctx, 3); err != nil {
				t.Errorf("WaitHandled(3): %v; want nil, the events before the held one are handled", err)
			}
			var pe *pm.PanicError
			if err := r.WaitHandled(hctx, 5); !errors.As(err, &pe) {
				t.Errorf("WaitHandled(5): %v; want the panic", err)
			}
			cancel()
			if got := linkedPositions(t, s, "Acks$2"); !slices.Equal(got, []uint64{1}) {
				t.Errorf("while held, Acks$2 links %v, want [1]: nothing past the held event", got)
			}
			if got := linkedPositions(t, s, "Acks$1"); !slices.Equal(got, []uint64{2}) {
				t.Errorf("while held, Acks$1 links %v, want [2]", got)
			}
			st, err := r.Stats(ctx)
			if err != nil || st.Panics != 1 || st.Lag != 3 {
				t.Errorf("Stats: %+v, %v; want 1 panic and a lag of 3", st, err)
			}
			if lines := logs.lines(callback + " bug"); len(lines) != 1 || !strings.Contains(lines[0], "stack=") || !strings.Contains(lines[0], "position=4") {
				t.Errorf("log lines about the panic:\n%s\nwant one, with the position and the stack", strings.Join(lines, "\n"))
			}
			r.stop(t)

			broken.Store("")
			r = start(t, s, ackDef(&broken), opts)
			r.idle(t)
			for stream, want := range map[string][]uint64{"Acks$1": {2, 6}, "Acks$2": {1, 4, 5}, "Acks$3": {3}} {
				if got := linkedPositions(t, s, stream); !slices.Equal(got, want) {
					t.Errorf("after the fix, %s links %v, want %v in log order", stream, got, want)
				}
			}
		})
	}
}

// TestAPanickingProcessIDLosesNoEventToRetention: a process that is done, and due for
// removal while the manager is held at its next event, is not removed then: the next
// start handles the event (its command is issued) before it removes the process. It
// was removed, and the event skipped as late, never handled.
func TestAPanickingProcessIDLosesNoEventToRetention(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	var broken atomic.Value
	broken.Store("ProcessID")
	clock := pmtest.NewClock(time.Now())
	var sc script
	opts := pm.Options{Clock: clock, Deliver: sc.handle, Retention: pm.Retention{Completed: time.Hour}}
	r := start(t, s, ackDef(&broken), opts)
	appendFact(t, s, goFact("2"))
	r.idle(t) // process 2 is done: it issued its command
	bad := goFact("2")
	bad.Data["bad"] = true
	appendFact(t, s, bad)
	waitHeld(t, r, "ProcessID")
	clock.Advance(2 * time.Hour)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_ = r.WaitIdle(wctx) // the removal, if it is made, is made by then
	cancel()
	r.stop(t)

	broken.Store("")
	r = start(t, s, ackDef(&broken), opts)
	r.idle(t)
	st, err := r.Stats(ctx)
	if err != nil || st.Late != 0 {
		t.Errorf("Stats: %+v, %v; want nothing late", st, err)
	}
	if got, want := sc.got(), []string{"2/Ack", "2/Ack"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v: the held event issues its command at the next start", got, want)
	}
}

// TestManyHeldProcessesAreLoggedOnceAMinute: when many processes panic (an event type
// the definition does not expect, everywhere), the stack is logged at most once a
// minute, the line saying how many were not logged since, and the manager keeps of
// each panic only what the views show, not its stack. Each was logged with its stack,
// which each held process kept until Run stopped.
func TestManyHeldProcessesAreLoggedOnceAMinute(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	var broken atomic.Value
	broken.Store("Apply")
	var logs lockedLog
	clock := pmtest.NewClock(time.Now())
	r := start(t, s, ackDef(&broken), pm.Options{Clock: clock, Logger: logs.logger()})
	badFact := func(id string) {
		e := goFact(id)
		e.Data["bad"] = true
		appendFact(t, s, e)
	}
	ids := []string{"a", "b", "c", "d", "e"}
	for _, id := range ids {
		appendFact(t, s, goFact(id))
		badFact(id)
	}
	r.idle(t)
	if lines := logs.lines("Apply bug"); len(lines) != 1 || !strings.Contains(lines[0], "stack=") {
		t.Errorf("%d log lines about the panics (with the stack: %t), want one, with the stack", len(lines), strings.Contains(strings.Join(lines, ""), "stack="))
	}
	st, err := r.Stats(ctx)
	if err != nil || st.Panics != uint64(len(ids)) {
		t.Errorf("Stats: %+v, %v; want %d panics", st, err, len(ids))
	}
	held := r.HeldPanics()
	if len(held) != len(ids) {
		t.Errorf("%d processes held, want %d", len(held), len(ids))
	}
	for id, pe := range held {
		if _, ok := pe.Value.(string); pe.Stack != "" || !ok || pe.Callback != "Apply" {
			t.Errorf("held %s: callback %q, value %#v, %d bytes of stack; want the callback and the value as a string, without the stack", id, pe.Callback, pe.Value, len(pe.Stack))
		}
	}
	for _, id := range ids {
		v, err := r.Process(ctx, id)
		if err != nil || !strings.Contains(v.Panic, "Apply panicked at version 2: Apply bug") {
			t.Errorf("Process(%s).Panic = %q, %v; want the panic", id, v.Panic, err)
		}
	}

	clock.Advance(2 * time.Minute)
	badFact("f")
	r.idle(t)
	if lines := logs.lines("Apply bug"); len(lines) != 2 || !strings.Contains(lines[1], "suppressed=4") {
		t.Errorf("%d log lines about the panics a minute later (the last says %q); want a second, counting the 4 not logged", len(lines), lines[len(lines)-1][:min(len(lines[len(lines)-1]), 300)])
	}
}

// TestApplyPanickingAtACommandJustWrittenHoldsItsProcess: an Apply that panics at a
// command record the process just wrote (read back to be folded as a replay would)
// holds the process there: no snapshot is taken of the half-applied state and nothing
// more is decided on it; the command counts as issued, and after a start with the
// definition fixed each command is delivered once.
func TestApplyPanickingAtACommandJustWrittenHoldsItsProcess(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	var broken atomic.Bool
	broken.Store(true)
	def := pm.Definition[acks]{
		Name:      "Cmds",
		Handles:   []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) acks { return acks{} },
		Apply: func(s acks, e pmd.Event) acks {
			if !e.Link && e.Type == "Ack" && broken.Load() {
				panic("Apply bug at a command")
			}
			if e.Link {
				s.N++
			}
			return s
		},
		Decide: func(s acks) []pm.Command {
			var out []pm.Command
			for i := 1; i <= s.N; i++ {
				out = append(out, pm.Command{Type: "Ack", Key: "k" + string(rune('0'+i))})
			}
			return out
		},
	}
	var sc script
	opts := pm.Options{SnapshotEvery: 1, Deliver: sc.handle}
	r := start(t, s, def, opts)
	appendFact(t, s, goFact("p"))
	appendFact(t, s, goFact("p"))
	r.idle(t)
	if n := len(processStream(t, s, "Cmds.snapshots$p")); n != 0 {
		t.Errorf("%d snapshots of the held process, want none", n)
	}
	if links, cmds := tally(t, processStream(t, s, "Cmds$p")); links != 1 || cmds["Ack"] != 1 {
		t.Errorf("Cmds$p: %d links and %d commands, want 1 and 1: nothing more after the panic", links, cmds["Ack"])
	}
	if st, err := r.Stats(ctx); err != nil || st.Panics != 1 {
		t.Errorf("Stats: %+v, %v; want 1 panic", st, err)
	}
	r.stop(t)

	broken.Store(false)
	r = start(t, s, def, opts)
	r.idle(t)
	if got, want := sc.got(), []string{"p/Ack", "p/Ack"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v: each command once", got, want)
	}
	v, err := r.Process(ctx, "p")
	if err != nil || v.State != (acks{N: 2}) || len(v.Commands) != 2 || v.Panic != "" {
		t.Errorf("Process(p): state %+v, %d commands, panic %q, %v; want 2 links and 2 commands", v.State, len(v.Commands), v.Panic, err)
	}
}

// TestMemoryHoldsAPanickedProcess: in Memory as in the runtime, a process whose Apply or
// Decide panicked is held: its later events and deadlines return the same *PanicError,
// and nothing more is decided for it. Memory forgot the panic, and went on deciding on
// the state before it.
func TestMemoryHoldsAPanickedProcess(t *testing.T) {
	for _, callback := range []string{"Apply", "Decide"} {
		t.Run(callback, func(t *testing.T) {
			var broken atomic.Value
			broken.Store(callback)
			m, err := pm.NewMemory(ackDef(&broken), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Handle(goFact("2")); err != nil {
				t.Fatal(err)
			}
			bad := goFact("2")
			bad.Data["bad"] = true
			_, err = m.Handle(bad)
			var first *pm.PanicError
			if !errors.As(err, &first) || first.Callback != callback {
				t.Fatalf("Handle(bad): %v; want the %s panic", err, callback)
			}
			cmds, err := m.Handle(goFact("2"))
			var again *pm.PanicError
			if !errors.As(err, &again) || again != first || len(cmds) != 0 {
				t.Errorf("Handle after the panic: %v, %v; want no command and the same panic", cmds, err)
			}
			if _, err := m.Handle(goFact("1")); err != nil {
				t.Errorf("Handle of another process: %v", err)
			}
			if got, _ := m.Process("2"); !strings.Contains(got.Panic, callback+" bug") || len(got.Commands) != 1 {
				t.Errorf("Process(2): panic %q, %d commands; want the panic and the one command before it", got.Panic, len(got.Commands))
			}
		})
	}
}

// TestMemoryHoldsAProcessPanickedAtItsFirstEvent: a process whose first event makes
// Init, Apply or Decide panic is held as one panicking later is, and as the runtime
// holds it: its later events return the same *PanicError and decide nothing, and
// Process and Processes show it with the panic. Memory dropped it, so that its next
// event started it again (and, for Apply and Decide, issued what the runtime holds).
func TestMemoryHoldsAProcessPanickedAtItsFirstEvent(t *testing.T) {
	for _, callback := range []string{"Init", "Apply", "Decide"} {
		t.Run(callback, func(t *testing.T) {
			var broken atomic.Value
			broken.Store(callback)
			m, err := pm.NewMemory(ackDef(&broken), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			bad := goFact("2")
			bad.Data["bad"] = true
			cmds, err := m.Handle(bad)
			var first *pm.PanicError
			if !errors.As(err, &first) || first.Callback != callback || len(cmds) != 0 {
				t.Fatalf("Handle(bad): %v, %v; want no command and the %s panic", cmds, err, callback)
			}
			for i := range 2 {
				cmds, err := m.Handle(goFact("2"))
				var again *pm.PanicError
				if !errors.As(err, &again) || again != first || len(cmds) != 0 {
					t.Errorf("Handle %d after the panic: %v, %v; want no command and the same panic", i+1, cmds, err)
				}
			}
			if cmds, err := m.Advance(time.Hour); err != nil || len(cmds) != 0 {
				t.Errorf("Advance: %v, %v; want nothing", cmds, err)
			}
			if _, err := m.Handle(goFact("1")); err != nil {
				t.Errorf("Handle of another process: %v", err)
			}
			got, ok := m.Process("2")
			if !ok || !strings.Contains(got.Panic, callback+" bug") || len(got.Events) != 0 || len(got.Commands) != 0 {
				t.Errorf("Process(2): %t, panic %q, %d events, %d commands; want it held: the panic, no event, no command",
					ok, got.Panic, len(got.Events), len(got.Commands))
			}
			if ids := m.Processes(); !slices.Equal(ids, []string{"1", "2"}) {
				t.Errorf("Processes() = %v, want [1 2]", ids)
			}
			if _, ok := m.State("2"); !ok {
				t.Error("State(2) says the process is unknown; want it known, held")
			}
			if n := len(m.Commands()); n != 1 {
				t.Errorf("%d commands issued, want 1 (process 1's)", n)
			}
		})
	}
}
