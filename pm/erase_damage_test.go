package pm_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// singleDef is a definition whose process issues one command, Ack with the key k1, its
// data marked "ONLY-OWN-REC": the only record of the runtime's own in its stream.
func singleDef() pm.Definition[int] {
	return goDef("Single", func(int) []pm.Command {
		return []pm.Command{{Type: "Ack", Key: "k1", Data: map[string]any{"pad": pad, "mark": "ONLY-OWN-REC"}}}
	})
}

// TestErasedProcessWithADamagedRecordIsShownErased: a process whose stream was erased
// and whose only record of the runtime's own (the one that reads erased) is damaged is
// shown erased by Process, ProcessPage and List, with no state and completed, the
// record listed in Damaged, with or without snapshots: the views passed the damaged
// record over as one they cannot read, so the process was shown not erased, open, with
// the state the erasure was for.
func TestErasedProcessWithADamagedRecordIsShownErased(t *testing.T) {
	for _, every := range []int{-1, 2} {
		t.Run(fmt.Sprintf("SnapshotEvery %d", every), func(t *testing.T) {
			ctx := context.Background()
			opts := pm.Options{SnapshotEvery: every}
			s := damagedStore(t, func(s *pmd.Store) {
				r := start(t, s, singleDef(), opts)
				for range 4 {
					appendFact(t, s, goFact("1"))
					r.idle(t)
				}
				r.stop(t)
				if err := s.EraseStream(ctx, "Single$1"); err != nil {
					t.Fatal(err)
				}
				sealWithNoise(t, s)
			}, "ONLY-OWN-REC")
			m, err := pm.New(s, singleDef(), pm.Options{SnapshotEvery: every, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			p, err := m.Process(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			page, err := m.ProcessPage(ctx, "1", -1, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []struct {
				name string
				v    pm.Process
			}{{"Process", p}, {"ProcessPage", page}} {
				if !v.v.Erased || v.v.State != nil || v.v.Status != pm.StatusCompleted || !slices.Equal(v.v.Damaged, []int64{1}) {
					t.Errorf("%s: erased %t, state %v, status %s, damaged %v; want erased, no state, completed, damaged [1]",
						v.name, v.v.Erased, v.v.State, v.v.Status, v.v.Damaged)
				}
				for i, st := range v.v.States {
					if st != nil {
						t.Errorf("%s: state %v after event %d of an erased process", v.name, st, i)
					}
				}
			}
			list, err := m.List(ctx, pm.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Processes) != 1 || !list.Processes[0].Erased || list.Processes[0].Status != pm.StatusCompleted {
				t.Errorf("List: %+v; want process 1 erased, completed", list.Processes)
			}
		})
	}
}
