package pm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// BenchmarkEventWithPendingDeadlines is the cost of one event of a process that has n
// deadlines pending (and keeps them: Decide returns all n every time), appended and
// waited for, fsync off.
//
//	go test -run '^$' -bench EventWithPendingDeadlines ./pm/
func BenchmarkEventWithPendingDeadlines(b *testing.B) {
	for _, n := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			base := time.Now().Add(24 * time.Hour)
			cmds := make([]pm.Command, n)
			for i := range cmds {
				cmds[i] = pm.Command{Type: "Remind", Key: fmt.Sprintf("k%04d", i), At: base.Add(time.Duration(n-i) * time.Minute)}
			}
			def := pm.Definition[int]{
				Name:      "Reminder",
				Handles:   []string{"Ping"},
				ProcessID: pm.DataField("id"),
				Init:      func(string) int { return 0 },
				Apply:     func(s int, e pmd.Event) int { return s + 1 },
				Decide:    func(int) []pm.Command { return cmds },
			}
			s := openStore(b, b.TempDir())
			r := start(b, s, def, pm.Options{Clock: pmtest.NewClock(time.Now())})
			ctx := context.Background()
			ping := pmd.Event{Type: "Ping", Data: map[string]any{"id": "1"}}
			r.WaitHandled(ctx, appendFact(b, s, ping).LastPosition)
			for b.Loop() {
				if err := r.WaitHandled(ctx, appendFact(b, s, ping).LastPosition); err != nil {
					b.Fatal(err)
				}
			}
			if p, err := r.Process(ctx, "1"); err != nil || len(p.Deadlines) != n {
				b.Fatalf("%d deadlines pending, %v; want %d", len(p.Deadlines), err, n)
			}
		})
	}
}
