package cluster

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
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
	fast := Config{HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond}
	ms := threeMembers(t, fast)
	n1, n2, n3 := ms[0], ms[1], ms[2]
	// n1 names itself: it forms the cluster, which the others join.
	start := func(m *testMember) { m.start(t, n1.cfg.RaftAddr) }
	stop := func(m *testMember) { m.stop(t) }
	leader := func(among ...*testMember) *testMember { return leaderOf(ctx, t, among...) }
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
		for _, m := range []*testMember{n2, n3} {
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

// TestVoteGuard: a node that started with no Raft state refuses, itself, the votes and
// pre-votes of a candidate whose log holds more than a bootstrap configuration until it
// has had an AppendEntries and holds the log up to the highest commit index sent in them
// (a first batch of entries, or a snapshot, is not enough), or a leader added it as a new
// member; Raft answers the rest (a new cluster's first election, the leader it asked to
// join, every other RPC).
func TestVoteGuard(t *testing.T) {
	vote := &raft.RequestVoteRequest{Term: 7, LastLogIndex: 900, LastLogTerm: 6}
	preVote := &raft.RequestPreVoteRequest{Term: 7, LastLogIndex: 900, LastLogTerm: 6}
	for _, tc := range []struct {
		name    string
		last    uint64   // the node's Raft LastIndex
		commits []uint64 // the LeaderCommitIndex of each AppendEntries before req
		lifted  bool     // a leader added it as a new member
		req     any
		refused bool
	}{
		{"vote past bootstrap, empty", 0, nil, false, vote, true},
		{"pre-vote past bootstrap, empty", 0, nil, false, preVote, true},
		{"vote, the log up to the highest commit", 900, []uint64{300, 880, 600}, false, vote, false},
		{"pre-vote, the log up to the highest commit", 880, []uint64{300, 880}, false, preVote, false},
		{"vote, a first batch short of the commit", 256, []uint64{0, 880}, false, vote, true},
		{"pre-vote, a first batch short of the commit", 256, []uint64{880}, false, preVote, true},
		{"vote, short of a later commit", 880, []uint64{900}, false, vote, true},
		{"vote, empty, heartbeats only", 0, []uint64{0, 0}, false, vote, true},
		{"vote, a snapshot and no AppendEntries", 700, nil, false, vote, true},
		{"pre-vote, a snapshot and no AppendEntries", 700, nil, false, preVote, true},
		{"vote, empty, added as a new member", 0, nil, true, vote, false},
		{"pre-vote, empty, added as a new member", 0, nil, true, preVote, false},
		{"vote, a first batch, added as a new member", 256, []uint64{880}, true, vote, false},
		{"vote past bootstrap, empty, from the leader it asked to join", 0, nil, false, &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("n1"), Addr: []byte("leader")}, Term: 7, LastLogIndex: 40, LastLogTerm: 6}, false},
		{"pre-vote past bootstrap, empty, from the leader it asked to join", 0, nil, false, &raft.RequestPreVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("n1"), Addr: []byte("leader")}, Term: 7, LastLogIndex: 40, LastLogTerm: 6}, false},
		{"vote at bootstrap, empty", 0, nil, false, &raft.RequestVoteRequest{Term: 2, LastLogIndex: 1, LastLogTerm: 1}, false},
		{"pre-vote at bootstrap, empty", 0, nil, false, &raft.RequestPreVoteRequest{Term: 2, LastLogIndex: 1, LastLogTerm: 1}, false},
		{"append entries, empty", 0, nil, false, &raft.AppendEntriesRequest{Term: 7, PrevLogEntry: 40, PrevLogTerm: 6, LeaderCommitIndex: 40}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, candidate, addr, warned := guardForTest(t, func() uint64 { return tc.last }, func(a string) bool { return a == "leader" })
			if tc.lifted {
				g.lift()
			}
			for _, c := range tc.commits {
				var resp raft.AppendEntriesResponse
				must(t, candidate.AppendEntries("n2", addr, &raft.AppendEntriesRequest{Term: 7, LeaderCommitIndex: c}, &resp))
			}
			if granted := ask(t, candidate, addr, tc.req, tc.refused); granted == tc.refused {
				t.Errorf("answered by Raft %v, want %v", granted, !tc.refused)
			}
			if got := g.refused.Load(); got != map[bool]uint64{true: 1}[tc.refused] {
				t.Errorf("%d refusals counted", got)
			}
			if tc.refused && len(*warned) != 1 {
				t.Errorf("warned %v, want once", *warned)
			}
			if !tc.refused && len(*warned) != 0 {
				t.Errorf("warned %v, want nothing", *warned)
			}
		})
	}
}

