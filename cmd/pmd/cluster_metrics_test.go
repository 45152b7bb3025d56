package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/cluster"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeRaftNode is a leader whose members answer as members says.
type fakeRaftNode struct {
	commit  uint64
	members []cluster.NodeStatus
}

func (f *fakeRaftNode) Self() cluster.Info {
	return cluster.Info{ID: "a", State: "leader", CommitIndex: f.commit, AppliedIndex: f.commit}
}
func (f *fakeRaftNode) LastContact() time.Time     { return time.Now() }
func (f *fakeRaftNode) RefusedConnections() uint64 { return 0 }
func (f *fakeRaftNode) Status(context.Context) (cluster.Status, error) {
	return cluster.Status{Self: f.Self(), Nodes: f.members}, nil
}

func member(id string, applied uint64) cluster.NodeStatus {
	return cluster.NodeStatus{Info: cluster.Info{ID: id, State: "follower", AppliedIndex: applied}, Reachable: true, Voter: true}
}

func down(id string) cluster.NodeStatus {
	return cluster.NodeStatus{Info: cluster.Info{ID: id, State: "unreachable"}, Voter: true}
}

// TestClusterMetricsUnreachable: on the leader, a member that stops answering keeps its
// lag, counted from the applied index of its last answer, so that an alert on lag fires
// for a dead follower; pmd_raft_member_reachable says which members answer, and one
// never heard from has no lag but is 0 there.
func TestClusterMetricsUnreachable(t *testing.T) {
	self := member("a", 0)
	node := &fakeRaftNode{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&clusterCollector{node: node})
	for _, step := range []struct {
		name       string
		commit     uint64
		members    []cluster.NodeStatus
		lag, reach string
	}{
		{"all answer", 10, []cluster.NodeStatus{self, member("b", 10), member("c", 8)},
			`a 0, b 0, c 2`, `a 1, b 1, c 1`},
		{"b down, d never heard from", 25, []cluster.NodeStatus{self, down("b"), member("c", 25), down("d")},
			`a 0, b 15, c 0`, `a 1, b 0, c 1, d 0`},
		{"b back", 30, []cluster.NodeStatus{self, member("b", 28), member("c", 30)},
			`a 0, b 2, c 0`, `a 1, b 1, c 1`},
	} {
		node.commit, node.members = step.commit, step.members
		for i := range node.members {
			if node.members[i].ID == "a" {
				node.members[i].AppliedIndex = step.commit
			}
		}
		if got, want := nodeGauges(t, reg, "pmd_raft_follower_lag_entries"), step.lag; got != want {
			t.Errorf("%s: lags %s, want %s", step.name, got, want)
		}
		if got, want := nodeGauges(t, reg, "pmd_raft_member_reachable"), step.reach; got != want {
			t.Errorf("%s: reachable %s, want %s", step.name, got, want)
		}
	}
}

// nodeGauges gathers reg and returns the series of gauge name as "node value", by node,
// comma-separated.
func nodeGauges(t *testing.T, reg *prometheus.Registry, name string) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			out = append(out, fmt.Sprintf("%s %v", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
