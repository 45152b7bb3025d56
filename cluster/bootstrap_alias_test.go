package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
)

// TestBootstrapExpectWithAnAlias: nodes forming a cluster with --bootstrap-expect whose
// --join lists name a node at another address than the one it advertises (a host name
// for an IP, a second proxy), so that it answers there as itself, form it all the same,
// with each member once: a configuration naming a node twice, as the one found and as
// itself, is refused by Raft, and the nodes then never formed a cluster.
func TestBootstrapExpectWithAnAlias(t *testing.T) {
	type node struct {
		target   atomic.Pointer[string]
		adv, via string // the address it advertises, and another one reaching it
		n        *Node
	}
	nodes := []*node{{}, {}}
	for _, nd := range nodes {
		to := func() string {
			if a := nd.target.Load(); a != nil {
				return *a
			}
			return "127.0.0.1:1"
		}
		nd.adv, _ = countingProxy(t, to)
		nd.via, _ = countingProxy(t, to)
	}
	joins := [][]string{{nodes[0].via, nodes[1].adv}, {nodes[0].adv, nodes[1].via}}
	for i, nd := range nodes {
		dir := t.TempDir()
		logger := slog.New(slog.DiscardHandler)
		s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
		must(t, err)
		t.Cleanup(func() { s.Close() })
		id := []string{"a", "b"}[i]
		n, err := Start(context.Background(), Config{NodeID: id, RaftAddr: "127.0.0.1:0", RaftAdvertise: nd.adv, HTTPAddr: "127.0.0.1:1",
			Dir: dir, Store: s, Logger: logger, Join: joins[i], BootstrapExpect: 2,
			Fatal: func(err error) { t.Errorf("%s stopped: %v", id, err) }})
		must(t, err)
		t.Cleanup(func() { n.Close() })
		raftAddr := n.cfg.RaftAddr
		nd.target.Store(&raftAddr)
		nd.n = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := []string{"a@" + nodes[0].adv, "b@" + nodes[1].adv}
	for _, nd := range nodes {
		// A follower may hear from the leader (a heartbeat) before the entry that
		// holds the configuration reaches it: wait for the configuration itself.
		var got []string
		for {
			f := nd.n.raft.GetConfiguration()
			must(t, f.Error())
			got = got[:0]
			for _, s := range f.Configuration().Servers {
				got = append(got, string(s.ID)+"@"+string(s.Address))
				if s.Suffrage != raft.Voter {
					t.Errorf("node %s: %s is no voter", nd.n.cfg.NodeID, s.ID)
				}
			}
			if nd.n.LeaderKnown() == nil && slices.Equal(got, want) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node %s: configuration %v, leader known: %v, want %v with a leader within 30s", nd.n.cfg.NodeID, got, nd.n.LeaderKnown(), want)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// TestBootstrapExpectJoinsAClusterWithoutALeader: a node with --bootstrap-expect that
// finds a cluster among its --join nodes while it has no leader (an election, a quorum
// down) waits to be added to it, and is once a leader is back: it formed a cluster of
// its own with the nodes that answered, whose configurations did not name it, so it
// never became a member (until a restart).
func TestBootstrapExpectJoinsAClusterWithoutALeader(t *testing.T) {
	s1, n1 := startOne(t, t.TempDir(), Config{})
	t.Cleanup(func() { s1.Close() })
	t.Cleanup(func() { n1.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir2 := t.TempDir()
	s2, n2 := startPeer(t, "n2", dir2, n1.cfg.RaftAddr, Config{})
	must(t, untilIdle(ctx, n1, 2))
	addr2 := n2.cfg.RaftAddr
	must(t, n2.Close())
	must(t, s2.Close())
	for n1.LeaderKnown() == nil { // one of two voters: no quorum
		select {
		case <-ctx.Done():
			t.Fatal("n1 still leads without n2")
		case <-time.After(20 * time.Millisecond): // polling Raft's state: nothing to wait on
		}
	}
	s3, n3 := startPeer(t, "n3", "", n1.cfg.RaftAddr, Config{BootstrapExpect: 2})
	t.Cleanup(func() { s3.Close() })
	t.Cleanup(func() { n3.Close() })
	// n1 answers n3's info, and names no leader: n3 must not form a cluster with it.
	s2, n2 = startPeer(t, "n2", dir2, n1.cfg.RaftAddr, Config{RaftAddr: addr2})
	t.Cleanup(func() { s2.Close() })
	t.Cleanup(func() { n2.Close() })
	for {
		var ids []string
		if f := n1.raft.GetConfiguration(); f.Error() == nil {
			for _, s := range f.Configuration().Servers {
				ids = append(ids, string(s.ID))
			}
		}
		if slices.Contains(ids, "n3") && n3.LeaderKnown() == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("n3 is not added to the cluster once it has a leader again: n1's configuration %v, n3: %+v", ids, n3.Self())
		case <-time.After(50 * time.Millisecond): // polling Raft's state: nothing to wait on
		}
	}
}
