package pm_test

import (
	"context"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestErasedUncachedProcessCounts: a process the manager does not have cached (no cache,
// or evicted by others) and finds erased when it folds it again moves in Counts from
// where Counts had it (open, expired or completed) to completed at once, as a restart
// would count it, whether a late event or its deadline makes the manager fold it,
// however often it folds it again, and retention removing it leaves Counts at zero, not
// negative.
func TestErasedUncachedProcessCounts(t *testing.T) {
	for _, cache := range []struct {
		name string
		size int
	}{{"no cache", -1}, {"evicted", 1}} {
		for _, tc := range []struct {
			name string
			// first is the fact that starts the process: OrderPlaced leaves it open
			// with its deadline pending, OrderPaid completes it at once (a command
			// issued, nothing pending).
			first string
			// expire: the process's deadline fires before the erasure, which leaves it
			// expired with nothing pending.
			expire bool
			before pm.Counts
		}{
			{"open with a deadline pending", "OrderPlaced", false, pm.Counts{Open: 1}},
			{"expired", "OrderPlaced", true, pm.Counts{Expired: 1}},
			{"completed", "OrderPaid", false, pm.Counts{Completed: 1}},
		} {
			t.Run(cache.name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				s := openStore(t, t.TempDir())
				clock := pmtest.NewClock(time.Now())
				var got issued
				// Kept longer than the deadline the expired case waits for: an erased
				// process is removed that long after the store's timestamp of its last
				// record, which the test clock does not move.
				opts := pm.Options{
					Clock: clock, Deliver: got.deliver, SnapshotEvery: -1, CacheSize: cache.size,
					Retention: pm.Retention{Completed: 2 * timeout},
				}
				r := start(t, s, purchaseDef(), opts)
				appendFact(t, s, purchaseFact(tc.first, "1"))
				r.idle(t)
				if tc.expire {
					clock.Advance(timeout + time.Minute)
					r.idle(t)
				}
				// Process 2, paid with no order placed, ships at once (completed, with no
				// deadline to race the clock moved past it): handling it evicts process 1
				// from a cache of one.
				appendFact(t, s, purchaseFact("OrderPaid", "2"))
				r.idle(t)
				want := tc.before
				want.Completed++
				if c := r.Counts(); c != want {
					t.Fatalf("Counts before the erasure = %+v, want %+v", c, want)
				}
				if err := s.EraseStream(ctx, "O$1"); err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					if i == 2 {
						// Loaded at the start, the erased process is not moved again.
						r.stop(t)
						r = start(t, s, purchaseDef(), opts)
					}
					appendFact(t, s, purchaseFact("OrderPaid", "1"))
					r.idle(t)
					if c := r.Counts(); c != (pm.Counts{Completed: 2}) {
						t.Errorf("Counts after late event %d of the erased process = %+v, want 2 completed", i+1, c)
					}
				}
				clock.Advance(3 * timeout)
				r.idle(t)
				if exists(t, s, "O$1") || exists(t, s, "O$2") {
					t.Fatal("retention removed not both processes")
				}
				if c := r.Counts(); c != (pm.Counts{}) {
					t.Errorf("Counts after retention removed both processes = %+v, want zero", c)
				}
			})
		}
	}
}

// TestErasedProcessFoundByItsDeadlineCounts: an uncached process with a deadline pending
// that the manager first folds again for that deadline, after its stream was erased,
// moves to completed in Counts then.
func TestErasedProcessFoundByItsDeadlineCounts(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	var got issued
	r := start(t, s, purchaseDef(), pm.Options{Clock: clock, Deliver: got.deliver, SnapshotEvery: -1, CacheSize: -1})
	placeThenErase(t, s, r)
	clock.Advance(timeout + time.Minute)
	r.idle(t)
	if c := r.Counts(); c != (pm.Counts{Completed: 1}) {
		t.Errorf("Counts after the deadline of the erased process came = %+v, want 1 completed", c)
	}
	if n := got.count("1", "Remind"); n != 0 {
		t.Errorf("Remind delivered %d times to the erased process, want 0", n)
	}
}

// placeThenErase places order 1 with r's manager (process 1, open with its deadline
// pending), checks that Counts has it open, and erases its stream O$1.
func placeThenErase(t *testing.T, s *pmd.Store, r *running) {
	t.Helper()
	appendFact(t, s, purchaseFact("OrderPlaced", "1"))
	r.idle(t)
	if c := r.Counts(); c != (pm.Counts{Open: 1}) {
		t.Fatalf("Counts before the erasure = %+v, want 1 open", c)
	}
	if err := s.EraseStream(context.Background(), "O$1"); err != nil {
		t.Fatal(err)
	}
}
