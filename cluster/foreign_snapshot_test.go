package cluster

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestRestoreRefusesASnapshotOfAnotherCluster: a node of cluster B that a leader of
// cluster A adds without checking cluster ids (a leader of an older release) gets A's
// snapshot, which Raft saves in the node's raft/snapshots/ before the state machine
// refuses it. The node stops at the first refusal (its Fatal), so the leader's retries
// save no further copies and the node keeps its own newest snapshot; its next start
// refuses the saved snapshot, naming it and both cluster ids, before it copies anything
// (it copied A's records from A and failed with Raft's "failed to load any existing
// snapshots"); once the operator removes that snapshot, the node starts in its own
// cluster with its own records.
func TestRestoreRefusesASnapshotOfAnotherCluster(t *testing.T) {
	dirB, idA, idB, posB, foreign := foreignSnapshotSetup(t, true)
	snapDir := filepath.Join(dirB, engine.RaftDir)

	// Without raft/CLUSTER_ID, whose id the start would take from its newest snapshot
	// (the log no longer holds the seed entry), it refuses too, naming both clusters,
	// before it copies anything: cluster A's snapshot is of the same store (copies of one
	// data directory), and the node took A's id from it and copied A's records.
	idFile := filepath.Join(snapDir, clusterIDFile)
	idBytes, err := os.ReadFile(idFile)
	must(t, err)
	must(t, os.Remove(idFile))
	// pmd repair's bound refuses it too: the other cluster's snapshot position is not
	// where this node's Raft state writes records again.
	if _, err := Replayed(dirB); err == nil || !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), idB) {
		t.Errorf("Replayed on b1's directory without raft/CLUSTER_ID: %v, want a refusal naming clusters %s and %s", err, idA, idB)
	}
	sR, err := startB1Refused(t, dirB, "b1, without raft/CLUSTER_ID,")
	// Its log no longer holds the seed entry: it says where to read the id to record.
	for _, want := range []string{idA, idB, "cluster_id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start of b1 without raft/CLUSTER_ID: %v; want it to name %s", err, want)
		}
	}
	if got := sR.LastPosition(); got != posB {
		t.Fatalf("b1's store is at %d after the refused start without raft/CLUSTER_ID, was at %d: it copied cluster A's records", got, posB)
	}
	must(t, sR.Close())
	must(t, os.WriteFile(idFile, idBytes, 0o640))

	// The next start refuses before it copies anything, naming the snapshot.
	sR, err = startB1Refused(t, dirB, "b1")
	for _, want := range []string{idA, idB, foreign[0]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start of b1: %v; want it to name %s", err, want)
		}
	}
	if got := sR.LastPosition(); got != posB {
		t.Fatalf("b1's store is at %d after the refused start, was at %d: it copied cluster A's records", got, posB)
	}
	if _, err := Replayed(dirB); err == nil || !strings.Contains(err.Error(), foreign[0]) {
		t.Errorf("Replayed on b1's directory: %v, want a refusal naming %s", err, foreign[0])
	}
	must(t, sR.Close())

	// The operator removes the other cluster's snapshots: b1 starts in its own cluster.
	restartWithoutForeign(t, dirB, idB, posB, foreign)
}

// TestStartRefusesAForeignSnapshotWithNoOwnSnapshot: a node of cluster B that holds
// writes but no Raft snapshot of its own (Raft takes its first after 8192 entries), and
// that lost raft/CLUSTER_ID, has cluster A's saved snapshot as its only one. Its log's
// seed entry, followed by a write entry, names its cluster: the start takes that id, not
// the newer snapshot's, and refuses the snapshot before it copies anything (it took A's
// id, copied A's records onto its own, and left a store that no longer opened). pmd
// repair's bound (Replayed) refuses it too.
func TestStartRefusesAForeignSnapshotWithNoOwnSnapshot(t *testing.T) {
	dirB, idA, idB, posB, foreign := foreignSnapshotSetup(t, false)
	snapDir := filepath.Join(dirB, engine.RaftDir)
	idFile := filepath.Join(snapDir, clusterIDFile)
	must(t, os.Remove(idFile))
	if _, err := Replayed(dirB); err == nil || !strings.Contains(err.Error(), foreign[0]) {
		t.Errorf("Replayed on b1's directory without raft/CLUSTER_ID: %v, want a refusal naming %s", err, foreign[0])
	}
	sR, err := startB1Refused(t, dirB, "b1, without raft/CLUSTER_ID and with no snapshot of its own,")
	for _, want := range []string{idA, idB, foreign[0]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start of b1: %v; want it to name %s", err, want)
		}
	}
	if got := sR.LastPosition(); got != posB {
		t.Errorf("b1's store is at %d after the refused start, was at %d: it copied cluster A's records", got, posB)
	}
	must(t, sR.Close())
	if b, err := os.ReadFile(idFile); err == nil && strings.TrimSpace(string(b)) != idB {
		t.Errorf("b1's raft/CLUSTER_ID after the refused start: %s, want its own cluster's %s or none", b, idB)
	}

	// The operator removes the other cluster's snapshot: b1 starts in its own cluster,
	// and its store opens with its own records only.
	restartWithoutForeign(t, dirB, idB, posB, foreign)
}

// startB1Refused opens b1's store in dirB and starts b1 on it, a start that must be
// refused: it returns the store, still open at b1's position, and Start's error. who
// names the start in the failure. The test's cleanup closes the store.
func startB1Refused(t *testing.T, dirB, who string) (*pmd.Store, error) {
	t.Helper()
	sR, _, err := openAndStart(t, dirB, "b1", Config{resumeWait: 5 * time.Second,
		Fatal: func(err error) { t.Errorf("b1 stopped: %v", err) }})
	if err == nil {
		t.Fatalf("%s started on cluster A's snapshot", who)
	}
	return sR, err
}

