package cluster

import (
	"context"
	"errors"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
)

// TestWipedMemberComesBackAfterItsRemoval: a member that lost its data directory is
// removed before it starts again with an empty one (docs/cluster.md), and the removal is
// refused while another member is down: Raft commits it with the configuration without
// the removed member, whose other voter was then down, so the leader appended it, could
// not commit it, stepped down and left the cluster without a leader (every write 503,
// pmd cluster remove "leadership lost while committing log") until that member was
// back. Refused, the configuration is unchanged and the leader goes on taking writes.
// With every member up, the removal commits and leaves the two others in the
// configuration; the node started empty with --join is added again as a new member,
// copies the write acknowledged before, and the write outlives the loss of the leader.
func TestWipedMemberComesBackAfterItsRemoval(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ms := threeMembers(t, Config{})
	start := func(m *testMember, join string) { m.start(t, join) }
	stop := func(m *testMember) { m.stop(t) }
	leader := func(among ...*testMember) *testMember { return leaderOf(ctx, t, among...) }
	members := func(m *testMember) []string {
		t.Helper()
		ids := slices.Collect(maps.Keys(servers(t, m.n)))
		slices.Sort(ids)
		return ids
	}
	for _, m := range ms {
		start(m, ms[0].cfg.RaftAddr) // n1 names itself: it forms the cluster, which the others join
	}
	lead := leader(ms[:]...)
	must(t, untilIdle(ctx, lead.n, 3))
	var down, wiped *testMember
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
	if _, err := lead.s.Append(ctx, "Acknowledged$1", pmd.NoStream, pmd.EventData{Type: "T"}); err != nil {
		t.Fatal(err) // on the two members up: a quorum
	}
	// wiped lost its disk: its removal is refused while down is down, through the leader
	// or a follower, naming the member that is down.
	all := members(lead)
	for _, via := range []*testMember{lead, wiped} {
		err := via.n.Remove(ctx, wiped.id)
		if !errors.Is(err, ErrRemoveRefused) || !strings.Contains(err.Error(), "start "+down.id+" again") {
			t.Fatalf("removing %s through %s with %s down: %v, want ErrRemoveRefused naming %s", wiped.id, via.id, down.id, err, down.id)
		}
	}
	if got := members(lead); !slices.Equal(got, all) {
		t.Fatalf("the configuration after the refused removal: %v, want %v", got, all)
	}
	if _, err := lead.s.Append(ctx, "AfterTheRefusal$1", pmd.NoStream, pmd.EventData{Type: "T"}); err != nil {
		t.Fatalf("a write after the refused removal: %v; want the leader still leading", err)
	}

	// With every member up, the removal commits, and what is left is the two others.
	start(down, lead.cfg.RaftAddr)
	must(t, untilIdle(ctx, lead.n, 3))
	must(t, lead.n.Remove(ctx, wiped.id))
	want := []string{lead.id, down.id}
	slices.Sort(want)
	if got := members(lead); !slices.Equal(got, want) {
		t.Fatalf("the configuration after removing %s: %v, want %v", wiped.id, got, want)
	}
	must(t, untilIdle(ctx, lead.n, 2))

	// Started again empty with --join, wiped is added as a new member and copies the
	// cluster's records.
	stop(wiped)
	must(t, os.RemoveAll(wiped.dir))
	start(wiped, lead.cfg.RaftAddr)
	must(t, untilIdle(ctx, lead.n, 3))
	if got := members(lead); !slices.Equal(got, all) {
		t.Fatalf("the configuration after %s joined again: %v, want %v", wiped.id, got, all)
	}
	stop(lead)
	leader(down, wiped)
	for _, m := range []*testMember{down, wiped} {
		for _, stream := range []string{"Acknowledged$1", "AfterTheRefusal$1"} {
			if st, err := m.s.StreamInfo(stream); err != nil || !st.Exists {
				t.Fatalf("the acknowledged write to %s on %s: %+v, %v; want it kept", stream, m.id, st, err)
			}
		}
	}
}

// TestRemoveQuorum: a voter's removal is refused when the voters left hold no quorum
// among those that answer, naming those that did not; a nonvoter's never is.
func TestRemoveQuorum(t *testing.T) {
	voters := func(ids ...string) []raft.Server {
		var ss []raft.Server
		for _, id := range ids {
			ss = append(ss, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":1"), Suffrage: raft.Voter})
		}
		return ss
	}
	withNonvoter := append(voters("n1", "n2", "n3"), raft.Server{ID: "n4", Address: "n4:1", Suffrage: raft.Nonvoter})
	for _, tt := range []struct {
		name    string
		servers []raft.Server
		id      string
		up      []string
		want    string // "" for no refusal
	}{
		{"three, all up", voters("n1", "n2", "n3"), "n3", []string{"n1", "n2", "n3"}, ""},
		{"three, the removed one down", voters("n1", "n2", "n3"), "n3", []string{"n1", "n2"}, ""},
		{"three, another down", voters("n1", "n2", "n3"), "n3", []string{"n1", "n3"}, "voters are n1, n2, and n2 of them did not answer"},
		{"three, the leader removing itself, another down", voters("n1", "n2", "n3"), "n1", []string{"n1", "n2"}, "start n3 again"},
		{"two, the other removed", voters("n1", "n2"), "n2", []string{"n1"}, ""},
		{"five, one other down", voters("n1", "n2", "n3", "n4", "n5"), "n5", []string{"n1", "n2", "n3"}, ""},
		{"five, two others down", voters("n1", "n2", "n3", "n4", "n5"), "n5", []string{"n1", "n2"}, "start n3 and n4 again"},
		{"a nonvoter, others down", withNonvoter, "n4", []string{"n1"}, ""},
		{"a voter beside a nonvoter, another down", withNonvoter, "n3", []string{"n1", "n3", "n4"}, "a quorum of them is 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := map[raft.ServerID]bool{}
			for _, id := range tt.up {
				up[raft.ServerID(id)] = true
			}
			err := removeQuorum(tt.servers, tt.id, up)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("removing %s: %v, want no refusal", tt.id, err)
			case tt.want != "" && (!errors.Is(err, ErrRemoveRefused) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("removing %s: %v, want ErrRemoveRefused saying %q", tt.id, err, tt.want)
			}
		})
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
