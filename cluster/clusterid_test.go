package cluster

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/vmihailenco/msgpack/v5"
)

// startAs starts a one-node cluster of node id on the data directory dir and waits until
// it leads and has recorded its cluster's id (its seed entry applied). cfg gives the
// tuning and Fatal (by default the test fails). stop closes the node and its store; the
// test's cleanup calls it if the test did not.
func startAs(t *testing.T, dir, id string, cfg Config) (_ *pmd.Store, _ *Node, stop func()) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	cfg.NodeID, cfg.RaftAddr, cfg.HTTPAddr, cfg.Dir, cfg.Store, cfg.Logger = id, "127.0.0.1:0", "127.0.0.1:1", dir, s, logger
	if cfg.Fatal == nil {
		cfg.Fatal = func(err error) { t.Errorf("node %s stopped: %v", id, err) }
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { n.Close(); s.Close() }) }
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for !n.IsLeader() || n.Self().Cluster == "" {
		if time.Now().After(deadline) {
			t.Fatalf("node %s does not lead its one-node cluster with a cluster id within 30s: %+v", id, n.Self())
		}
		time.Sleep(20 * time.Millisecond) // polling Raft's state: nothing to wait on
	}
	return s, n, stop
}

// openAndStart opens the store in dir and starts node id on it, as startAs does, but
// returns Start's error instead of failing the test and does not wait for the node to
// lead. cfg gives the tuning and Fatal (by default the test fails). The test's cleanup
// closes the store, and the node if it started: the caller closes neither.
func openAndStart(t *testing.T, dir, id string, cfg Config) (*pmd.Store, *Node, error) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	cfg.NodeID, cfg.RaftAddr, cfg.HTTPAddr, cfg.Dir, cfg.Store, cfg.Logger = id, "127.0.0.1:0", "127.0.0.1:1", dir, s, logger
	if cfg.Fatal == nil {
		cfg.Fatal = func(err error) { t.Errorf("node %s stopped: %v", id, err) }
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		return s, nil, err
	}
	t.Cleanup(func() { n.Close() })
	return s, n, nil
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o640)
	})
	must(t, err)
}

// TestJoinRefusesANodeOfAnotherClusterSeededFromTheSameStore: two clusters seeded from
// copies of one single node's data directory share its store id, but each has a cluster
// id of its own, made by its first leader and recorded by its members: the leader of one
// refuses to add a node of the other, whose records are the other cluster's (it took it
// as its own: the store ids matched). The id survives a restart.
func TestJoinRefusesANodeOfAnotherClusterSeededFromTheSameStore(t *testing.T) {
	src := t.TempDir()
	s, err := pmd.Open(src, pmd.Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	_, err = s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Placed"})
	must(t, err)
	must(t, s.Close())
	dirA, dirB := t.TempDir(), t.TempDir()
	copyTree(t, src, dirA)
	copyTree(t, src, dirB)

	sA, nA, stopA := startAs(t, dirA, "a1", Config{})
	sB, nB, _ := startAs(t, dirB, "b1", Config{})
	if sA.ID() != sB.ID() {
		t.Fatalf("store ids %s and %s: the copies should share one", sA.ID(), sB.ID())
	}
	idA, idB := nA.Self().Cluster, nB.Self().Cluster
	if idA == idB {
		t.Fatalf("both clusters have the cluster id %s", idA)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = nA.Join(ctx, "b1", nB.Self().RaftAddr)
	if !errors.Is(err, ErrJoinRefused) || !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), idB) {
		t.Fatalf("join of a node of the other cluster: %v, want ErrJoinRefused naming %s and %s", err, idA, idB)
	}
	if servers := nA.raft.GetConfiguration().Configuration().Servers; len(servers) != 1 {
		t.Fatalf("cluster A's configuration %v, want a1 alone", servers)
	}
	b, err := os.ReadFile(filepath.Join(dirA, engine.RaftDir, clusterIDFile))
	if err != nil || strings.TrimSpace(string(b)) != idA {
		t.Fatalf("%s holds %q (%v), want %s", clusterIDFile, b, err, idA)
	}
	stopA()
	if _, nA, _ = startAs(t, dirA, "a1", Config{}); nA.Self().Cluster != idA {
		t.Fatalf("a1 restarted with the cluster id %q, want %s", nA.Self().Cluster, idA)
	}
}

