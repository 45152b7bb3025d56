package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestJoinRefusesANodeWhoseRaftStopped: a removed node stops its Raft but its process
// goes on answering the cluster service as its id. A join of it (pmd cluster join, or
// its own ask) was taken: it became a voter that takes no entries, and the cluster,
// counting it in its quorum, stopped at its next failure. The leader refuses it, saying
// to restart it, through the leader and through a follower alike.
func TestJoinRefusesANodeWhoseRaftStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s1, n1 := startOne(t, t.TempDir(), Config{})
	defer s1.Close()
	defer n1.Close()
	s2, n2 := startPeer(t, "n2", "", n1.Self().RaftAddr, Config{})
	defer s2.Close()
	defer n2.Close()
	s3, n3 := startPeer(t, "n3", "", n1.Self().RaftAddr, Config{})
	defer s3.Close()
	defer n3.Close()
	must(t, untilIdle(ctx, n1, 3))
	must(t, n1.Remove(ctx, "n3"))
	if st := n3.Self().State; st != "removed" {
		t.Fatalf("n3 after its removal: state %q, want removed", st)
	}
	before, last := servers(t, n1), n1.raft.LastIndex()

	for _, via := range []*Node{n1, n2} {
		err := via.Join(ctx, "n3", n3.Self().RaftAddr)
		if !errors.Is(err, ErrJoinRefused) || !strings.Contains(err.Error(), "node n3 is removed") || !strings.Contains(err.Error(), "restart it") {
			t.Fatalf("join of the removed n3 through %s: %v, want ErrJoinRefused saying it is removed and to restart it", via.Self().ID, err)
		}
	}
	if got := servers(t, n1); len(got) != 2 || got["n3"] != "" || n1.raft.LastIndex() != last {
		t.Fatalf("after the refusals: configuration %v (was %v), last index %d (was %d)", got, before, n1.raft.LastIndex(), last)
	}
}