// TestVoteGuardOffForGood: once the node held the log up to the highest commit index a
// leader sent, the guard stays off, though later commits are past what it holds.
func TestVoteGuardOffForGood(t *testing.T) {
	var last atomic.Uint64
	g, candidate, addr, _ := guardForTest(t, last.Load, func(string) bool { return false })
	appendEntries := func(commit uint64) {
		t.Helper()
		var resp raft.AppendEntriesResponse
		must(t, candidate.AppendEntries("n2", addr, &raft.AppendEntriesRequest{Term: 7, LeaderCommitIndex: commit}, &resp))
	}
	vote := &raft.RequestVoteRequest{Term: 8, LastLogIndex: 900, LastLogTerm: 7}
	appendEntries(500)
	last.Store(256)
	if ask(t, candidate, addr, vote, true) {
		t.Fatal("granted with 256 of 500 committed entries")
	}
	last.Store(500)
	if !ask(t, candidate, addr, vote, false) {
		t.Fatal("refused with the log up to the commit index")
	}
	appendEntries(900)
	if !ask(t, candidate, addr, vote, false) || g.refused.Load() != 1 {
		t.Fatalf("refused after the guard went off (%d refusals)", g.refused.Load())
	}
}

// guardForTest is a vote guard in front of an in-memory transport, with a Raft that
// grants every vote and accepts every AppendEntries, and the transport of a candidate
// connected to it; warned collects the candidate indexes of the warnings.
func guardForTest(t *testing.T, last func() uint64, asked func(string) bool) (g *voteGuard, candidate *raft.InmemTransport, addr raft.ServerAddress, warned *[]uint64) {
	t.Helper()
	addr, inner := raft.NewInmemTransport("")
	_, candidate = raft.NewInmemTransport("")
	candidate.Connect(addr, inner)
	warned = new([]uint64)
	g = newVoteGuard(inner, raft.RPCHeader{ID: []byte("n3"), Addr: []byte(addr)}, last, asked, func() uint64 { return 0 },
		func(_ string, index, _ uint64) { *warned = append(*warned, index) })
	raftDone := make(chan struct{})
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
	t.Cleanup(func() {
		close(raftDone)
		must(t, g.Close())
	})
	return g, candidate, addr, warned
}

// ask sends req (a vote, pre-vote or AppendEntries request) from candidate to addr, and
// reports whether it was granted (succeeded); a refusal must come from n3, at term 0.
func ask(t *testing.T, candidate *raft.InmemTransport, addr raft.ServerAddress, req any, refused bool) bool {
	t.Helper()
	switch req := req.(type) {
	case *raft.RequestVoteRequest:
		var resp raft.RequestVoteResponse
		must(t, candidate.RequestVote("n2", addr, req, &resp))
		if refused && (resp.Term != 0 || string(resp.ID) != "n3") {
			t.Errorf("refusal %+v: want term 0 from n3", resp)
		}
		return resp.Granted
	case *raft.RequestPreVoteRequest:
		var resp raft.RequestPreVoteResponse
		must(t, candidate.RequestPreVote("n2", addr, req, &resp))
		return resp.Granted
	case *raft.AppendEntriesRequest:
		var resp raft.AppendEntriesResponse
		must(t, candidate.AppendEntries("n2", addr, req, &resp))
		return resp.Success
	}
	t.Fatalf("ask %T", req)
	return false
}

