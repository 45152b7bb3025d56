package pm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// damagedStore is a store whose log holds the events written by write, with a bit flipped
// in the first record holding marker, as a bad sector would leave it. It is opened with
// no scrub, so the damage is met by the reader under test first.
func damagedStore(t *testing.T, write func(s *pmd.Store), marker string) *pmd.Store {
	t.Helper()
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 16 << 10, Logger: quiet()}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	write(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, marker)
	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pad makes events big enough that the damaged one lies in a sealed segment.
var pad = strings.Repeat("p", 400)

// sealWithNoise appends events no manager handles, each padded, so that what was written
// before them lies in a sealed segment.
func sealWithNoise(t *testing.T, s *pmd.Store) {
	t.Helper()
	for i := range 60 {
		if _, err := s.Append(context.Background(), "Noise", pmd.Any, pmd.EventData{Type: "Noise", Data: map[string]any{"i": i, "pad": pad}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSubscriptionGoesOnPastADamagedRecord: a subscription that meets a damaged record
// skips it and delivers every event after it; the store reports the damage.
func TestSubscriptionGoesOnPastADamagedRecord(t *testing.T) {
	const n, victim = 60, 7
	s := damagedStore(t, func(s *pmd.Store) {
		for i := range n {
			_, err := s.Append(context.Background(), "S$1", pmd.Any, pmd.EventData{Type: "A",
				Data: map[string]any{"n": i, "pad": pad, "mark": fmt.Sprintf("MARK-%03d-MARK", i)}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}, fmt.Sprintf("MARK-%03d-MARK", victim))
	r := &receiver{}
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"A"}}, pm.SubscriptionOptions{Deliver: r.handle})
	sub.idle(t)
	var want []string
	for i := range n {
		if i != victim {
			want = append(want, fmt.Sprintf("A/%d", i))
		}
	}
	if got := r.got(); got != strings.Join(want, " ") {
		t.Fatalf("delivered %q, want every event but the damaged one", got)
	}
	if p := s.Problems(); len(p) != 1 || !strings.Contains(p[0], fmt.Sprintf("position %d", victim+1)) {
		t.Fatalf("store problems %q, want the damaged record at %d", p, victim+1)
	}
}

// TestManagerGoesOnPastADamagedRecord: a process manager that meets a damaged record
// skips it and handles every fact after it: the other processes complete, and the
// damaged fact's process goes on without it.
func TestManagerGoesOnPastADamagedRecord(t *testing.T) {
	const orders = 30
	fact := func(e pmd.Event, mark string) pmd.Event {
		e.Data["pad"], e.Data["mark"] = pad, mark
		return e
	}
	s := damagedStore(t, func(s *pmd.Store) {
		for i := range orders {
			appendFact(t, s, fact(customer(fmt.Sprint(i)), fmt.Sprintf("MARK-c%02d-MARK", i)))
		}
		for i := range orders {
			appendFact(t, s, fact(caterer(fmt.Sprint(i)), fmt.Sprintf("MARK-k%02d-MARK", i)))
		}
	}, "MARK-c03-MARK")
	r := start(t, s, matchDef("CateringMatch"), pm.Options{Workers: 2})
	r.idle(t)
	for i := range orders {
		links, cmds := tally(t, processStream(t, s, fmt.Sprintf("CateringMatch$%d", i)))
		want := 1
		if i == 3 {
			want = 0 // its customer's confirmation is the damaged record
		}
		if cmds["ConfirmOrder"] != want || links != 1+want {
			t.Errorf("order %d: %d links, commands %v; want %d ConfirmOrder", i, links, cmds, want)
		}
	}
}

// TestManagerWhoseLastFactIsDamaged: the damaged record is the last fact the manager
// handles. WaitIdle and the deadline timer, which wait for the reader to reach the last
// handled event, see it skip that record: deadlines fire, and the manager goes idle.
func TestManagerWhoseLastFactIsDamaged(t *testing.T) {
	const orders = 10
	start0 := time.Now()
	s := damagedStore(t, func(s *pmd.Store) {
		for i := range orders {
			e := customer(fmt.Sprint(i))
			e.Data["mark"] = fmt.Sprintf("MARK-c%02d-MARK", i)
			appendFact(t, s, e)
		}
		// Events it does not handle, so that the damaged fact is in a sealed segment.
		for i := range 60 {
			if _, err := s.Append(context.Background(), "Noise", pmd.Any, pmd.EventData{Type: "Noise", Data: map[string]any{"i": i, "pad": pad}}); err != nil {
				t.Fatal(err)
			}
		}
	}, fmt.Sprintf("MARK-c%02d-MARK", orders-1))
	clock := pmtest.NewClock(start0)
	r := start(t, s, matchDef("CateringMatch"), pm.Options{Clock: clock})
	r.idle(t)
	clock.Advance(timeout + time.Hour)
	r.idle(t)
	for i := range orders {
		_, cmds := tally(t, processStream(t, s, fmt.Sprintf("CateringMatch$%d", i)))
		want := 1
		if i == orders-1 {
			want = 0 // its only fact is the damaged record: no process
		}
		if cmds["CancelOrder"] != want {
			t.Errorf("order %d: commands %v, want %d CancelOrder", i, cmds, want)
		}
	}
}

// TestSubscriptionWhoseLastEventIsDamaged: the damaged record is the newest the
// subscription matches; WaitIdle, which waits for the newest, sees it skipped.
func TestSubscriptionWhoseLastEventIsDamaged(t *testing.T) {
	const n = 10
	s := damagedStore(t, func(s *pmd.Store) {
		for i := range n {
			if _, err := s.Append(context.Background(), "S$1", pmd.Any, pmd.EventData{Type: "A",
				Data: map[string]any{"n": i, "mark": fmt.Sprintf("MARK-%03d-MARK", i)}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 60 { // not matched: the damaged event is in a sealed segment
			if _, err := s.Append(context.Background(), "Noise", pmd.Any, pmd.EventData{Type: "Noise", Data: map[string]any{"i": i, "pad": pad}}); err != nil {
				t.Fatal(err)
			}
		}
	}, fmt.Sprintf("MARK-%03d-MARK", n-1))
	r := &receiver{}
	sub := startSub(t, s, "billing", pm.Filter{Types: []string{"A"}}, pm.SubscriptionOptions{Deliver: r.handle})
	sub.idle(t)
	var want []string
	for i := range n - 1 {
		want = append(want, fmt.Sprintf("A/%d", i))
	}
	if got := r.got(); got != strings.Join(want, " ") {
		t.Fatalf("delivered %q, want every event but the damaged last one", got)
	}
	// Its position passes the damaged record: no lag, and a restart does not meet it.
	if st := sub.status(t); st.Position != n+1 || st.Lag != 0 {
		t.Fatalf("status %+v, want position %d (past the damaged record at %d), no lag", st, n+1, n)
	}
}
