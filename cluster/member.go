package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// A cluster node's data directory must not be written to by a single node (pmd serve
// without --node-id): its writes' commit records carry no Raft index, so the node's
// store, which reads the Raft index it holds (pmd.Store.Applied) off its last commit
// record, would read 0, and Raft would apply again every entry after the node's
// snapshot: the same events twice, and a copy that differs from the other members'.

// ErrMemberData: a single node was asked to open a data directory that belongs to a
// cluster (MemberData).
var ErrMemberData = errors.New("cluster: the data directory belongs to a cluster node")

// MemberData says why the data directory dir, whose store is open in store (not as a
// replica), is a cluster node's: it holds Raft state (raft/), or its store's last write
// carries a Raft index. nil if neither: a single node's, which may seed a cluster.
func MemberData(dir string, store *pmd.Store) error {
	if _, err := os.Stat(filepath.Join(dir, engine.RaftDir)); err == nil {
		return fmt.Errorf("%w: it holds Raft state (%s)", ErrMemberData, filepath.Join(dir, engine.RaftDir))
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster: %w", err)
	}
	idx, err := lastCommitIndex(store)
	if err != nil {
		return err
	}
	if idx > 0 {
		return fmt.Errorf("%w: its store's last write was applied from Raft entry %d", ErrMemberData, idx)
	}
	return nil
}

// Leave makes the data directory dir a single node's: it removes its Raft state (raft/),
// so that no start with --node-id takes it for the member it was. Its store's records
// stay as they are. Call it with dir's store open (pmd.Open holds the directory's lock),
// so that a directory another process has open, a running member's, keeps its Raft state.
func Leave(dir string, noSync bool) error {
	raftDir := filepath.Join(dir, engine.RaftDir)
	if _, err := os.Stat(raftDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(raftDir); err != nil {
		return fmt.Errorf("cluster: remove the Raft state: %w", err)
	}
	if !noSync {
		if err := engine.SyncFile(dir); err != nil {
			return fmt.Errorf("cluster: sync %s: %w", dir, err)
		}
	}
	return nil
}

// lastCommitIndex is the Raft index on the last intact commit record of store's log (0
// for none, or no commit record), read back from the end in windows: the log ends at a
// commit record but for a damaged tail's records. Damaged records are passed over (a
// single node serves them as corrupt): only intact commit records answer.
func lastCommitIndex(store *pmd.Store) (uint64, error) {
	const window = 64
	for hi := store.LastPosition(); hi > 0; {
		lo := uint64(1)
		if hi > window {
			lo = hi - window + 1
		}
		var idx uint64
		found := false
		err := scanIntact(store, lo, hi, func(r *pmdlog.Record) error {
			if r.Commit {
				idx, found = r.Applied, true
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("cluster: read the store's last commit record: %w", err)
		}
		if found {
			return idx, nil
		}
		hi = lo - 1
	}
	return 0, nil
}

// scanIntact calls fn with every intact record of store's log from position from to
// position to, in order, passing over damaged ones (what a damaged record hides, when
// the damage says: its CorruptError's End); fn's error stops it and is returned.
func scanIntact(store *pmd.Store, from, to uint64, fn func(*pmdlog.Record) error) error {
	for from <= to {
		err := store.ScanRecords(context.Background(), from, to, func(r *pmdlog.Record) error {
			from = r.Position + 1
			return fn(r)
		})
		var ce *pmdlog.CorruptError
		if !errors.As(err, &ce) {
			return err
		}
		// The damage is at from (the record after the last one read) unless it says
		// where it is; a read goes on after it.
		from = max(from+1, ce.Position+1, ce.End)
	}
	return nil
}

// checkApplied refuses a store a node must not start on, applied being the Raft index of
// its last commit record (pmd.Store.Applied) and state whether the node has Raft state:
//   - with Raft state, a store whose last write carries no Raft index though an earlier
//     one above position above does: a single node wrote to it (a pmd serve without
//     --node-id). Raft would apply again every entry after the node's snapshot, writing
//     them twice. above is the position of the cluster's seed entry: the records up to
//     it are the seeding data directory's, which may hold another cluster's writes
//     (Raft indexes) and then a single node's (a directory left with --leave-cluster).
//   - without Raft state, a store whose last write carries a Raft index: its Raft state
//     was removed. A new cluster's entries at or below that index would be taken for
//     entries the store holds, and passed over.
//
// Damaged records are passed over.
func checkApplied(store *pmd.Store, id string, applied uint64, state bool, above uint64) error {
	if !state && applied > 0 {
		return fmt.Errorf("cluster: this node has no Raft state, but its store's last write was applied from Raft entry %d of a cluster: "+
			"its Raft state (raft/) was removed, and it can neither rejoin that cluster nor start another: remove it from the cluster first (pmd cluster remove %s), "+
			"then start it with an empty data directory and --join (started empty while still a member, it would vote without the entries it acknowledged)", applied, id)
	}
	if !state || applied > 0 || store.LastPosition() <= above {
		return nil
	}
	errFound := errors.New("found")
	var at, idx uint64
	err := scanIntact(store, above+1, store.LastPosition(), func(r *pmdlog.Record) error {
		if r.Commit && r.Applied > 0 {
			at, idx = r.Position, r.Applied
			return errFound
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, errFound) {
		return fmt.Errorf("cluster: read the store's commit records: %w", err)
	}
	return fmt.Errorf("cluster: this node's store was written to without Raft: its last write carries no Raft index, though an earlier one does (Raft entry %d, at position %d): "+
		"a pmd serve without --node-id wrote to this data directory. Started as a member, Raft would apply again every entry after the node's snapshot, "+
		"and its copy would differ from the other members': remove it from the cluster first (pmd cluster remove %s), then start it with an empty data directory and --join "+
		"(it copies the cluster's records; started empty while still a member, it would vote without the entries it acknowledged)", idx, at, id)
}

// checkStore refuses to start on a store that checkApplied refuses, the node's Raft
// state being what logs and snaps hold, and the records up to its seed entry's position
// the seeding directory's.
func (n *Node) checkStore(logs raft.LogStore, snaps raft.SnapshotStore) error {
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("cluster: read the Raft log: %w", err)
	}
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("cluster: list the Raft snapshots: %w", err)
	}
	state, applied := last > 0 || len(metas) > 0, n.fsm.applied.Load()
	var above uint64
	if state && applied == 0 {
		// Read only when checkApplied scans: the whole Raft log.
		if above, _, err = seedPosition(filepath.Join(n.cfg.Dir, engine.RaftDir, raftLogDir)); err != nil {
			return err
		}
	}
	return checkApplied(n.store, n.cfg.NodeID, applied, state, above)
}
