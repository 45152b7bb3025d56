package pm_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// panicOnce panics at the first call for a key, and answers nil after.
type panicOnce struct {
	mu   sync.Mutex
	done map[string]bool
}

func (p *panicOnce) call(key string) {
	p.mu.Lock()
	first := !p.done[key]
	if p.done == nil {
		p.done = map[string]bool{}
	}
	p.done[key] = true
	p.mu.Unlock()
	if first {
		panic("receiver bug for " + key)
	}
}

// TestAPanickingHandlerFailsTheAttempt: a handler that panics fails that attempt, which
// is recorded with the panic's value and retried with back-off like any failure, while
// the other processes' commands go out; the program goes on. A panic used to end the
// program, and the restart handed the same command over at once, to panic again.
func TestAPanickingHandlerFailsTheAttempt(t *testing.T) {
	t.Run("commands", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		clock := pmtest.NewClock(time.Now())
		var p panicOnce
		var sc script
		r := start(t, s, stepsDef("Steps"), pm.Options{Clock: clock, Deliver: func(ctx context.Context, c pm.Command) error {
			if c.ProcessID == "1" && c.Type == "Step1" {
				p.call("1/Step1")
			}
			return sc.handle(ctx, c)
		}})
		appendFact(t, s, goFact("1"))
		appendFact(t, s, goFact("2"))
		r.idle(t)
		if got, want := outcomes(t, r, "2"), "Step1:delivered Step2:delivered Step3:delivered"; got != want {
			t.Errorf("process 2: %s, want %s", got, want)
		}
		ds, err := r.Deliveries(context.Background(), "1")
		if err != nil || len(ds) != 1 || ds[0].Outcome != pm.OutcomeFailed || !strings.Contains(ds[0].Err, "receiver bug for 1/Step1") {
			t.Fatalf("deliveries of 1: %+v, %v; want one failure naming the panic", ds, err)
		}
		advanceToRetry(t, r, clock, "1")
		r.idle(t)
		if got, want := outcomes(t, r, "1"), "Step1:failed Step1:delivered Step2:delivered Step3:delivered"; got != want {
			t.Errorf("process 1: %s, want %s", got, want)
		}
	})
	t.Run("events", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		clock := pmtest.NewClock(time.Now())
		var p panicOnce
		var rc receiver
		r := startSub(t, s, "sub", pm.Filter{Types: []string{"T"}}, pm.SubscriptionOptions{Clock: clock, Deliver: func(ctx context.Context, e pmd.Event) error {
			p.call("T/1")
			return rc.handle(ctx, e)
		}})
		put(t, s, "s", "T", 1)
		put(t, s, "s", "T", 2)
		r.idle(t)
		st := r.status(t)
		if st.Failing == nil || !strings.Contains(st.LastErr, "receiver bug for T/1") {
			t.Fatalf("status %+v; want the first event failing with the panic", st)
		}
		clock.Advance(st.RetryAt.Sub(clock.Now()))
		r.idle(t)
		if got, want := rc.got(), "T/1 T/2"; got != want {
			t.Errorf("delivered %s, want %s", got, want)
		}
	})
}
