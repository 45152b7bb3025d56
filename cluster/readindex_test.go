package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// startPeer starts, in this process, a node named id on a store in dir (a new one if
// ""), listening on cfg.RaftAddr (a port of the system's choosing if ""), asking the node
// at join to add it.
func startPeer(t *testing.T, id, dir, join string, cfg Config) (*pmd.Store, *Node) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	if cfg.RaftAddr == "" {
		cfg.RaftAddr = "127.0.0.1:0"
	}
	cfg.NodeID, cfg.HTTPAddr, cfg.Dir, cfg.Store, cfg.Logger = id, "127.0.0.1:1", dir, s, logger
	cfg.Join = []string{join}
	if cfg.Fatal == nil {
		cfg.Fatal = func(err error) { t.Errorf("%s stopped: %v", id, err) }
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s, n
}

// untilIdle polls n's Status until every member of a cluster of want answers and has
// applied up to the commit index of n, or ctx ends.
func untilIdle(ctx context.Context, n *Node, want int) error {
	var last error
	for {
		st, err := n.Status(ctx)
		last = err
		if err == nil {
			last = nil
			if len(st.Nodes) != want {
				last = fmt.Errorf("%d members, want %d", len(st.Nodes), want)
			}
			for _, m := range st.Nodes {
				if last == nil && (!m.Reachable || m.AppliedIndex != st.Self.CommitIndex) {
					last = fmt.Errorf("member %s (reachable %v) applied %d, the leader's commit index is %d", m.ID, m.Reachable, m.AppliedIndex, st.Self.CommitIndex)
				}
			}
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond): // polling the members' state: nothing to wait on
		}
	}
}

// TestLeaderReadAppendsNothing: a leader read (ReadBarrier) adds no entry to the Raft
// log, and after it an idle cluster's members all reach the leader's commit index
// (GET /v1/cluster's lag 0, pmd_raft_follower_lag_entries 0). A read that committed a
// barrier entry left every node one behind for good: the state machine never sees a
// barrier.
func TestLeaderReadAppendsNothing(t *testing.T) {
	s1, n1 := startOne(t, t.TempDir(), Config{})
	defer s1.Close()
	defer n1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
	must(t, err)
	nodes := []*Node{n1}
	for _, id := range []string{"n2", "n3"} {
		s, n := startPeer(t, id, "", n1.Self().RaftAddr, Config{})
		defer s.Close()
		defer n.Close()
		nodes = append(nodes, n)
	}
	// An election under load appends its own entries: the reads are checked in a term
	// that held throughout.
	for {
		var l *Node
		for _, n := range nodes {
			if n.IsLeader() {
				l = n
			}
		}
		if l == nil {
			select {
			case <-ctx.Done():
				t.Fatal("no leader")
			case <-time.After(20 * time.Millisecond): // polling Raft's state: nothing to wait on
			}
			continue
		}
		if err := untilIdle(ctx, l, 3); err != nil {
			t.Fatalf("before the reads: %v", err)
		}
		term, before := l.raft.CurrentTerm(), l.raft.LastIndex()
		var err error
		for range 3 {
			if err = l.ReadBarrier(ctx); err != nil {
				break
			}
		}
		if l.raft.CurrentTerm() != term {
			continue
		}
		must(t, err)
		if after := l.raft.LastIndex(); after != before {
			t.Errorf("three leader reads took the log from index %d to %d", before, after)
		}
		if err := untilIdle(ctx, l, 3); err != nil {
			t.Fatalf("after the reads: %v", err)
		}
		break
	}
	// A wait for each node's commit index, which ends at entries the state machine never
	// sees, ends.
	for _, n := range nodes {
		must(t, n.WaitApplied(ctx, n.Self().CommitIndex))
	}
}

// TestCatchUpToASnapshotAtTheEnd: a node away while the leader took a snapshot at its
// last entry and dropped the entries before it catches up through the snapshot, with no
// entry after it to apply: its applied index still reaches the commit index (the
// catch-up tests wait for that). It stayed where it was before the node went away: the
// state machine never sees an entry again, and the store's copy was complete all along.
func TestCatchUpToASnapshotAtTheEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startWithN2Away(ctx, t)
	s1, n1 := c.s1, c.n1
	for range 30 {
		_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
		must(t, err)
	}
	must(t, n1.raft.Snapshot().Error())
	s2, _ := c.rejoin(t)
	if err := untilIdle(ctx, n1, 3); err != nil {
		t.Fatalf("n2 catching up: %v (n2 holds %d records of %d)", err, s2.LastPosition(), s1.LastPosition())
	}
	if s2.LastPosition() != s1.LastPosition() {
		t.Fatalf("n2 holds %d records, n1 %d", s2.LastPosition(), s1.LastPosition())
	}
}

// n2Away is a three-node cluster whose n2 is away: n1 leads, with TrailingLogs 1, so that a
// snapshot it takes drops the entries n2 lacks, and timeouts three times the default, so
// that no election takes the lead from it under load.
type n2Away struct {
	s1          *pmd.Store
	n1          *Node
	slow        Config
	dir2, addr2 string // n2's data directory and Raft address, for its rejoin
}

// startWithN2Away starts n1, n2 and n3, waits until all three are in, and stops n2.
func startWithN2Away(ctx context.Context, t *testing.T) *n2Away {
	t.Helper()
	c := &n2Away{slow: Config{HeartbeatTimeout: 3 * time.Second, ElectionTimeout: 3 * time.Second}}
	cfg1 := c.slow
	cfg1.TrailingLogs = 1
	c.s1, c.n1 = startOne(t, t.TempDir(), cfg1)
	t.Cleanup(func() { c.s1.Close() })
	t.Cleanup(func() { c.n1.Close() })
	c.dir2 = t.TempDir()
	s2, n2 := startPeer(t, "n2", c.dir2, c.n1.Self().RaftAddr, c.slow)
	s3, n3 := startPeer(t, "n3", "", c.n1.Self().RaftAddr, c.slow)
	t.Cleanup(func() { s3.Close() })
	t.Cleanup(func() { n3.Close() })
	if err := untilIdle(ctx, c.n1, 3); err != nil {
		t.Fatalf("n2 joining: %v", err)
	}
	c.addr2 = n2.Self().RaftAddr
	must(t, n2.Close())
	must(t, s2.Close())
	return c
}

// rejoin starts n2 again, on its data directory and Raft address.
func (c *n2Away) rejoin(t *testing.T) (*pmd.Store, *Node) {
	t.Helper()
	cfg2 := c.slow
	cfg2.RaftAddr = c.addr2
	s2, n2 := startPeer(t, "n2", c.dir2, c.n1.Self().RaftAddr, cfg2)
	t.Cleanup(func() { s2.Close() })
	t.Cleanup(func() { n2.Close() })
	return s2, n2
}
