package pm_test

import (
	"context"
	"testing"

	"github.com/pmd-dev/pmd/pm"
)

// TestErasedProcessViewHasNoState: the view of a process whose stream was erased (Process
// and ProcessPage, what the API, the CLI and the web page show) says it is erased and
// shows no state, now or after any of its events: the state was folded from what the
// erasure was for, and the process it was the state of ended. A process not erased keeps
// its state.
func TestErasedProcessViewHasNoState(t *testing.T) {
	for _, snapshots := range []int{-1, 1} {
		ctx := context.Background()
		s := openStore(t, t.TempDir())
		r := start(t, s, purchaseDef(), pm.Options{SnapshotEvery: snapshots, Deliver: (&issued{}).deliver})
		for _, id := range []string{"1", "2"} {
			appendFact(t, s, purchaseFact("OrderPlaced", id))
		}
		r.idle(t)
		if err := s.EraseStream(ctx, "O$1"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"1", "2"} {
			erased := id == "1"
			full, err := r.Process(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			page, err := r.ProcessPage(ctx, id, -1, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []struct {
				name string
				v    pm.Process
			}{{"Process", full}, {"ProcessPage", page}} {
				if v.v.Erased != erased {
					t.Fatalf("snapshots %d: %s of process %s: erased %t, want %t", snapshots, v.name, id, v.v.Erased, erased)
				}
				if len(v.v.States) != len(v.v.Events) || len(v.v.Events) == 0 {
					t.Fatalf("snapshots %d: %s of process %s: %d states for %d events", snapshots, v.name, id, len(v.v.States), len(v.v.Events))
				}
				if !erased {
					if st, ok := v.v.State.(purchase); !ok || !st.Placed {
						t.Errorf("snapshots %d: %s of process %s, not erased: state %#v, want the fold", snapshots, v.name, id, v.v.State)
					}
					continue
				}
				if v.v.State != nil {
					t.Errorf("snapshots %d: %s of the erased process: state %#v, want none", snapshots, v.name, v.v.State)
				}
				for i, st := range v.v.States {
					if st != nil {
						t.Errorf("snapshots %d: %s of the erased process: state after version %d is %#v, want none", snapshots, v.name, v.v.Events[i].Version, st)
					}
				}
				for _, e := range v.v.Events {
					if !e.Link && (!e.Erased || len(e.Data) > 0 || len(e.Metadata) > 0) {
						t.Errorf("snapshots %d: %s of the erased process: its record at version %d reads %v %v", snapshots, v.name, e.Version, e.Data, e.Metadata)
					}
				}
				if len(v.v.Commands) != 0 || len(v.v.Deadlines) != 0 || v.v.Snapshot != nil {
					t.Errorf("snapshots %d: %s of the erased process: commands %v, deadlines %v, snapshot %v; want none",
						snapshots, v.name, v.v.Commands, v.v.Deadlines, v.v.Snapshot)
				}
			}
		}
		r.stop(t)
	}
}
