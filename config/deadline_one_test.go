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
	proc := shipping(t)
	s := pmtest.Given(t, proc.Definition(), pmtest.Fact("ItemsPicked", map[string]any{"order_id": "9"}))
	due := s.Now().Add(proc.Deadline.After)
	for range 5 {
		s.After(time.Hour).When(pmtest.Fact("ItemsPicked", map[string]any{"order_id": "9"}))
	}
	p := s.Process("9")
	if len(p.Deadlines) != 1 || p.Deadlines[0].Key != KeyDeadline || !p.Deadlines[0].Due.Equal(due) {
		t.Fatalf("pending deadlines %+v, want the one of key %q due %v (the first event + %v)", p.Deadlines, KeyDeadline, due, proc.Deadline.After)
	}
}
