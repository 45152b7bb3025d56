package pm

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// pendingLedger is a ledger with n pending deadlines, their due times drawn from few
// values so that ties, broken by key, are common.
func pendingLedger(r *rand.Rand, n int) *ledger {
	l := newLedger()
	l.pending = make(map[string]Deadline, n)
	base := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for i := range n {
		key := fmt.Sprintf("k%d", r.IntN(4*n+1))
		l.pending[key] = Deadline{Key: key, Due: base.Add(time.Duration(r.IntN(n/2+2)) * time.Minute), Type: "T" + fmt.Sprint(i)}
	}
	return &l
}

// TestFirstDeadlineIsWhatDeadlinesListsFirst checks the scan the runtime asks on every
// event against the sorted list the views show.
func TestFirstDeadlineIsWhatDeadlinesListsFirst(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 0))
	for _, n := range []int{0, 1, 2, 3, 10, 100} {
		for range 200 {
			l := pendingLedger(r, n)
			got, ok := l.firstDeadline()
			ds := l.deadlines()
			if ok != (len(ds) > 0) {
				t.Fatalf("%d pending: firstDeadline found %v, deadlines lists %d", len(l.pending), ok, len(ds))
			}
			if ok && got != ds[0] {
				t.Fatalf("%d pending: firstDeadline = %+v, deadlines lists %+v first", len(l.pending), got, ds[0])
			}
		}
	}
}

// BenchmarkFirstDeadline compares finding a process's first pending deadline by
// sorting them all (what the runtime did on every event until session 12) with
// scanning for it, for n pending deadlines.
//
//	go test -run '^$' -bench FirstDeadline ./pm/
func BenchmarkFirstDeadline(b *testing.B) {
	for _, n := range []int{1, 10, 1000} {
		l := pendingLedger(rand.New(rand.NewPCG(uint64(n), 0)), 4*n)
		for len(l.pending) > n {
			for k := range l.pending {
				delete(l.pending, k)
				break
			}
		}
		b.Run(fmt.Sprintf("pending=%d/sort", n), func(b *testing.B) {
			for b.Loop() {
				if ds := l.deadlines(); len(ds) != n {
					b.Fatal(len(ds))
				}
			}
		})
		b.Run(fmt.Sprintf("pending=%d/scan", n), func(b *testing.B) {
			for b.Loop() {
				if _, ok := l.firstDeadline(); !ok {
					b.Fatal("none")
				}
			}
		})
	}
}
