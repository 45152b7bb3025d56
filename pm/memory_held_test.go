package pm_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// wakeDef is a definition whose process sets the deadline Wake a minute after its first
// event. While broken is set, Decide panics for process "a".
func wakeDef(broken *atomic.Bool) pm.Definition[time.Time] {
	return pm.Definition[time.Time]{
		Name:      "Wakes",
		Handles:   []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) time.Time { return time.Time{} },
		Apply: func(s time.Time, e pmd.Event) time.Time {
			if e.Link && s.IsZero() {
				return e.Timestamp
			}
			return s
		},
		Decide: func(s time.Time) []pm.Command {
			return []pm.Command{{Type: "Wake", At: s.Add(time.Minute)}}
		},
	}
}

// TestMemoryAdvanceFiresTheOthersPastAHeldProcess: a process whose Decide panics at its
// deadline is held, and the other processes' deadlines due by then fire all the same,
// as in the runtime ("the other processes go on"); Advance returns their commands with
// the panic. It returned at the panic, so that a deadline of a process whose id sorted
// after never fired.
func TestMemoryAdvanceFiresTheOthersPastAHeldProcess(t *testing.T) {
	var broken atomic.Bool
	def := wakeDef(&broken)
	decide := def.Decide
	def.Decide = func(s time.Time) []pm.Command {
		if broken.Load() && s.Equal(panicky) {
			panic("Decide bug")
		}
		return decide(s)
	}
	m, err := pm.NewMemory(def, panicky)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := m.Handle(goFact(id)); err != nil {
			t.Fatal(err)
		}
		if id == "a" {
			// a's first event is at panicky; b's and c's a second later, due after a's.
			if _, err := m.Advance(time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	broken.Store(true)
	cmds, err := m.Advance(2 * time.Minute)
	var pe *pm.PanicError
	if !errors.As(err, &pe) || pe.Callback != "Decide" || pe.Stream != "Wakes$a" {
		t.Errorf("Advance: %v; want process a's Decide panic", err)
	}
	var fired []string
	for _, c := range cmds {
		fired = append(fired, c.ProcessID+"/"+c.Type)
	}
	if len(fired) != 2 || fired[0] != "b/Wake" || fired[1] != "c/Wake" {
		t.Errorf("Advance fired %v; want [b/Wake c/Wake]: the others go on past the held process", fired)
	}
	if _, err := m.Advance(time.Hour); !errors.As(err, &pe) {
		t.Errorf("Advance again: %v; want the held process's panic again", err)
	}
}

// panicky is when process a of TestMemoryAdvanceFiresTheOthersPastAHeldProcess starts.
var panicky = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// TestMemoryStateOfAnUnknownProcessCatchesAPanickingInit: State of a process with no
// event runs Init, and an Init that panics for it is caught, as the runtime's fold
// catches it: State says the process is unknown, with the zero state. The panic went
// up through State and ended the test binary.
func TestMemoryStateOfAnUnknownProcessCatchesAPanickingInit(t *testing.T) {
	var broken atomic.Value
	broken.Store("Init")
	m, err := pm.NewMemory(ackDef(&broken), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := m.State("2")
	if ok || s != (acks{}) {
		t.Errorf("State(2) = %+v, %t; want the zero state, unknown", s, ok)
	}
}
