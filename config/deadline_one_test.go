package config

import (
	"testing"
	"time"

	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestAProcessHasAtMostOnePendingDeadline: however many events a process of the config
// handles, it has one pending deadline, due its deadline's after from its first event,
// which is why the process view lists deadlines whole (pm.Process.Deadlines,
// docs/api.md).
func TestAProcessHasAtMostOnePendingDeadline(t *testing.T) {
	s := pmtest.Given(t, shipping(t).Definition(), pmtest.Fact("ItemsPicked", map[string]any{"order_id": "9"}))
	first := s.Now()
	for range 5 {
		s.After(time.Hour).When(pmtest.Fact("ItemsPicked", map[string]any{"order_id": "9"}))
	}
	p := s.Process("9")
	if len(p.Deadlines) != 1 || p.Deadlines[0].Key != KeyDeadline || p.Deadlines[0].Due.Before(first) {
		t.Fatalf("pending deadlines %+v, want the one of key %q", p.Deadlines, KeyDeadline)
	}
}
