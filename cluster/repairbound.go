package cluster

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/vmihailenco/msgpack/v5"
)

// Replayed reads the Raft state of the stopped node whose data directory is dir and
// returns the store position above which the node's next start writes the store's
// records again from Raft's entries, for pmd repair (engine.RepairOptions.Replayed): a
// record cut above it comes back at its position, one cut at or below it does not.
// Raft restores the node's newest snapshot and applies again the entries after it, so
// that is above the snapshot's position; and the records up to the seed entry's
// position (a single node's data directory that seeded the cluster) were written by no
// entry, so it is above that one too. A directory whose Raft state has neither (no
// entry of a cluster ever wrote its store) gives math.MaxUint64: Raft writes nothing
// again. It changes no file; it fails for Raft state it cannot read, naming it.
func Replayed(dir string) (uint64, error) {
	raftDir := filepath.Join(dir, engine.RaftDir)
	if _, err := os.Stat(filepath.Join(raftDir, boltFile)); err == nil {
		return 0, fmt.Errorf("cluster: the Raft log is still in %s, as a pmd before this one kept it, which this check does not read", filepath.Join(raftDir, boltFile))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	seed, logID, _, settled, ok, err := readSeeds(filepath.Join(raftDir, raftLogDir))
	if err != nil {
		return 0, err
	}
	if !settled {
		logID = uuid.Nil
	}
	above, found := uint64(0), false
	if _, err := os.Stat(filepath.Join(raftDir, "snapshots")); err == nil {
		snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hclog.NewNullLogger())
		if err != nil {
			return 0, fmt.Errorf("cluster: open the Raft snapshots: %w", err)
		}
		metas, err := snaps.List()
		if err != nil {
			return 0, fmt.Errorf("cluster: list the Raft snapshots: %w", err)
		}
		if len(metas) > 0 {
			d, err := readSnapshot(snaps, metas[0].ID) // the newest: the one Raft restores
			if err != nil {
				return 0, err
			}
			if err := ownSnapshot(dir, snaps, metas, d, logID); err != nil {
				return 0, err
			}
			above, found = d.Position, true
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	if ok {
		above, found = max(above, seed), true
	}
	if !found {
		return math.MaxUint64, nil
	}
	return above, nil
}

// ownSnapshot refuses the newest snapshot (metas[0], holding d) of snaps, in a node's
// data directory dir, when it is of another cluster than the node's, or of another store
// than dir's: a leader of another cluster sent it and Raft saved it before the node
// refused it (fsm.Restore). The node's start refuses it too (resume): its position says
// nothing of what this node's Raft state writes again. The node's cluster is the one
// recorded in raft/CLUSTER_ID or, with that file lost, logID: the id of the seed entry
// in its Raft log that a write entry follows (readSeeds), which the start takes too
// (recoverClusterID). With neither, snapshots of the store that name different clusters
// are refused, as the start refuses them (snapshotsAgree). Unlike the start's check
// (fsm.belongs), which compares cluster ids only once the store holds writes (before, a
// snapshot's id replaces the recorded one), this one compares them always: it cannot
// read the applied index of the store it is asked to repair. So a node with no writes
// that crashed after Raft saved a snapshot of its cluster with another id (before the
// restore recorded that id) starts, but is refused here; starting it once records the
// snapshot's id, after which this check accepts it.
func ownSnapshot(dir string, snaps raft.SnapshotStore, metas []*raft.SnapshotMeta, d snapshotData, logID uuid.UUID) error {
	raftDir := filepath.Join(dir, engine.RaftDir)
	cid, err := loadClusterID(filepath.Join(raftDir, clusterIDFile))
	if err != nil {
		return err
	}
	ours := cmp.Or(cid.get(), logID)
	storeID := uuid.Nil
	if b, err := os.ReadFile(filepath.Join(dir, engine.StoreIDFile)); err == nil {
		storeID, _ = uuid.Parse(strings.TrimSpace(string(b)))
	}
	id := metas[0].ID
	why := ""
	if ours != uuid.Nil && d.Cluster != uuid.Nil && d.Cluster != ours {
		why = otherCluster(ours, d.Cluster)
	} else if storeID != uuid.Nil && storeID != d.StoreID {
		why = fmt.Sprintf("this node's data directory holds store %s, not the snapshot's store %s", storeID, d.StoreID)
	} else if ours == uuid.Nil && storeID != uuid.Nil {
		if err := snapshotsAgree(snaps, metas, storeID, uuid.Nil, raftDir); err != nil {
			return err
		}
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("cluster: the newest Raft snapshot, %s, is not this node's: %s; a leader of another cluster sent it, and Raft saved it before the node refused it: "+
		"remove it from %s (the node's start refuses it too)", id, why, filepath.Join(raftDir, "snapshots"))
}

// seedPosition reads the Raft log in dir, without changing it, for its seed entries,
// and returns the highest position one names; ok is false if it holds none.
func seedPosition(dir string) (pos uint64, ok bool, err error) {
	pos, _, _, _, ok, err = readSeeds(dir)
	return pos, ok, err
}

// readSeeds reads the Raft log in dir, without changing it, for its seed entries, and
// returns the highest position one names and the cluster id the node recorded from them
// (uuid.Nil if none carries one), with the index of the entry it came from: the latest
// seed entry's id before the first write entry (each replaced the one before it:
// fsm.seed), or, with none before it, the first one's after it (a node with no id takes
// it); ok is false if it holds none. settled says a write entry follows the entry the
// id came from: the node wrote its store in that cluster, and no later id replaced it. A
// torn end of the last segment (what a start cuts) ends the reading; other damage fails
// it, as it fails the node's start.
func readSeeds(dir string) (pos uint64, cluster uuid.UUID, at uint64, settled, ok bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0, uuid.Nil, 0, false, false, nil
	}
	segs, err := listSegments(dir)
	if err != nil {
		return 0, uuid.Nil, 0, false, false, err
	}
	written := false // a write entry came before
	for i, seg := range segs {
		path := filepath.Join(dir, seg.name)
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, uuid.Nil, 0, false, false, fmt.Errorf("cluster: the Raft log: %w", err)
		}
		for off, index := 0, seg.first; off < len(b); index++ {
			if bad := checkFrame(b[off:], index); bad != "" {
				torn := i == len(segs)-1
				for p := off + 1; torn && p < len(b); p++ {
					torn = laterEntry(b[p:], index) == 0
				}
				if torn {
					break
				}
				return 0, uuid.Nil, 0, false, false, fmt.Errorf("%w: segment %s, offset %d, entry %d: %s", ErrRaftLogCorrupt, path, off, index, bad)
			}
			size, n := binary.Uvarint(b[off:])
			var l raft.Log
			if err := decodeLog(b[off+n:off+n+int(size)], &l); err != nil {
				return 0, uuid.Nil, 0, false, false, fmt.Errorf("%w: segment %s, offset %d: %v", ErrRaftLogCorrupt, path, off, err)
			}
			off += n + int(size)
			if l.Type != raft.LogCommand || len(l.Data) == 0 {
				continue
			}
			if l.Data[0] == entryWrite || l.Data[0] == entryWrites {
				written = true
				settled = settled || cluster != uuid.Nil
			}
			if l.Data[0] != entrySeed {
				continue
			}
			var e seedEntry
			if err := msgpack.Unmarshal(l.Data[1:], &e); err != nil {
				return 0, uuid.Nil, 0, false, false, fmt.Errorf("cluster: the seed entry %d of the Raft log does not decode: %w", l.Index, err)
			}
			pos, ok = max(pos, e.Position), true
			if e.Cluster != uuid.Nil && (!written || cluster == uuid.Nil) {
				cluster, at = e.Cluster, l.Index
			}
		}
	}
	return pos, cluster, at, settled, ok, nil
}
