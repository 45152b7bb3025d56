package main

import (
	"testing"
	"time"

	"github.com/pmd-dev/pmd/cluster"
	"github.com/prometheus/client_golang/prometheus"
)

// lonelyFollower is a follower that has not heard from any leader since it started: a
// node joining a cluster it cannot reach, or restarted cut off from it.
type lonelyFollower struct{ fakeRaftNode }

func (f *lonelyFollower) Self() cluster.Info { return cluster.Info{ID: "b", State: "follower"} }
func (f *lonelyFollower) LastContact() time.Time {
	return time.Time{}
}

// TestLastContactOfANodeNeverInContact: a follower that never heard from a leader said
// pmd_raft_last_contact_seconds 0, "just heard from it", while its /healthz said no
// leader known and pmd_raft_state said follower: no metric showed the missing leader.
// It counts from the node's start instead, so an alert on it fires.
func TestLastContactOfANodeNeverInContact(t *testing.T) {
	c := newClusterCollector(&lonelyFollower{})
	c.started = time.Now().Add(-time.Minute)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "pmd_raft_last_contact_seconds" {
			continue
		}
		if got := f.GetMetric()[0].GetGauge().GetValue(); got < 60 {
			t.Fatalf("pmd_raft_last_contact_seconds = %v for a follower that has heard from no leader in the minute since it started, want at least 60", got)
		}
		return
	}
	t.Fatal("no pmd_raft_last_contact_seconds")
}
