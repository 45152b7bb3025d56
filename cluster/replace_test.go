package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// servers is n's configuration: each member's id and Raft address.
func servers(t *testing.T, n *Node) map[string]string {
	t.Helper()
	f := n.raft.GetConfiguration()
	must(t, f.Error())
	m := map[string]string{}
	for _, s := range f.Configuration().Servers {
		m[string(s.ID)] = string(s.Address)
	}
	return m
}

// TestJoinReplacesOnlyAGoneMember: a join of a member's id at another address replaces
// it only when the old node is gone. Not the leader's (it removed itself, "raft is
// already shutdown", and went on serving as if a member); not a node that still answers
// as that id at its old address (it was removed without being told, and served a copy
// that no longer followed); a stopped member is replaced by the node at its new address.
func TestJoinReplacesOnlyAGoneMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s1, n1 := startOne(t, t.TempDir(), Config{})
	defer s1.Close()
	defer n1.Close()
	s2, n2 := startPeer(t, "n2", "", n1.Self().RaftAddr, Config{})
	defer s2.Close()
	defer n2.Close()
	s3, n3 := startPeer(t, "n3", "", n1.Self().RaftAddr, Config{})
	must(t, untilIdle(ctx, n1, 3))
	before := servers(t, n1)

	for _, tt := range []struct {
		name, id, want string
	}{
		{"the leader", "n1", "the leader"},
		{"a member that answers", "n2", "which still answers as n2"},
	} {
		err := n1.addVoter(ctx, tt.id, "127.0.0.1:29999")
		if !errors.Is(err, ErrJoinRefused) || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%s at another address: %v, want ErrJoinRefused saying %q", tt.name, err, tt.want)
		}
		if got := servers(t, n1); len(got) != 3 || got["n1"] != before["n1"] || got["n2"] != before["n2"] || !n1.IsLeader() {
			t.Fatalf("after refusing %s: configuration %v (was %v), n1 leads: %v", tt.name, got, before, n1.IsLeader())
		}
	}

	// n3 stops; a fresh node n3 at another address takes its place.
	must(t, n3.Close())
	must(t, s3.Close())
	s4, n4 := startPeer(t, "n3", "", n1.Self().RaftAddr, Config{})
	defer s4.Close()
	defer n4.Close()
	if n4.Self().RaftAddr == before["n3"] {
		t.Skip("the new n3 got the old one's port")
	}
	must(t, untilIdle(ctx, n1, 3))
	if got := servers(t, n1); got["n3"] != n4.Self().RaftAddr || got["n2"] != before["n2"] {
		t.Fatalf("configuration %v, want n3 at %s", got, n4.Self().RaftAddr)
	}
}