// TestJoinAnswerAndVoteGuard: a node started empty with --join records the leader that
// answered its join (Node.asked, at the leader's advertised Raft address), and its vote
// guard lets that leader's vote requests through, not another candidate's; the leader
// says, in its join reply, whether it added the node as a new member, which lifts the
// node's guard (a member removed and started empty with --join acknowledged nothing, and
// refused the other members' votes if the leader it joined through died before it held
// the log), or found it a member already, which leaves the guard on.
func TestJoinAnswerAndVoteGuard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fast := Config{HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond}
	cfg1, cfg2 := fast, fast
	cfg1.RaftAddr, cfg2.RaftAddr = loopbackPort(t), loopbackPort(t)
	s1, n1 := startPeer(t, "n1", "", cfg1.RaftAddr, cfg1) // names itself: forms the cluster
	t.Cleanup(func() { must(t, n1.Close()); must(t, s1.Close()) })
	for !n1.IsLeader() {
		select {
		case <-ctx.Done():
			t.Fatal("n1 does not lead")
		case <-time.After(20 * time.Millisecond): // polling Raft's state: nothing to wait on
		}
	}
	s2, n2 := startPeer(t, "n2", "", cfg1.RaftAddr, cfg2)
	t.Cleanup(func() { must(t, n2.Close()); must(t, s2.Close()) })
	if n2.guard == nil {
		t.Fatal("n2 started empty without a vote guard")
	}
	leader := n1.cfg.RaftAdvertise
	for !n2.guard.asked(leader) {
		select {
		case <-ctx.Done():
			t.Fatalf("n2's guard: %s did not answer its join as the leader", leader)
		case <-time.After(20 * time.Millisecond): // polling the join: nothing to wait on
		}
	}
	if !n2.guard.added.Load() || !n2.guard.off.Load() {
		t.Errorf("n2, added as a new member: guard added %v, off %v; want it off", n2.guard.added.Load(), n2.guard.off.Load())
	}
	if other := cfg2.RaftAddr; n2.guard.asked(other) {
		t.Errorf("n2's guard: %s counted as the leader it asked", other)
	}

	// A guard on, with n2's record of whom it asked: the leader's vote is let through,
	// another candidate's refused.
	g, candidate, addr, _ := guardForTest(t, func() uint64 { return 0 }, n2.guard.asked)
	header := func(a string) raft.RPCHeader { return raft.RPCHeader{ID: []byte("n1"), Addr: []byte(a)} }
	if !ask(t, candidate, addr, &raft.RequestVoteRequest{RPCHeader: header(leader), Term: 9, LastLogIndex: 40, LastLogTerm: 8}, false) {
		t.Error("the vote of the leader n2 asked to join refused")
	}
	if !ask(t, candidate, addr, &raft.RequestPreVoteRequest{RPCHeader: header(leader), Term: 9, LastLogIndex: 40, LastLogTerm: 8}, false) {
		t.Error("the pre-vote of the leader n2 asked to join refused")
	}
	if ask(t, candidate, addr, &raft.RequestVoteRequest{RPCHeader: header("127.0.0.1:1"), Term: 9, LastLogIndex: 40, LastLogTerm: 8}, true) {
		t.Error("the vote of a candidate n2 did not ask granted")
	}
	if g.refused.Load() != 1 {
		t.Errorf("%d refusals, want 1", g.refused.Load())
	}

	// n2 asks again, a member now (a member started empty without its removal): the
	// leader does not say it added it.
	resp, _, _, err := n2.call(ctx, leader, request{Op: "join", ID: "n2", RaftAddr: n2.cfg.RaftAdvertise}, serviceTimeout)
	if err != nil || resp.NotLeader || resp.Added {
		t.Errorf("n2's join again: %+v, %v; want answered, not added", resp, err)
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
	// Whichever leads, through a lost leadership (a loaded machine misses a lease): the
	// next election needs the votes of nodes that started empty.
	for {
		for leader = -1; leader < 0; {
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
		_, err := stores[leader].Append(ctx, "Formed$1", pmd.Any, pmd.EventData{Type: "T"})
		if err == nil {
			break
		}
		t.Logf("append on %s: %v", ids[leader], err)
	}
	must(t, untilIdle(ctx, nodes[leader], 3))
	for i, s := range stores {
		if st, err := s.StreamInfo("Formed$1"); err != nil || !st.Exists {
			t.Fatalf("the write on %s: %+v, %v", ids[i], st, err)
		}
	}
}
