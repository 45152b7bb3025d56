package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeaderKnown: a node says at once whether it knows a leader, from Raft alone: the
// leader and a follower that has not asked a new term's leader its HTTP address yet
// both know one, and the follower asks nothing for it (/healthz calls it on every probe).
func TestLeaderKnown(t *testing.T) {
	var target atomic.Pointer[string]
	via, asked := countingProxy(t, func() string {
		if a := target.Load(); a != nil {
			return *a
		}
		return "127.0.0.1:1"
	})
	s1, n1 := startOne(t, t.TempDir(), Config{RaftAdvertise: via})
	defer s1.Close()
	defer n1.Close()
	raftAddr := n1.cfg.RaftAddr
	target.Store(&raftAddr)
	s2, n2 := startPeer(t, "n2", "", via, Config{})
	defer s2.Close()
	defer n2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n2.LeaderHTTP(ctx, 30*time.Second); err != nil {
		t.Fatalf("n2 does not find its leader: %v", err)
	}
	must(t, n2.WaitApplied(ctx, n1.AppliedIndex()))
	if err := n1.LeaderKnown(); err != nil {
		t.Errorf("the leader: LeaderKnown = %v, want nil", err)
	}
	n2.leaderAt.Store(nil) // as at a term change, before any forward asked the leader
	before := asked.Load()
	if err := n2.LeaderKnown(); err != nil {
		t.Errorf("a follower: LeaderKnown = %v, want nil", err)
	}
	if got := asked.Load() - before; got != 0 {
		t.Errorf("LeaderKnown asked the leader %d times, want none", got)
	}
}
