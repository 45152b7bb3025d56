package cluster

import (
	"testing"

	"github.com/google/uuid"
)

// A new node whose first copy of the cluster's records is cut partway must not come back
// holding them under a store id of its own, which its next start would refuse as another
// store's: it takes the cluster's id before it copies anything.
func TestReachTakesTheClusterIDBeforeItsFirstCopy(t *testing.T) {
	s, f, _ := replica(t, RulesVersion)
	cluster := uuid.New()
	if s.ID() == cluster {
		t.Fatal("a fresh store has the cluster's id already")
	}
	if err := f.reach(10, cluster); err == nil {
		t.Fatal("reach without a peer succeeded")
	}
	if s.ID() != cluster {
		t.Fatalf("after a failed first copy the store's id is %s, want the cluster's %s", s.ID(), cluster)
	}
}
