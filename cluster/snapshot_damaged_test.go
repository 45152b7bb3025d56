package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestClusterIDIsRecoveredPastADamagedOlderSnapshot: a node that lost raft/CLUSTER_ID,
// whose log no longer holds the seed entry, takes the id of its newest snapshot, and
// starts although an older snapshot is damaged: Raft restores the newest and never reads
// the older one, so the check that its snapshots name one cluster (snapshotsAgree)
// leaves it out (it failed the start on it).
func TestClusterIDIsRecoveredPastADamagedOlderSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, n, stop := startAs(t, dir, "n1", Config{TrailingLogs: 1})
	id := n.Self().Cluster
	for range 2 {
		_, err := s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed"})
		must(t, err)
		must(t, n.raft.Snapshot().Error())
	}
	stop()
	raftDir := filepath.Join(dir, engine.RaftDir)
	own := snapshotsOf(t, raftDir, id)
	if len(own) != 2 {
		t.Fatalf("n1 holds snapshots %v, want 2", own)
	}
	must(t, os.Truncate(filepath.Join(raftDir, "snapshots", own[1], "state.bin"), 0))
	must(t, os.Remove(filepath.Join(raftDir, clusterIDFile)))
	_, n2, _ := startAs(t, dir, "n1", Config{})
	if got := n2.Self().Cluster; got != id {
		t.Fatalf("n1 restarted in cluster %q, want %s", got, id)
	}
}
