package pm_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// BenchmarkDecisions measures a cached process deciding on each fact, its facts from
// 100 streams (a ledger's maxSources): an append of the fact, the decision's write of a
// command, and the wait for the manager to be idle, per op. "erasure count" is the
// manager as it runs, which reads the facts' streams before a decision only when the
// store has erased something since (Store.Erasures); "check forced" reads them before
// every decision, as it did before.
//
//	go test -run '^$' -bench Decisions -benchtime 2000x ./pm/
func BenchmarkDecisions(b *testing.B) {
	for _, bc := range []struct {
		name   string
		always bool
	}{{"erasure count", false}, {"check forced", true}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s := openStore(b, b.TempDir())
			def := pm.Definition[int]{
				Name: "Count", Handles: []string{"Named"}, ProcessID: pm.DataField("id"),
				Init: func(string) int { return 0 },
				Apply: func(n int, e pmd.Event) int {
					if e.Link {
						n++
					}
					return n
				},
				Decide: func(n int) []pm.Command {
					return []pm.Command{{Type: "Counted", Key: strconv.Itoa(n), Data: map[string]any{"n": n}}}
				},
			}
			r := startWith(b, s, def, pm.Options{SnapshotEvery: -1}, func(m *pm.Manager) {
				if bc.always {
					pm.SetAlwaysCheckFacts(m)
				}
			})
			fact := pmd.EventData{Type: "Named", Data: map[string]any{"id": "1", "name": "x"}}
			for i := range 100 {
				if _, err := s.Append(ctx, fmt.Sprintf("Customer-%d", i), pmd.Any, fact); err != nil {
					b.Fatal(err)
				}
			}
			r.idle(b)
			i := 0
			start := time.Now()
			for b.Loop() {
				if _, err := s.Append(ctx, fmt.Sprintf("Customer-%d", i%100), pmd.Any, fact); err != nil {
					b.Fatal(err)
				}
				r.idle(b)
				i++
			}
			b.ReportMetric(float64(i)/time.Since(start).Seconds(), "decisions/s")
		})
	}
}
