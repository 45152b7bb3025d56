package pm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestManagerGoesOnPastADamagedLinkedFact: a fact damaged after it was linked into its
// process stream (a bad sector under it) is passed over when the process is folded from
// the store again: without a snapshot the process goes on without the fact, as it does
// when the reader meets the damage first; a snapshot that covers it holds it still. The
// other processes are not held up. The fold used to fail, which stopped Run at the next event of the process,
// and again at every start (the reader reads that event again from the checkpoint).
func TestManagerGoesOnPastADamagedLinkedFact(t *testing.T) {
	const orders, victim = 5, 3
	for _, snapshotEvery := range []int{-1, 1} {
		t.Run(fmt.Sprintf("SnapshotEvery %d", snapshotEvery), func(t *testing.T) {
			opts := pm.Options{SnapshotEvery: snapshotEvery, Logger: quiet()}
			s := damagedStore(t, func(s *pmd.Store) {
				r := start(t, s, matchDef("CateringMatch"), opts)
				for i := range orders {
					e := customer(fmt.Sprint(i))
					e.Data["pad"], e.Data["mark"] = pad, fmt.Sprintf("MARK-c%02d-MARK", i)
					appendFact(t, s, e)
				}
				r.idle(t)
				r.stop(t)
				sealWithNoise(t, s)
			}, fmt.Sprintf("MARK-c%02d-MARK", victim))
			r := start(t, s, matchDef("CateringMatch"), opts)
			for i := range orders {
				appendFact(t, s, caterer(fmt.Sprint(i)))
			}
			r.idle(t)
			// The list folds every process, the victim's too.
			if list, err := r.Processes(context.Background(), "", 100); err != nil || len(list) != orders {
				t.Errorf("Processes: %d, %v; want all %d", len(list), err, orders)
			}
			for i := range orders {
				stream := fmt.Sprintf("CateringMatch$%d", i)
				// Version 0 is the customer's confirmation, damaged in the victim's.
				var events []pmd.Event
				for e, err := range s.ReadStream(context.Background(), stream, pmd.ReadOptions{From: 1}) {
					if err != nil {
						t.Fatal(err)
					}
					events = append(events, e)
				}
				links, cmds := tally(t, events)
				want := 1
				if i == victim && snapshotEvery < 0 {
					want = 0 // it went on without its customer's confirmation
				}
				// With a snapshot, the state it holds has the fact.
				if links != 1 || cmds["ConfirmOrder"] != want {
					t.Errorf("%s: %d links after the first, commands %v; want the caterer's and %d ConfirmOrder", stream, links, cmds, want)
				}
			}
		})
	}
}
