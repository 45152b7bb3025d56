package pm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

type cardState struct{ N int }

// TestErasedProcessShowsNoPanic: the panic a process is held for quotes what the
// definition's callback panicked with, often the event's data; once the process's stream
// is erased, its views show no panic, as they show no state: the erasure was for that
// data, and the process has ended.
func TestErasedProcessShowsNoPanic(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	def := pm.Definition[cardState]{
		Name: "Card", Handles: []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) cardState { return cardState{} },
		Apply: func(st cardState, e pmd.Event) cardState {
			if e.Link && e.Data["card"] != nil {
				panic(fmt.Sprint("bad card ", e.Data["card"]))
			}
			st.N++
			return st
		},
		Decide: func(cardState) []pm.Command { return []pm.Command{{Type: "Ack", Key: "k1"}} },
	}
	var sc script
	r := start(t, s, def, pm.Options{Clock: pmtest.NewClock(time.Now()), Deliver: sc.handle})
	appendFact(t, s, goFact("1"))
	r.idle(t)
	card := goFact("1")
	card.Data["card"] = "4111-1111-1111-1111"
	appendFact(t, s, card)
	r.idle(t)
	if v, err := r.Process(ctx, "1"); err != nil || !strings.Contains(v.Panic, "4111") {
		t.Fatalf("before the erasure: panic %q, %v; want the held process's panic", v.Panic, err)
	}
	if err := s.EraseStream(ctx, "Card$1"); err != nil {
		t.Fatal(err)
	}
	v, err := r.Process(ctx, "1")
	if err != nil || !v.Erased || v.Panic != "" {
		t.Errorf("Process: erased %v, panic %q, %v; want erased and no panic", v.Erased, v.Panic, err)
	}
	page, err := r.ProcessPage(ctx, "1", -1, 0)
	if err != nil || !page.Erased || page.Panic != "" {
		t.Errorf("ProcessPage: erased %v, panic %q, %v; want erased and no panic", page.Erased, page.Panic, err)
	}
	list, err := r.Processes(ctx, "", 0)
	if err != nil || len(list) != 1 || !list[0].Erased || list[0].Panic != "" {
		t.Errorf("Processes: %+v, %v; want the one process erased with no panic", list, err)
	}
}
