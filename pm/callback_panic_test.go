package pm_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestAPanickingReceiverOrOnAttemptIsLogged: Options.Receiver and OnAttempt (of a
// manager and of a subscription) are the program's code, as a handler is: a panic in
// one is logged with its stack, and the manager goes on: the command of a Receiver that
// panicked goes to the receiver "", an attempt is recorded whatever OnAttempt does. A
// panic used to end the program, and again at every start, which called Receiver on the
// same commands found awaiting delivery.
func TestAPanickingReceiverOrOnAttemptIsLogged(t *testing.T) {
	t.Run("commands", func(t *testing.T) {
		ctx := context.Background()
		s := openStore(t, t.TempDir())
		clock := pmtest.NewClock(time.Now())
		// Without Deliver, the commands are written and wait for the next start, which
		// finds them (load); those of a process after it are read as they are issued.
		r := start(t, s, stepsDef("Steps"), pm.Options{Clock: clock})
		appendFact(t, s, goFact("1"))
		appendFact(t, s, goFact("2"))
		r.idle(t)
		r.stop(t)

		var logs lockedLog
		var sc script
		var attempts atomic.Int64
		r = start(t, s, stepsDef("Steps"), pm.Options{
			Clock: clock, Deliver: sc.handle, Logger: logs.logger(),
			Receiver: func(c pm.Command) string {
				if c.ProcessID != "2" {
					panic("receiver bug for " + c.ProcessID)
				}
				return "r2"
			},
			OnAttempt: func(pm.AttemptInfo) {
				attempts.Add(1)
				panic("metrics bug")
			},
		})
		r.idle(t)
		appendFact(t, s, goFact("3"))
		r.idle(t)
		for id, receiver := range map[string]string{"1": "", "2": "r2", "3": ""} {
			ds, err := r.Deliveries(ctx, id)
			if err != nil || len(ds) != 3 {
				t.Fatalf("deliveries of %s: %+v, %v; want its 3 commands", id, ds, err)
			}
			for _, d := range ds {
				if d.Outcome != pm.OutcomeDelivered || d.Receiver != receiver {
					t.Errorf("process %s: %s %s to %q, want delivered to %q", id, d.CommandType, d.Outcome, d.Receiver, receiver)
				}
			}
		}
		r.stop(t) // OnAttempt is called after the attempt is recorded: Run waits for it
		if n := attempts.Load(); n != 9 {
			t.Errorf("OnAttempt called %d times, want 9", n)
		}
		if n := len(logs.lines("Options.Receiver panicked")); n != 6 {
			t.Errorf("%d log lines about Receiver, want 6", n)
		}
		if lines := logs.lines("OnAttempt panicked"); len(lines) != 9 || !strings.Contains(lines[0], "metrics bug") {
			t.Errorf("log lines about OnAttempt:\n%s\nwant 9 naming the panic", strings.Join(lines, "\n"))
		}
	})
	t.Run("events", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		var logs lockedLog
		var rc receiver
		r := startSub(t, s, "sub", pm.Filter{Types: []string{"T"}}, pm.SubscriptionOptions{
			Clock: pmtest.NewClock(time.Now()), Deliver: rc.handle, Logger: logs.logger(),
			OnAttempt: func(a pm.AttemptInfo) { panic("metrics bug for " + a.Event.Type) },
		})
		put(t, s, "s", "T", 1)
		put(t, s, "s", "T", 2)
		r.idle(t)
		if got, want := rc.got(), "T/1 T/2"; got != want {
			t.Errorf("delivered %s, want %s", got, want)
		}
		if st := r.status(t); st.Failing != nil || st.Lag != 0 {
			t.Errorf("status %+v, want both events done", st)
		}
		r.stop(t)
		if n := len(logs.lines("OnAttempt panicked")); n != 2 {
			t.Errorf("%d log lines about OnAttempt, want 2", n)
		}
	})
}
