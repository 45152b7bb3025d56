package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/pmd-dev/pmd/internal/engine"
)

// The Raft state's files in DIR/raft/ (engine.RaftDir), besides the snapshots.
const (
	raftLogDir     = "log"     // the Raft log: logStore
	raftStableFile = "stable"  // term and vote: stableStore
	boltFile       = "raft.db" // raft-boltdb's log and stable store, before logStore
)

// The keys Raft keeps in its stable store (hashicorp/raft's own names).
var stableKeys = [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm"), []byte("LastVoteCand")}

// migrateBolt moves the Raft state of a node that a pmd before logStore ran, kept by
// raft-boltdb in raftDir/raft.db, to the log store and the stable store: the entries into
// a new log built beside the final one, the term and vote into the stable file, then the
// new log renamed into place and raft.db removed, the directory fsynced after each step.
// A crash at any moment leaves raft.db until the new log is in place, and the next start
// migrates again from it (or, if the log is in place, only removes it).
func migrateBolt(raftDir string, noSync bool, logf func(msg string, args ...any)) error {
	old := filepath.Join(raftDir, boltFile)
	if _, err := os.Stat(old); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("cluster: migrate %s: %w", old, err)
	}
	final := filepath.Join(raftDir, raftLogDir)
	if _, err := os.Stat(final); err == nil {
		return removeSynced(old, raftDir, noSync)
	}
	n, err := copyBolt(old, raftDir, final+".migrating", noSync)
	if err != nil {
		return fmt.Errorf("cluster: migrate the Raft state from %s: %w", old, err)
	}
	if err := os.Rename(final+".migrating", final); err != nil {
		return fmt.Errorf("cluster: migrate the Raft state from %s: %w", old, err)
	}
	if !noSync {
		if err := engine.SyncFile(raftDir); err != nil {
			return fmt.Errorf("cluster: migrate the Raft state from %s: %w", old, err)
		}
	}
	if logf != nil {
		logf("cluster: moved the Raft log and stable store out of raft-boltdb", "file", old, "entries", n)
	}
	return removeSynced(old, raftDir, noSync)
}

// copyBolt copies the entries and stable values of the raft-boltdb file old into a new
// log in tmp and the stable file of raftDir, and returns the entries copied.
func copyBolt(old, raftDir, tmp string, noSync bool) (int, error) {
	bs, err := raftboltdb.New(raftboltdb.Options{Path: old, NoSync: true})
	if err != nil {
		return 0, err
	}
	defer bs.Close()
	if err := os.RemoveAll(tmp); err != nil {
		return 0, err
	}
	stable, err := openStableStore(filepath.Join(raftDir, raftStableFile), noSync)
	if err != nil {
		return 0, err
	}
	for _, k := range stableKeys {
		v, err := bs.Get(k)
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", k, err)
		}
		if err := stable.Set(k, v); err != nil {
			return 0, err
		}
	}
	ls, err := openLogStore(tmp, noSync, nil)
	if err != nil {
		return 0, err
	}
	first, err := bs.FirstIndex()
	if err == nil {
		var last uint64
		if last, err = bs.LastIndex(); err == nil && first > 0 {
			err = copyEntries(bs, ls, first, last)
		}
	}
	if cerr := ls.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if !noSync {
		if err := engine.SyncFile(tmp); err != nil {
			return 0, err
		}
	}
	if first == 0 {
		return 0, nil
	}
	last, _ := bs.LastIndex()
	return int(last - first + 1), nil
}

// copyEntries copies the entries first to last from src to dst, in batches.
func copyEntries(src raft.LogStore, dst raft.LogStore, first, last uint64) error {
	const batch = 512
	logs := make([]*raft.Log, 0, batch)
	for i := first; i <= last; i++ {
		l := new(raft.Log)
		if err := src.GetLog(i, l); err != nil {
			return fmt.Errorf("read entry %d: %w", i, err)
		}
		if logs = append(logs, l); len(logs) == batch || i == last {
			if err := dst.StoreLogs(logs); err != nil {
				return err
			}
			logs = logs[:0]
		}
	}
	return nil
}

func removeSynced(path, dir string, noSync bool) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cluster: remove %s: %w", path, err)
	}
	if noSync {
		return nil
	}
	return engine.SyncFile(dir)
}
