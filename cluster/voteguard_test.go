package cluster

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
)

// TestWipedMemberRefusesVotes: a member started again with an empty data directory,
// still a member (not removed first, as docs/cluster.md asks), votes for no candidate
// whose log holds more than a new cluster's bootstrap configuration until a leader sent
// it entries. It voted at once before: with n2 down, a write acknowledged by n1 and n3,
// n3 back empty and n1 down, n2 led with n3's vote without the write, which was lost.
// Now no leader is elected until n1, which holds the write, is back, and the write is
// on every member once one is.
func TestWipedMemberRefusesVotes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type member struct {
		id, dir string
		cfg     Config
		s       *pmd.Store
		n       *Node
	}
	fast := Config{HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond}
	var ms [3]*member
	for i, id := range []string{"n1", "n2", "n3"} {
		cfg := fast
		cfg.RaftAddr = loopbackPort(t)
		ms[i] = &member{id: id, dir: t.TempDir(), cfg: cfg}
	}
	n1, n2, n3 := ms[0], ms[1], ms[2]
	start := func(m *member) {
		t.Helper()
		// n1 names itself: it forms the cluster, which the others join.
		m.s, m.n = startPeer(t, m.id, m.dir, n1.cfg.RaftAddr, m.cfg)
	}
	stop := func(m *member) {
		t.Helper()
		must(t, m.n.Close())
		must(t, m.s.Close())
		m.n = nil
	}
	t.Cleanup(func() {
		for _, m := range ms {
			if m.n != nil {
				stop(m)
			}
		}
	})
	leader := func(among ...*member) *member {
		t.Helper()
		for {
			for _, m := range among {
				if m.n.IsLeader() {
					return m
				}
			}
			select {
			case <-ctx.Done():
				t.Fatal("no leader")
			case <-time.After(20 * time.Millisecond): // polling Raft's state: nothing to wait on
			}
		}
	}
	start(n1)
	leader(n1)
	start(n2)
	start(n3)
	must(t, untilIdle(ctx, n1.n, 3))

	stop(n2)
	// On n1 and n3, a quorum, through whichever leads (n2's stop may cost an election).
	for {
		_, err := leader(n1, n3).s.Append(ctx, "Acknowledged$1", pmd.Any, pmd.EventData{Type: "T"})
		if err == nil {
			break
		}
		t.Logf("append: %v", err)
	}
	stop(n3)
	stop(n1)
	must(t, os.RemoveAll(n3.dir))
	start(n3)
	start(n2)

	// n2 asks n3 for its vote, again and again; n3 refuses, and neither leads.
	for n3.n.votesRefused() < 3 {
		for _, m := range []*member{n2, n3} {
			if m.n.IsLeader() {
				st, err := m.s.StreamInfo("Acknowledged$1")
				t.Fatalf("%s leads with n1 down: the acknowledged write on it: %+v, %v", m.id, st, err)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("n3 refused %d votes; want 3", n3.n.votesRefused())
		case <-time.After(20 * time.Millisecond): // polling Raft's state: nothing to wait on
		}
	}

	start(n1)
	must(t, untilIdle(ctx, leader(n1, n2, n3).n, 3))
	for _, m := range ms {
		if st, err := m.s.StreamInfo("Acknowledged$1"); err != nil || !st.Exists {
			t.Fatalf("the acknowledged write on %s: %+v, %v; want it kept", m.id, st, err)
		}
	}
}