// TestClusterIDIsCompatible: a seed entry or snapshot of a pmd before cluster ids (no
// "c" field) decodes with no cluster id, which records nothing and conflicts with
// nothing; one of this pmd decodes into the older form (a member of an older release);
// a recorded id refuses another, not itself.
func TestClusterIDIsCompatible(t *testing.T) {
	type oldSeed struct {
		StoreID  uuid.UUID `msgpack:"id"`
		Position uint64    `msgpack:"pos"`
		Rules    uint32    `msgpack:"r,omitempty"`
	}
	store, cluster := uuid.New(), uuid.New()
	b, err := msgpack.Marshal(&oldSeed{StoreID: store, Position: 7})
	must(t, err)
	var e seedEntry
	must(t, msgpack.Unmarshal(b, &e))
	if e.Cluster != uuid.Nil || e.StoreID != store || e.Position != 7 {
		t.Fatalf("an older seed entry decodes to %+v", e)
	}
	b, err = msgpack.Marshal(&seedEntry{StoreID: store, Position: 7, Cluster: cluster})
	must(t, err)
	var old oldSeed
	if err := msgpack.Unmarshal(b, &old); err != nil || old.StoreID != store || old.Position != 7 {
		t.Fatalf("an older member decodes this seed entry to %+v, %v", old, err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, clusterIDFile)
	c, err := loadClusterID(path)
	must(t, err)
	must(t, c.adopt(uuid.Nil)) // an older leader's entry: nothing recorded
	if c.get() != uuid.Nil {
		t.Fatalf("recorded %s from no id", c.get())
	}
	must(t, c.adopt(cluster))
	must(t, c.adopt(cluster))
	must(t, c.adopt(uuid.Nil))
	if err := c.adopt(uuid.New()); err == nil || !strings.Contains(err.Error(), cluster.String()) {
		t.Fatalf("adopt of another cluster's id: %v, want a refusal naming %s", err, cluster)
	}
	c, err = loadClusterID(path)
	if err != nil || c.get() != cluster {
		t.Fatalf("after a restart: %v, %v; want %s", c.get(), err, cluster)
	}
}

// TestClusterIDIsRecoveredFromTheSeedEntry: a node that lost raft/CLUSTER_ID (or applied
// the seed entry with a pmd before cluster ids and was upgraded) records the id again
// from the seed entry in its Raft log at its next start: Raft does not hand that entry,
// which the store applied, to the state machine again. It stayed without an id.
func TestClusterIDIsRecoveredFromTheSeedEntry(t *testing.T) {
	dir := t.TempDir()
	s, n, stop := startAs(t, dir, "a1", Config{})
	id := n.Self().Cluster
	_, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Placed"})
	must(t, err)
	stop()
	must(t, os.Remove(filepath.Join(dir, engine.RaftDir, clusterIDFile)))

	_, n, err = openAndStart(t, dir, "a1", Config{})
	must(t, err)
	if got := n.Self().Cluster; got != id {
		t.Fatalf("a1 restarted without %s with the cluster id %q, want %s from its seed entry", clusterIDFile, got, id)
	}
	b, err := os.ReadFile(filepath.Join(dir, engine.RaftDir, clusterIDFile))
	if err != nil || strings.TrimSpace(string(b)) != id {
		t.Fatalf("%s holds %q (%v), want %s", clusterIDFile, b, err, id)
	}
}

// TestClusterIDIsRecordedFromAnInstalledSnapshot: a node that joins after the leader
// dropped the seed entry from its log (a snapshot) gets the leader's snapshot, and
// records the cluster id it carries.
func TestClusterIDIsRecordedFromAnInstalledSnapshot(t *testing.T) {
	ctx := context.Background()
	sA, nA, _ := startAs(t, t.TempDir(), "a1", Config{TrailingLogs: 1})
	id := nA.Self().Cluster
	for range 3 {
		_, err := sA.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed"})
		must(t, err)
		must(t, nA.raft.Snapshot().Error()) // the seed entry leaves the log: a joiner gets the snapshot
	}
	dirB := t.TempDir()
	sB, nB, err := openAndStart(t, dirB, "b1", Config{Join: []string{nA.Self().RaftAddr}})
	must(t, err)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for sB.LastPosition() < sA.LastPosition() || nB.Self().Cluster == "" {
		select {
		case <-wctx.Done():
			t.Fatalf("b1 at position %d of %d, cluster id %q, after 60s", sB.LastPosition(), sA.LastPosition(), nB.Self().Cluster)
		case <-time.After(20 * time.Millisecond): // polling the copy: nothing to wait on
		}
	}
	if got := nB.Self().Cluster; got != id {
		t.Fatalf("b1 recorded the cluster id %s, want the leader's %s", got, id)
	}
	b, err := os.ReadFile(filepath.Join(dirB, engine.RaftDir, clusterIDFile))
	if err != nil || strings.TrimSpace(string(b)) != id {
		t.Fatalf("b1's %s holds %q (%v), want %s", clusterIDFile, b, err, id)
	}
}

// TestSeedEntryIDBeforeAndAfterWrites: while no write was made, the latest seed entry's
// cluster id replaces the recorded one on every node (a leader that had no id, after a
// snapshot of an older leader, seeds again with a new one: the cluster ended with two,
// and refused its own members); once writes exist a seed entry's other id is not taken
// (the entry changes nothing else either), and the node goes on.
func TestSeedEntryIDBeforeAndAfterWrites(t *testing.T) {
	s, n, _ := startAs(t, t.TempDir(), "a1", Config{})
	seed := func(id uuid.UUID) {
		t.Helper()
		b, err := msgpack.Marshal(&seedEntry{StoreID: s.ID(), Position: s.LastPosition(), Cluster: id})
		must(t, err)
		must(t, n.raft.Apply(append([]byte{entrySeed}, b...), 0).Error())
	}
	again := uuid.New()
	seed(again)
	if got := n.Self().Cluster; got != again.String() {
		t.Fatalf("after a second seed entry before any write, the cluster id is %s, want the entry's %s", got, again)
	}
	_, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Placed"})
	must(t, err)
	seed(uuid.New())
	if got := n.Self().Cluster; got != again.String() {
		t.Fatalf("after a seed entry that came after a write, the cluster id is %s, want %s kept", got, again)
	}
}

// TestClusterIDIsRecoveredFromTheLatestSeedEntryBeforeTheFirstWrite: a node that lost
// raft/CLUSTER_ID and whose Raft log holds two seed entries with different ids before
// its first write recovers the later one's, the id every member kept (fsm.seed); with
// its own snapshot, taken after the write, it starts too. It recovered the first
// entry's: with the snapshot its start was refused as of another cluster, without it it
// ran with an id the cluster did not have.
func TestClusterIDIsRecoveredFromTheLatestSeedEntryBeforeTheFirstWrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snapshot bool
	}{{"no snapshot", false}, {"own snapshot after the write", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, n, stop := startAs(t, dir, "a1", Config{})
			latest := uuid.New()
			b, err := msgpack.Marshal(&seedEntry{StoreID: s.ID(), Position: s.LastPosition(), Cluster: latest})
			must(t, err)
			must(t, n.raft.Apply(append([]byte{entrySeed}, b...), 0).Error())
			_, err = s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Placed"})
			must(t, err)
			if tc.snapshot {
				must(t, n.raft.Snapshot().Error())
			}
			stop()
			must(t, os.Remove(filepath.Join(dir, engine.RaftDir, clusterIDFile)))

			_, n, err = openAndStart(t, dir, "a1", Config{})
			if err != nil {
				t.Fatalf("a1 restarted without %s: %v", clusterIDFile, err)
			}
			if got := n.Self().Cluster; got != latest.String() {
				t.Fatalf("a1 restarted without %s with the cluster id %q, want %s from the latest seed entry before the first write", clusterIDFile, got, latest)
			}
		})
	}
}
