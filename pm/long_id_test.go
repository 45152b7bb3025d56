package pm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestAProcessIDLeavesRoomForItsOtherStreams: a process's id names its deliveries,
// snapshots and removal marker streams too, the longest of them "<Name>.deliveries$<id>".
// An id for which that is 256 bytes runs the whole life of a process (a snapshot, a
// delivered command, its removal); one byte more is no process id, in the runtime as in
// Memory: skipped and counted, while the manager goes on. The runtime used to accept ids
// up to a 256-byte process stream name, and stopped Run with an error at the first event
// of such a process (its snapshots stream name was refused), again after every restart.
func TestAProcessIDLeavesRoomForItsOtherStreams(t *testing.T) {
	longest := 256 - len("M.deliveries$")
	for _, tc := range []struct {
		name  string
		id    string
		valid bool
	}{
		{"longest", strings.Repeat("x", longest), true},
		{"one byte more", strings.Repeat("x", longest+1), false},
		{"process stream of 256 bytes", strings.Repeat("x", 256-len("M$")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := pm.NewMemory(matchDef("M"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mem.Handle(customer(tc.id)); errors.Is(err, pm.ErrInvalidProcessID) == tc.valid {
				t.Errorf("Memory.Handle: %v, want an invalid process id: %t", err, !tc.valid)
			}

			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			var got issued
			r := start(t, s, matchDef("M"), pm.Options{
				Clock: clock, Deliver: got.deliver, SnapshotEvery: 1,
				Retention: pm.Retention{Completed: keep},
			})
			appendFact(t, s, customer(tc.id))
			appendFact(t, s, caterer(tc.id))
			r.idle(t)
			st, err := r.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !tc.valid {
				if n := st.Unmatched["CustomerConfirmedMenu"] + st.Unmatched["CatererConfirmedMenu"]; n != 2 {
					t.Errorf("Stats.Unmatched = %v, want both facts", st.Unmatched)
				}
				if exists(t, s, "M$"+tc.id) {
					t.Error("the process stream was written")
				}
				return
			}
			if n := got.count(tc.id, "ConfirmOrder"); n != 1 {
				t.Fatalf("ConfirmOrder delivered %d times, want 1", n)
			}
			for _, stream := range []string{"M.snapshots$" + tc.id, "M.deliveries$" + tc.id} {
				if !exists(t, s, stream) {
					t.Errorf("%s was not written", stream)
				}
			}
			if _, err := r.Process(context.Background(), tc.id); err != nil {
				t.Errorf("Process: %v", err)
			}
			clock.Advance(keep)
			r.idle(t)
			if exists(t, s, "M$"+tc.id) || !exists(t, s, "M.removed$"+tc.id) {
				t.Error("retention did not remove the process")
			}
		})
	}
}
