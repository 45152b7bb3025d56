package pm_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// BenchmarkList measures a page of 50 processes of a manager with PMD_LIST_PROCESSES
// processes (10,000 by default; one in ten open, the others completed): in id order,
// the open ones in id order, and the open ones oldest first, which reads every process.
//
//	go test -run '^$' -bench List -benchtime 5x ./pm/
func BenchmarkList(b *testing.B) {
	n := 10_000
	if v := os.Getenv("PMD_LIST_PROCESSES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			b.Fatalf("PMD_LIST_PROCESSES=%q: want a number of processes, at least 10", v)
		}
	}
	s := openStore(b, b.TempDir())
	r := start(b, s, matchDef("CateringMatch"), pm.Options{})
	ctx := context.Background()
	facts := make([]pmd.EventData, 0, 2*n)
	for i := range n {
		id := fmt.Sprintf("%06d", i)
		facts = append(facts, pmd.EventData{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": id}})
		if i%10 != 0 {
			facts = append(facts, pmd.EventData{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": id}})
		}
	}
	for len(facts) > 0 {
		k := min(len(facts), 500)
		if _, err := s.Append(ctx, "Facts", pmd.Any, facts[:k]...); err != nil {
			b.Fatal(err)
		}
		facts = facts[k:]
	}
	r.idle(b)
	for _, bc := range []struct {
		name string
		opts pm.ListOptions
	}{
		{"all by id", pm.ListOptions{Limit: 50}},
		{"open by id", pm.ListOptions{Status: pm.StatusOpen, Limit: 50}},
		{"open by age", pm.ListOptions{Status: pm.StatusOpen, ByAge: true, Limit: 50}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				page, err := r.List(ctx, bc.opts)
				if err != nil || len(page.Processes) != 50 {
					b.Fatalf("%d processes, %v", len(page.Processes), err)
				}
			}
		})
	}
}