// restartWithoutForeign removes the snapshots foreign from b1's raft/snapshots/, as the
// operator would, and checks that b1 then starts in its own cluster idB, at its
// position posB, with no record of cluster A in its store.
func restartWithoutForeign(t *testing.T, dirB, idB string, posB uint64, foreign []string) {
	t.Helper()
	for _, id := range foreign {
		must(t, os.RemoveAll(filepath.Join(dirB, engine.RaftDir, "snapshots", id)))
	}
	s2, n2, _ := startAs(t, dirB, "b1", Config{})
	if n2.Self().Cluster != idB || s2.LastPosition() != posB {
		t.Fatalf("b1 restarted in cluster %s at position %d, want %s at %d", n2.Self().Cluster, s2.LastPosition(), idB, posB)
	}
	for e, err := range s2.ReadAll(context.Background(), pmd.ReadOptions{}) {
		must(t, err)
		if e.Stream == "A$1" {
			t.Fatalf("b1's store holds cluster A's record %d", e.Position)
		}
	}
}

// foreignSnapshotSetup makes two one-node clusters, a1's (A) and b1's (B), from copies
// of one data directory, writes to both, and has a1 add b1 without checking cluster ids
// (as a leader of an older release would), so that Raft saves A's snapshot in b1's
// raft/snapshots/ before b1 refuses it and stops. With ownSnapshot, b1 keeps only one
// trailing Raft entry and takes a snapshot of its own first (its log no longer holds
// the seed entry); without, it has no snapshot of its own and its log holds the seed
// entry and its write. b1 is stopped on return.
func foreignSnapshotSetup(t *testing.T, ownSnapshot bool) (dirB, idA, idB string, posB uint64, foreign []string) {
	t.Helper()
	ctx := context.Background()
	src := t.TempDir()
	s, err := pmd.Open(src, pmd.Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	_, err = s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed"})
	must(t, err)
	must(t, s.Close())
	dirA := t.TempDir()
	dirB = t.TempDir()
	copyTree(t, src, dirA)
	copyTree(t, src, dirB)

	sA, nA, _ := startAs(t, dirA, "a1", Config{TrailingLogs: 1})
	fatal := make(chan error, 16)
	cfgB := Config{Fatal: func(err error) { fatal <- err }}
	if ownSnapshot {
		cfgB.TrailingLogs = 1
	}
	sB, nB, stopB := startAs(t, dirB, "b1", cfgB)
	idA, idB = nA.Self().Cluster, nB.Self().Cluster
	_, err = sB.Append(ctx, "B$1", pmd.Any, pmd.EventData{Type: "B"})
	must(t, err)
	if ownSnapshot {
		must(t, nB.raft.Snapshot().Error())
	}
	for range 6 {
		_, err = sA.Append(ctx, "A$1", pmd.Any, pmd.EventData{Type: "A"})
		must(t, err)
		must(t, nA.raft.Snapshot().Error()) // the log A keeps no longer reaches b1's: A sends its snapshot
	}
	posB = sB.LastPosition()
	snapDir := filepath.Join(dirB, engine.RaftDir)
	own := snapshotsOf(t, snapDir, idB)
	if ownSnapshot != (len(own) > 0) {
		t.Fatalf("b1 holds snapshots of its own %v, want some: %v", own, ownSnapshot)
	}

	// Bypass checkJoiner, as a leader of an older release would.
	go nA.raft.AddVoter("b1", raft.ServerAddress(nB.Self().RaftAddr), 0, 0)
	select {
	case err := <-fatal:
		if !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), idB) {
			t.Fatalf("b1 stopped with %v, want an error naming clusters %s and %s", err, idA, idB)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("b1 did not stop within 60s on cluster A's snapshot")
	}
	// Stopped: Raft takes no further install, so b1 keeps its own newest snapshot.
	deadline := time.Now().Add(30 * time.Second)
	for nB.raft.State() != raft.Shutdown {
		if time.Now().After(deadline) {
			t.Fatalf("b1's Raft is %s after the refusal, want it stopped", nB.raft.State())
		}
		time.Sleep(10 * time.Millisecond) // polling Raft's state: nothing to wait on
	}
	must(t, nA.raft.RemoveServer("b1", 0, 0).Error())
	stopB()
	if got := snapshotsOf(t, snapDir, idB); len(got) != len(own) || len(got) > 0 && got[0] != own[0] {
		t.Fatalf("b1's own snapshots after the refusal: %v, want the newest, %s, kept", got, own[0])
	}
	foreign = snapshotsOf(t, snapDir, idA)
	if len(foreign) == 0 {
		t.Fatalf("b1 holds no snapshot of cluster A: the test did not make Raft save one")
	}
	if len(foreign) > 1 {
		t.Errorf("b1 holds %d snapshots of cluster A (%v): it did not stop at the first", len(foreign), foreign)
	}
	return dirB, idA, idB, posB, foreign
}

// snapshotsOf lists, newest first, the snapshots in raftDir of the cluster id cluster.
func snapshotsOf(t *testing.T, raftDir, cluster string) []string {
	t.Helper()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hclog.NewNullLogger())
	must(t, err)
	metas, err := snaps.List()
	must(t, err)
	var ids []string
	for _, m := range metas {
		d, err := readSnapshot(snaps, m.ID)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if idString(d.Cluster) == cluster {
			ids = append(ids, m.ID)
		}
	}
	return ids
}