// TestVoteGuard: a node with no Raft state refuses, itself, the votes and pre-votes of
// a candidate whose log holds more than a bootstrap configuration; Raft answers the
// rest (a new cluster's first election, everything once the node has state, every other
// RPC).
func TestVoteGuard(t *testing.T) {
	for _, tc := range []struct {
		name    string
		empty   bool
		req     any
		refused bool
	}{
		{"vote past bootstrap, empty", true, &raft.RequestVoteRequest{Term: 7, LastLogIndex: 40, LastLogTerm: 6}, true},
		{"pre-vote past bootstrap, empty", true, &raft.RequestPreVoteRequest{Term: 7, LastLogIndex: 40, LastLogTerm: 6}, true},
		{"vote past bootstrap, with state", false, &raft.RequestVoteRequest{Term: 7, LastLogIndex: 40, LastLogTerm: 6}, false},
		{"pre-vote past bootstrap, with state", false, &raft.RequestPreVoteRequest{Term: 7, LastLogIndex: 40, LastLogTerm: 6}, false},
		{"vote past bootstrap, empty, from the leader it asked to join", true, &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("n1"), Addr: []byte("leader")}, Term: 7, LastLogIndex: 40, LastLogTerm: 6}, false},
		{"pre-vote past bootstrap, empty, from the leader it asked to join", true, &raft.RequestPreVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("n1"), Addr: []byte("leader")}, Term: 7, LastLogIndex: 40, LastLogTerm: 6}, false},
		{"vote at bootstrap, empty", true, &raft.RequestVoteRequest{Term: 2, LastLogIndex: 1, LastLogTerm: 1}, false},
		{"pre-vote at bootstrap, empty", true, &raft.RequestPreVoteRequest{Term: 2, LastLogIndex: 1, LastLogTerm: 1}, false},
		{"append entries, empty", true, &raft.AppendEntriesRequest{Term: 7, PrevLogEntry: 40, PrevLogTerm: 6}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, inner := raft.NewInmemTransport("")
			_, candidate := raft.NewInmemTransport("")
			candidate.Connect(addr, inner)
			var warned []uint64
			g := newVoteGuard(inner, raft.RPCHeader{ID: []byte("n3"), Addr: []byte(addr)},
				func() bool { return tc.empty }, func(a string) bool { return a == "leader" }, func() uint64 { return 0 },
				func(_ string, index, _ uint64) { warned = append(warned, index) })
			defer g.Close()
			// What Raft answers: a grant, or success.
			raftDone := make(chan struct{})
			defer close(raftDone)
			go func() {
				for {
					var rpc raft.RPC
					select {
					case rpc = <-g.Consumer():
					case <-raftDone:
						return
					}
					switch rpc.Command.(type) {
					case *raft.RequestVoteRequest:
						rpc.Respond(&raft.RequestVoteResponse{Granted: true}, nil)
					case *raft.RequestPreVoteRequest:
						rpc.Respond(&raft.RequestPreVoteResponse{Granted: true}, nil)
					default:
						rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
					}
				}
			}()
			var answered bool
			switch req := tc.req.(type) {
			case *raft.RequestVoteRequest:
				var resp raft.RequestVoteResponse
				must(t, candidate.RequestVote("n2", addr, req, &resp))
				answered = resp.Granted
				if tc.refused && (resp.Term != 0 || string(resp.ID) != "n3") {
					t.Errorf("refusal %+v: want term 0 from n3", resp)
				}
			case *raft.RequestPreVoteRequest:
				var resp raft.RequestPreVoteResponse
				must(t, candidate.RequestPreVote("n2", addr, req, &resp))
				answered = resp.Granted
			case *raft.AppendEntriesRequest:
				var resp raft.AppendEntriesResponse
				must(t, candidate.AppendEntries("n2", addr, req, &resp))
				answered = resp.Success
			}
			if answered == tc.refused {
				t.Errorf("answered by Raft %v, want %v", answered, !tc.refused)
			}
			if got := g.refused.Load(); got != map[bool]uint64{true: 1}[tc.refused] {
				t.Errorf("%d refusals counted", got)
			}
			if tc.refused && len(warned) != 1 {
				t.Errorf("warned %v, want once", warned)
			}
			if !tc.refused && len(warned) != 0 {
				t.Errorf("warned %v, want nothing", warned)
			}
		})
	}
}

// TestBootstrapExpectFirstElectionWithEmptyVoters: the nodes of a new cluster that find
// it formed by another of its nodes wait to be added (form) with no Raft state, and the
// node that formed it needs their votes for its first election: the vote guard lets
// those through (the candidate holds only the bootstrap configuration), and the cluster
// gets a leader and replicates.
func TestBootstrapExpectFirstElectionWithEmptyVoters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := []string{"n1", "n2", "n3"}
	addrs := []string{loopbackPort(t), loopbackPort(t), loopbackPort(t)}
	nodes := make([]*Node, len(ids))
	stores := make([]*pmd.Store, len(ids))
	start := func(i int) {
		t.Helper()
		logger := slog.New(slog.DiscardHandler)
		dir := t.TempDir()
		s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
		must(t, err)
		n, err := Start(ctx, Config{
			NodeID: ids[i], RaftAddr: addrs[i], HTTPAddr: "127.0.0.1:1", Dir: dir, Store: s, Logger: logger,
			Join: addrs, BootstrapExpect: len(ids), Fatal: func(err error) { t.Errorf("%s stopped: %v", ids[i], err) },
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond,
		})
		if err != nil {
			s.Close()
			t.Fatal(err)
		}
		stores[i], nodes[i] = s, n
		t.Cleanup(func() {
			must(t, n.Close())
			must(t, s.Close())
		})
	}
	// n1 forms the cluster before the others answer: they find it formed.
	start(0)
	servers := make([]raft.Server, len(ids))
	for i := range ids {
		servers[i] = raft.Server{ID: raft.ServerID(ids[i]), Address: raft.ServerAddress(addrs[i])}
	}
	nodes[0].bootstrap(servers)
	if !nodes[0].hasState() {
		t.Fatal("n1 has no Raft state after forming the cluster")
	}
	start(1)
	start(2)
	leader := -1
	for leader < 0 {
		for i, n := range nodes {
			if n.IsLeader() {
				leader = i
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no leader; votes refused: %d, %d", nodes[1].votesRefused(), nodes[2].votesRefused())
		case <-time.After(20 * time.Millisecond): // polling Raft's state: nothing to wait on
		}
	}
	if _, err := stores[leader].Append(ctx, "Formed$1", pmd.NoStream, pmd.EventData{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	must(t, untilIdle(ctx, nodes[leader], 3))
	for i, s := range stores {
		if st, err := s.StreamInfo("Formed$1"); err != nil || !st.Exists {
			t.Fatalf("the write on %s: %+v, %v", ids[i], st, err)
		}
	}
}
