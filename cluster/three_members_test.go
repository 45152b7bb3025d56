package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// testMember is a member of a three-node cluster that a test stops and starts again in
// place: its data directory and Raft address stay.
type testMember struct {
	id, dir string
	cfg     Config
	s       *pmd.Store
	n       *Node
}

// threeMembers returns n1, n2 and n3, each with cfg and a Raft address of its own, none
// started; those running when the test ends are stopped.
func threeMembers(t *testing.T, cfg Config) [3]*testMember {
	t.Helper()
	var ms [3]*testMember
	for i, id := range []string{"n1", "n2", "n3"} {
		c := cfg
		c.RaftAddr = loopbackPort(t)
		ms[i] = &testMember{id: id, dir: t.TempDir(), cfg: c}
	}
	t.Cleanup(func() {
		for _, m := range ms {
			if m.n != nil {
				m.stop(t)
			}
		}
	})
	return ms
}

// start starts m, joining the member at the Raft address join (its own: it forms the
// cluster).
func (m *testMember) start(t *testing.T, join string) {
	t.Helper()
	m.s, m.n = startPeer(t, m.id, m.dir, join, m.cfg)
}

func (m *testMember) stop(t *testing.T) {
	t.Helper()
	must(t, m.n.Close())
	must(t, m.s.Close())
	m.n = nil
}

// leaderOf waits until one of among leads, and returns it; the test fails when ctx ends
// first.
func leaderOf(ctx context.Context, t *testing.T, among ...*testMember) *testMember {
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
