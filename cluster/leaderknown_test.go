package cluster

import "testing"

// TestLeaderKnown: a node says at once whether it knows a leader, from Raft alone: the
// leader and a follower that has not asked a new term's leader its HTTP address yet
// both know one, and the follower asks nothing for it (/healthz calls it on every probe).
func TestLeaderKnown(t *testing.T) {
	n1, n2, asked := leaderAndFollowerBehindProxy(t)
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
