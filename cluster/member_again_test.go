package cluster

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestWipedMemberJoinKeepsGuard: a member started again empty with --join, still a
// member (not removed first), gets from the leader an answer that does not say it added
// it: its vote guard is not lifted (it may have acknowledged entries it lost), and
// refuses a candidate other than the leader it asked until it has caught up. Only a reply
// saying added lifts the guard.
func TestWipedMemberJoinKeepsGuard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ms := threeMembers(t, Config{})
	n1, n2, n3 := ms[0], ms[1], ms[2]
	n1.start(t, n1.cfg.RaftAddr) // names itself: forms the cluster, which the others join
	if leaderOf(ctx, t, n1) != n1 {
		t.Fatal("n1 does not lead")
	}
	n2.start(t, n1.cfg.RaftAddr)
	n3.start(t, n1.cfg.RaftAddr)
	must(t, untilIdle(ctx, n1.n, 3))

	n3.stop(t)
	must(t, os.RemoveAll(n3.dir))
	n3.start(t, n1.cfg.RaftAddr)
	if n3.n.guard == nil {
		t.Fatal("n3 started empty without a vote guard")
	}
	leader := n1.n.cfg.RaftAdvertise
	for !n3.n.guard.asked(leader) {
		select {
		case <-ctx.Done():
			t.Fatalf("n3's guard: %s did not answer its join as the leader", leader)
		case <-time.After(20 * time.Millisecond): // polling the join: nothing to wait on
		}
	}
	// The reply came before asked said so (tryJoin): it did not say added, and did not
	// lift the guard. (The guard may have gone off since by catching up: n1 replicates to
	// n3, a member, at once.)
	if n3.n.guard.added.Load() {
		t.Fatal("n3's guard lifted by the join reply of a leader that found it a member already")
	}
	// A guard on, with n3's record of whom it asked: the leader's vote is let through,
	// a candidate n3 did not ask refused.
	g, candidate, addr, _ := guardForTest(t, func() uint64 { return 0 }, n3.n.guard.asked)
	header := func(a string) raft.RPCHeader { return raft.RPCHeader{ID: []byte("n9"), Addr: []byte(a)} }
	if !ask(t, candidate, addr, &raft.RequestVoteRequest{RPCHeader: header(leader), Term: 9, LastLogIndex: 40, LastLogTerm: 8}, false) {
		t.Error("the vote of the leader n3 asked to join refused")
	}
	if ask(t, candidate, addr, &raft.RequestVoteRequest{RPCHeader: header(n2.n.cfg.RaftAdvertise), Term: 9, LastLogIndex: 40, LastLogTerm: 8}, true) {
		t.Error("the vote of n2, which n3 did not ask, granted")
	}
	if g.refused.Load() != 1 {
		t.Errorf("%d refusals, want 1", g.refused.Load())
	}
}
