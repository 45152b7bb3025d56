package cluster

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/vmihailenco/msgpack/v5"
)

// resume brings the store up to the node's latest Raft snapshot before Raft starts,
// copying the records it lacks from the other members that snapshot's configuration
// names. Raft saves a snapshot it installs before it restores it: a node stopped partway
// through copying a catch-up's records (Restore, reach) restores at its next start a
// snapshot its store does not reach, and so does a node that ran with NoSync and lost
// records it had. Raft restores that snapshot before it is started, when no peer is known
// (fetch): copied here first, the store is there and Restore has nothing to do. The copy
// goes as a catch-up's (copyRecords: each member in turn, in rounds with a growing wait,
// until it has them, ctx ends or a bound passes). It refuses, with reach's and fetch's errors, a
// store that holds another store's records, and a snapshot that names no other member (a
// single node that lost records: nobody has them).
func (n *Node) resume(ctx context.Context, snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("cluster: list the Raft snapshots: %w", err)
	}
	if len(metas) == 0 {
		return nil
	}
	meta := metas[0] // the newest: the one Raft restores
	d, err := readSnapshot(snaps, meta.ID)
	if err != nil {
		return err
	}
	if err := n.foreignSnapshots(snaps, metas, d); err != nil {
		return err // before anything is copied
	}
	last := n.store.LastPosition()
	if last >= d.Position {
		return nil
	}
	var peers []string
	for _, s := range meta.Configuration.Servers {
		if string(s.ID) != n.cfg.NodeID {
			peers = append(peers, string(s.Address))
		}
	}
	if len(peers) == 0 {
		return n.fetch(ctx, d.Position) // Raft is not started: it refuses
	}
	if last == 0 {
		// The store takes the id first: stopped partway through this copy, it holds
		// the records of that store, and the next start copies the rest.
		if err := n.store.AdoptID(d.StoreID); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	n.logger.Info("cluster: copying records from a peer", "from", last+1, "to", d.Position, "snapshot", meta.ID)
	// Bounded: the node serves no member until it has started, so members that all
	// came back behind their own snapshots (a power cut of NoSync nodes) would wait on
	// each other for good. A clear refusal instead, which a later start retries.
	wait := cmp.Or(n.cfg.resumeWait, defaultResumeWait)
	bounded, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := n.copyRecords(bounded, d.Position, func() []string { return peers }); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: stopped while copying the records behind this node's own snapshot (position %d of %d): %w; the next start copies the rest",
				n.store.LastPosition(), d.Position, context.Cause(ctx))
		}
		return fmt.Errorf("cluster: the store is behind this node's own snapshot (position %d of %d) and no member gave the missing records within %v (%w): start the node again once a member that has them is up, "+
			"or remove it from the cluster (pmd cluster remove %s) and start it with an empty data directory and --join to copy everything from the cluster",
			n.store.LastPosition(), d.Position, wait, err, n.cfg.NodeID)
	}
	return nil
}

// foreignSnapshots refuses to start on a newest snapshot (metas[0], which holds d) of
// another cluster or store (fsm.belongs): one that a leader of another cluster sent,
// which Raft saved before the state machine refused it (fsm.Restore). It names it, and
// every other such snapshot in the directory, for the operator to remove. Only the
// newest counts: Raft restores it, and reads an older one only if it cannot.
func (n *Node) foreignSnapshots(snaps raft.SnapshotStore, metas []*raft.SnapshotMeta, d snapshotData) error {
	err := n.fsm.belongs(d.Position, d.StoreID, d.Cluster)
	if err == nil {
		return nil
	}
	var fe *foreignError
	if !errors.As(err, &fe) {
		return err
	}
	dir := filepath.Join(n.cfg.Dir, engine.RaftDir, "snapshots")
	names := []string{metas[0].ID}
	for _, m := range metas[1:] {
		if o, rerr := readSnapshot(snaps, m.ID); rerr == nil && n.fsm.belongs(o.Position, o.StoreID, o.Cluster) != nil {
			names = append(names, m.ID)
		}
	}
	return fmt.Errorf("cluster: the newest Raft snapshot, %s (position %d of store %s, cluster %s), is not this node's: %w; "+
		"a leader of another cluster sent it, and Raft saved it before this node refused it. To keep this node in its own cluster, remove %s from %s and start it again; "+
		"to make it a member of the other cluster, remove it from that cluster first (pmd cluster remove %s, on one of its members), then start it with an empty data directory and --join instead",
		metas[0].ID, d.Position, d.StoreID, cmp.Or(idString(d.Cluster), "unknown"), err, strings.Join(names, ", "), dir, n.cfg.NodeID)
}

// defaultResumeWait bounds the start-time copy of records behind a node's own snapshot:
// long enough for the other members of a cluster restarted together to come up.
const defaultResumeWait = 2 * time.Minute

// readSnapshot reads the snapshotData of the snapshot id.
func readSnapshot(snaps raft.SnapshotStore, id string) (snapshotData, error) {
	_, rc, err := snaps.Open(id)
	if err != nil {
		return snapshotData{}, fmt.Errorf("cluster: open Raft snapshot %s: %w", id, err)
	}
	defer rc.Close()
	d, err := decodeSnapshot(rc)
	if err != nil {
		return snapshotData{}, fmt.Errorf("cluster: Raft snapshot %s: %w", id, err)
	}
	return d, nil
}

// decodeSnapshot decodes what snapshot.Persist wrote.
func decodeSnapshot(r io.Reader) (snapshotData, error) {
	var d snapshotData
	if err := msgpack.NewDecoder(bufio.NewReader(r)).Decode(&d); err != nil {
		return snapshotData{}, fmt.Errorf("read a snapshot: %w", err)
	}
	return d, nil
}
