package pm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// snapState is the state of snapDef: the events linked, and a mark of the last one that
// only its snapshots hold.
type snapState struct {
	N    int
	Mark string
}

// snapDef issues the command Ack with the key k<n> at the n-th event of a process.
func snapDef() pm.Definition[snapState] {
	return pm.Definition[snapState]{
		Name:      "Snapped",
		Handles:   []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) snapState { return snapState{} },
		Apply: func(s snapState, e pmd.Event) snapState {
			if e.Link {
				s.N++
				s.Mark = fmt.Sprintf("SNAP-%d-SNAP", s.N)
			}
			return s
		},
		Decide: func(s snapState) []pm.Command {
			var out []pm.Command
			for i := 1; i <= s.N; i++ {
				out = append(out, pm.Command{Type: "Ack", Key: fmt.Sprintf("k%d", i)})
			}
			return out
		},
	}
}

// TestADamagedSnapshotOnlyMakesAFoldLonger: a damaged snapshot record (a bad sector)
// is passed over, logged, for the snapshot before it or the first event, as the package
// doc says: the fold used to fail on it, which stopped Run at the next event of the
// process, and again at every start, and failed the views of the process.
func TestADamagedSnapshotOnlyMakesAFoldLonger(t *testing.T) {
	ctx := context.Background()
	opts := pm.Options{SnapshotEvery: 2}
	s := damagedStore(t, func(s *pmd.Store) {
		r := start(t, s, snapDef(), opts)
		for range 3 {
			appendFact(t, s, goFact("1"))
			r.idle(t)
		}
		r.stop(t)
		sealWithNoise(t, s)
	}, "SNAP-3-SNAP")
	var logs lockedLog
	opts.Logger = logs.logger()
	r := start(t, s, snapDef(), opts)
	appendFact(t, s, goFact("1"))
	r.idle(t)
	v, err := r.ProcessPage(ctx, "1", -1, 100)
	if err != nil || len(v.Commands) != 4 || v.State != (snapState{N: 4, Mark: "SNAP-4-SNAP"}) {
		t.Fatalf("ProcessPage: %d commands, state %+v, %v; want 4 commands and the 4th event folded", len(v.Commands), v.State, err)
	}
	if list, err := r.Processes(ctx, "", 0); err != nil || len(list) != 1 {
		t.Errorf("Processes: %+v, %v; want the process", list, err)
	}
	r.stop(t)
	if n := len(logs.lines("damaged snapshot")); n == 0 {
		t.Errorf("the damaged snapshot is not logged:\n%s", strings.Join(logs.lines("snapshot"), "\n"))
	}
}
