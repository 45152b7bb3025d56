package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestTimestampsGrowAcrossARestart: a node restarted after a leader whose clock was
// ahead wrote events gives the events it writes as the leader later timestamps than
// those, as a leader that applied them in this process does. The entries at or below
// the store's last write are not applied again after a restart, so the greatest
// timestamp applied started at 0, and the node's clock alone set the next write's: an
// hour before the events before it in the log.
func TestTimestampsGrowAcrossARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, n := startOne(t, dir, Config{})
	n.applyMu.Lock()
	n.lastTS = time.Now().Add(time.Hour).UnixNano() // as a leader whose clock is an hour ahead
	n.applyMu.Unlock()
	ahead, err := s.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{Type: "T"})
	must(t, err)
	must(t, n.Close())
	must(t, s.Close())

	s, n = startOne(t, dir, Config{})
	defer s.Close()
	defer n.Close()
	after, err := s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
	must(t, err)
	var ts []time.Time
	for ev, err := range s.ReadAll(ctx, pmd.ReadOptions{}) {
		must(t, err)
		if ev.Position == ahead.FirstPosition || ev.Position == after.FirstPosition {
			ts = append(ts, ev.Timestamp)
		}
	}
	if len(ts) != 2 {
		t.Fatalf("read %d of the two events", len(ts))
	}
	if !ts[1].After(ts[0]) {
		t.Errorf("the event written after the restart has timestamp %v, before the one written before it (%v)", ts[1], ts[0])
	}
}

// TestTimestampsGrowAfterACatchUp: a node that caught up through a snapshot, copying
// the records it lacked, counts their timestamps as applied: leading later with a clock
// behind the leader that wrote them, it gives its writes later timestamps. The copied
// records come from no entry the node applies, so the greatest timestamp it applied
// stayed below them.
func TestTimestampsGrowAfterACatchUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startWithN2Away(ctx, t)
	s1, n1 := c.s1, c.n1
	n1.applyMu.Lock()
	n1.lastTS = time.Now().Add(time.Hour).UnixNano() // as a leader whose clock is an hour ahead
	n1.applyMu.Unlock()
	for range 3 {
		_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
		must(t, err)
	}
	must(t, n1.raft.Snapshot().Error())
	_, n2 := c.rejoin(t)
	if err := untilIdle(ctx, n1, 3); err != nil {
		t.Fatalf("n2 catching up: %v", err)
	}
	want, err := s1.LastEventTime()
	must(t, err)
	if got := n2.fsm.lastTS.Load(); got < want {
		t.Errorf("n2 caught up to events of timestamp %v, and takes the greatest applied to be %v", time.Unix(0, want).UTC(), time.Unix(0, got).UTC())
	}
}
