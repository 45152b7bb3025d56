package pm_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// greetings is the state of the process of TestQueuedFactErased: the names of the facts
// it folded, and how many it folded erased.
type greetings struct {
	Names  []string
	Erased int
}

// TestQueuedFactErased: a fact the subscription read with its data, which waits in a
// worker queue while its stream is erased, is folded and decided on erased, as a fold
// from the store has it: the process decided on its data, since the fold it was applied
// to (made after the erasure, or cached and checked since) counted the erasure already.
// The process goes on with the facts appended later.
func TestQueuedFactErased(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	entered, release := make(chan struct{}), make(chan struct{})
	read := make(chan struct{})
	var held, seen atomic.Bool
	def := pm.Definition[greetings]{
		Name: "Greeter", Handles: []string{"Named"},
		ProcessID: func(e pmd.Event) (string, bool) {
			// Runs in the subscription's reader, for the event it just read.
			if e.Data["name"] == "secret" && seen.CompareAndSwap(false, true) {
				close(read)
			}
			return pm.DataField("id")(e)
		},
		Init: func(string) greetings { return greetings{} },
		Apply: func(s greetings, e pmd.Event) greetings {
			if e.Type != "Named" {
				return s // its own commands
			}
			if e.Erased {
				s.Erased++
			}
			if n, _ := e.Data["name"].(string); n != "" {
				s.Names = append(slices.Clip(s.Names), n)
			}
			return s
		},
		Decide: func(s greetings) []pm.Command {
			if slices.Equal(s.Names, []string{"first"}) && held.CompareAndSwap(false, true) {
				close(entered)
				<-release // the worker holds on the first fact: the next one waits in its queue
			}
			var cmds []pm.Command
			for _, n := range s.Names {
				cmds = append(cmds, pm.Command{Type: "Greet", Key: n, Data: map[string]any{"name": n}})
			}
			return cmds
		},
	}
	r := start(t, s, def, pm.Options{})
	appendNamed(t, s, "Customer-A", "first")
	<-entered
	appendNamed(t, s, "Customer-B", "secret")
	<-read
	if err := s.EraseStream(ctx, "Customer-B"); err != nil {
		t.Fatal(err)
	}
	close(release)
	r.idle(t)
	appendNamed(t, s, "Customer-C", "later")
	r.idle(t)

	var greeted []string
	for _, e := range processStream(t, s, "Greeter$1") {
		if e.Link || e.Type != "Greet" {
			continue
		}
		n, _ := e.Data["name"].(string)
		greeted = append(greeted, n)
	}
	if slices.Contains(greeted, "secret") {
		t.Errorf("a command carries the data of a fact erased before it was decided on: %v", greeted)
	}
	if !slices.Equal(greeted, []string{"first", "later"}) {
		t.Errorf("commands issued for %v, want first and later", greeted)
	}
	v, err := r.Process(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	st := v.State.(greetings)
	if !slices.Equal(st.Names, []string{"first", "later"}) || st.Erased != 1 {
		t.Errorf("state %+v, want the names first and later and one fact erased", st)
	}
}
