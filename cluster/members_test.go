package cluster

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())
	return addr
}

// TestMembershipRefusals: the leader adds no voter that does not answer the cluster
// service as the id it is added as (not started, another node's address, another
// secret): such a voter counts in the quorum, which the cluster then loses at its next
// failure. The removal of an id that is no member fails with ErrUnknownNode, appending
// nothing (it "succeeded", appending a configuration entry), and that of the last voter
// with ErrRemoveRefused. Asked through a follower, the refusals match the same errors.
func TestMembershipRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	secret := [][]byte{bytes.Repeat([]byte{1}, 32)}
	s1, n1 := startOne(t, t.TempDir(), Config{Secrets: secret})
	defer s1.Close()
	defer n1.Close()
	s2, n2 := startPeer(t, "n2", "", n1.Self().RaftAddr, Config{Secrets: secret})
	defer s2.Close()
	defer n2.Close()
	s3, n3 := startPeer(t, "n3", "", deadAddr(t), Config{Secrets: [][]byte{bytes.Repeat([]byte{2}, 32)}})
	defer s3.Close()
	defer n3.Close()
	must(t, untilIdle(ctx, n1, 2))
	before, last := servers(t, n1), n1.raft.LastIndex()

	for _, tt := range []struct {
		name, id, addr, want string
		is                   error
	}{
		{"a node that is not started", "n3", deadAddr(t), "does not answer at", ErrJoinRefused},
		{"another node's address", "n4", n2.Self().RaftAddr, `is "n2", not n4`, ErrJoinRefused},
		{"a node with another secret", "n3", n3.Self().RaftAddr, "does not answer at", ErrJoinRefused},
		{"an id that is no member", "n9", "", "n9 is not a member of the cluster (its members: n1, n2)", ErrUnknownNode},
	} {
		for _, via := range []*Node{n1, n2} {
			var err error
			if tt.addr != "" {
				err = via.Join(ctx, tt.id, tt.addr)
			} else {
				err = via.Remove(ctx, tt.id)
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%s, through %s: %v, want %v saying %q", tt.name, via.Self().ID, err, tt.is, tt.want)
			}
		}
	}
	if got := servers(t, n1); len(got) != 2 || got["n1"] != before["n1"] || got["n2"] != before["n2"] || n1.raft.LastIndex() != last {
		t.Fatalf("after the refusals: configuration %v (was %v), last index %d (was %d)", got, before, n1.raft.LastIndex(), last)
	}

	// n2 goes; n1 is then the last voter, which stays.
	must(t, n1.Remove(ctx, "n2"))
	if err := n1.Remove(ctx, "n1"); !errors.Is(err, ErrRemoveRefused) || !strings.Contains(err.Error(), "last voter") || !strings.Contains(err.Error(), "a one-node cluster's node that lost records is not removed") {
		t.Fatalf("removing the last voter: %v, want ErrRemoveRefused", err)
	}
	if got := servers(t, n1); len(got) != 1 || !n1.IsLeader() {
		t.Fatalf("after refusing to remove the last voter: configuration %v, n1 leads: %v", got, n1.IsLeader())
	}
}
