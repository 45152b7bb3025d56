package pm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

const keep = 24 * time.Hour

// issued records the commands handed to a Deliver handler, by process and type.
type issued struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *issued) deliver(_ context.Context, cmd pm.Command) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[cmd.ProcessID+" "+cmd.Type]++
	return nil
}

func (c *issued) count(pid, typ string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[pid+" "+typ]
}

// exists reports whether stream has a visible event.
func exists(t testing.TB, s *pmd.Store, stream string) bool {
	t.Helper()
	info, err := s.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	return info.Exists
}

func TestRetentionRemovesDoneProcesses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retention time.Duration
		facts     []pmd.Event
		wait      time.Duration // from the last fact to the process being done
		command   string        // what the process issued
		removed   bool
	}{
		{"completed", keep, []pmd.Event{customer("1"), caterer("1")}, 0, "ConfirmOrder", true},
		{"deadline fired", keep, []pmd.Event{customer("1")}, timeout + time.Minute, "CancelOrder", true},
		{"retention off", 0, []pmd.Event{customer("1"), caterer("1")}, 0, "ConfirmOrder", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			var got issued
			r := start(t, s, matchDef("M"), pm.Options{
				Clock: clock, Deliver: got.deliver, SnapshotEvery: 1,
				Retention: pm.Retention{Completed: tc.retention},
			})
			for _, f := range tc.facts {
				appendFact(t, s, f)
			}
			r.idle(t)
			clock.Advance(tc.wait)
			r.idle(t)
			if n := got.count("1", tc.command); n != 1 {
				t.Fatalf("%s delivered %d times before retention, want 1", tc.command, n)
			}
			if !exists(t, s, "M.snapshots$1") || !exists(t, s, "M.deliveries$1") {
				t.Fatal("the process has no snapshot or no deliveries to remove")
			}

			clock.Advance(keep - time.Minute)
			r.idle(t)
			if !exists(t, s, "M$1") {
				t.Fatal("the process was removed before its retention")
			}
			clock.Advance(time.Minute)
			r.idle(t)

			for _, stream := range []string{"M$1", "M.snapshots$1", "M.deliveries$1"} {
				if exists(t, s, stream) == tc.removed {
					t.Errorf("stream %s exists: %t, want %t", stream, !tc.removed, !tc.removed)
				}
			}
			if exists(t, s, "M.removed$1") != tc.removed {
				t.Errorf("marker exists: %t, want %t", !tc.removed, tc.removed)
			}
			if facts := processStream(t, s, "Facts"); len(facts) != len(tc.facts) {
				t.Errorf("%d facts left in their stream, want %d", len(facts), len(tc.facts))
			}
			st, err := r.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]uint64{true: 1}[tc.removed]; st.Removed != want {
				t.Errorf("Stats.Removed = %d, want %d", st.Removed, want)
			}
			if c := r.Counts(); c.Open+c.Completed+c.Expired != map[bool]int{false: 1}[tc.removed] {
				t.Errorf("Counts() = %+v after removal", c)
			}

			// A late fact of the process: a removed process starts nothing again.
			appendFact(t, s, caterer("1"))
			appendFact(t, s, customer("1"))
			r.idle(t)
			clock.Advance(2 * timeout)
			r.idle(t)
			if n := got.count("1", "ConfirmOrder") + got.count("1", "CancelOrder"); n != 1 {
				t.Errorf("%d commands delivered in all, want the 1 before retention", n)
			}
			if st, _ = r.Stats(context.Background()); st.Late != map[bool]uint64{true: 2}[tc.removed] {
				t.Errorf("Stats.Late = %d", st.Late)
			}
			if tc.removed && exists(t, s, "M$1") {
				t.Error("a late fact started the removed process again")
			}
		})
	}
}

func TestRetentionResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	clock := pmtest.NewClock(time.Now())
	opts := pm.Options{Clock: clock, Retention: pm.Retention{Completed: keep}}
	r := start(t, s, matchDef("M"), opts)
	for _, id := range []string{"early", "late"} {
		appendFact(t, s, customer(id))
		appendFact(t, s, caterer(id))
		r.idle(t)
		clock.Advance(time.Hour)
	}
	appendFact(t, s, customer("open"))
	r.idle(t)
	r.stop(t)

	// While no manager runs, "early" becomes due; "late" is due an hour later.
	clock.Advance(keep - 90*time.Minute)
	r = start(t, s, matchDef("M"), opts)
	r.idle(t)
	if exists(t, s, "M$early") || !exists(t, s, "M$late") || !exists(t, s, "M$open") {
		t.Fatalf("after restart: early %t, late %t, open %t; want only early removed",
			exists(t, s, "M$early"), exists(t, s, "M$late"), exists(t, s, "M$open"))
	}
	clock.Advance(time.Hour)
	r.idle(t)
	if exists(t, s, "M$late") {
		t.Fatal("late was not removed at its time after the restart")
	}
	if st, err := r.Stats(context.Background()); err != nil || st.Removed != 2 {
		t.Fatalf("Stats.Removed = %d, %v; want 2", st.Removed, err)
	}
	if got, want := r.Counts(), (pm.Counts{Open: 1}); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
	r.stop(t)

	// And after the next restart, a late fact of a removed process still starts nothing.
	before := s.LastPosition()
	appendFact(t, s, caterer("early"))
	r = start(t, s, matchDef("M"), opts)
	r.idle(t)
	if after := s.LastPosition(); after != before+1 {
		t.Errorf("a late fact made the manager write %d records", after-before-1)
	}
	if st, _ := r.Stats(context.Background()); st.Late != 1 {
		t.Errorf("Stats.Late = %d, want 1", st.Late)
	}
}

func TestRetentionWaitsForDelivery(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	fail := errors.New("receiver down")
	r := start(t, s, matchDef("M"), pm.Options{
		Clock: clock, MaxAttempts: 1, Retention: pm.Retention{Completed: keep},
		Deliver: func(context.Context, pm.Command) error { return fail },
	})
	appendFact(t, s, customer("1"))
	appendFact(t, s, caterer("1"))
	r.idle(t)
	if len(r.parked(t)) != 1 {
		t.Fatalf("parked %v, want the ConfirmOrder", r.parked(t))
	}
	clock.Advance(2 * keep)
	r.idle(t)
	if !exists(t, s, "M$1") {
		t.Fatal("a process with a parked command was removed")
	}
	if err := r.Skip(context.Background(), "1", r.parked(t)[0].Command.ID); err != nil {
		t.Fatal(err)
	}
	r.idle(t)
	clock.Advance(time.Minute)
	r.idle(t)
	if exists(t, s, "M$1") || exists(t, s, "M.deliveries$1") {
		t.Fatal("the process was not removed once its command was skipped")
	}
}

func TestNewRefusesNegativeRetention(t *testing.T) {
	s := openStore(t, t.TempDir())
	_, err := pm.New(s, matchDef("M"), pm.Options{Retention: pm.Retention{Completed: -time.Second}})
	if err == nil {
		t.Fatal("New accepted a negative Retention.Completed")
	}
}
