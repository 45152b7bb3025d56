package cluster_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestClusterFarBehind is make test-cluster: a node away while the others take 100,000
// appends, with the default snapshot settings (a snapshot every 8,192 entries, 10,240
// kept after it), catches up through a snapshot install: it copies the records it lacks
// from a peer, then replays the Raft entries after the snapshot, and ends with the same
// $all as the others. It logs the catch-up rate (bench/README.md, "Cluster"). Skipped
// unless PMD_CLUSTER_LONG is set: it takes minutes. TestClusterSnapshotCatchUp is the
// short version in make test.
func TestClusterFarBehind(t *testing.T) {
	if os.Getenv("PMD_CLUSTER_LONG") == "" {
		t.Skip("set PMD_CLUSTER_LONG=1 (make test-cluster)")
	}
	// Raft checks for a snapshot every second rather than every two minutes or more, so
	// that the leader's log is truncated while the node is away.
	c := newCluster(t, 3, "--raft-snapshot-interval", "1s")
	lead := c.leader()
	away := (lead + 1) % 3
	c.kill(away)
	const n = 100_000
	c.appendMany(t, lead, "Away", n)
	v, err := c.view(lead)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.start(away)
	c.waitFor(10*time.Minute, "the node that was away caught up", func() error {
		select {
		case <-c.nodes[away].waited:
			c.nodes[away].logMu.Lock()
			defer c.nodes[away].logMu.Unlock()
			t.Fatalf("%s stopped while catching up:\n%s", c.nodes[away].id, lastLines(c.nodes[away].log.String(), 30))
		default:
		}
		mine, err := c.view(away)
		if err != nil || mine.AppliedIndex < v.CommitIndex {
			return fmt.Errorf("applied %d of %d: %v", mine.AppliedIndex, v.CommitIndex, err)
		}
		return nil
	})
	took := time.Since(start)
	c.nodes[away].logMu.Lock()
	log := c.nodes[away].log.String()
	c.nodes[away].logMu.Unlock()
	if !bytes.Contains([]byte(log), []byte("copying records from a peer")) {
		t.Fatalf("%s caught up without a snapshot install:\n%s", c.nodes[away].id, lastLines(log, 30))
	}
	all := c.converged(5 * time.Minute)
	if len(all) != n {
		t.Fatalf("$all holds %d events, want %d", len(all), n)
	}
	t.Logf("catch-up through a snapshot install: %d events in %s from the restart (process start included): %.0f events/s",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds())
}
