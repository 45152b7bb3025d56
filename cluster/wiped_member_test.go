package cluster

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestWipedMemberComesBackAfterItsRemoval: a member that lost its data directory is
// removed before it starts again with an empty one (docs/cluster.md). Started again empty
// while still a member, it voted at once holding none of the entries it had acknowledged:
// with a follower down, a write acknowledged by the leader and the other follower, that
// one back empty and the leader down, the first follower led with its vote without the
// write. Removed first, the removal commits only once the follower that was down is back
// and holds every committed entry, and the two then lead with the write.
func TestWipedMemberComesBackAfterItsRemoval(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type member struct {
		id, dir string
		cfg     Config
		s       *pmd.Store
		n       *Node
	}
	var ms [3]*member
	for i, id := range []string{"n1", "n2", "n3"} {
		ms[i] = &member{id: id, dir: t.TempDir(), cfg: Config{RaftAddr: loopbackPort(t)}}
	}
	start := func(m *member) {
		t.Helper()
		// n1 names itself: it forms the cluster, which the others join.
		m.s, m.n = startPeer(t, m.id, m.dir, ms[0].cfg.RaftAddr, m.cfg)
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
	for _, m := range ms {
		start(m)
	}
	lead := leader(ms[:]...)
	must(t, untilIdle(ctx, lead.n, 3))
	var down, wiped *member
	for _, m := range ms {
		switch {
		case m == lead:
		case down == nil:
			down = m
		default:
			wiped = m
		}
	}

	stop(down)
	if _, err := leader(lead, wiped).s.Append(ctx, "Acknowledged$1", pmd.NoStream, pmd.EventData{Type: "T"}); err != nil {
		t.Fatal(err) // on the two members up: a quorum
	}
	// wiped loses its disk: it is removed first, which commits once down is back.
	removed := make(chan error, 1)
	go func() { removed <- lead.n.Remove(ctx, wiped.id) }()
	start(down)
	must(t, <-removed)
	stop(wiped)
	must(t, os.RemoveAll(wiped.dir))
	start(wiped)
	must(t, untilIdle(ctx, leader(lead, down, wiped).n, 3))
	stop(lead)

	leader(down, wiped)
	for _, m := range []*member{down, wiped} {
		if st, err := m.s.StreamInfo("Acknowledged$1"); err != nil || !st.Exists {
			t.Fatalf("the acknowledged write on %s: %+v, %v; want it kept", m.id, st, err)
		}
	}
}

// loopbackPort returns a loopback address whose port was free just now, for a node that
// must come back at the same address.
func loopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
