package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// Indexer adds log records copied from another replica of the same log (a cluster node
// catching up) to index batches the way a replay does: gone and void records are gone
// past, and a stream's versions may jump after one of them. Keep one for the life of a
// store, so that what it skipped is remembered across copies; Engine.NewIndexer's
// remembers it across restarts too.
type Indexer struct{ ix indexer }

// NewIndexer returns an Indexer that notes its first skipped record in SkippedFile, as a
// replay does, and lets versions jump from the start when the file is there: the later
// events of a skipped record's stream may come in a copy after a restart, when the index
// holds nothing of the record, and a cluster node keeps the file (see replayDone).
func (e *Engine) NewIndexer() *Indexer {
	path := filepath.Join(e.dir, SkippedFile)
	x := &Indexer{ix: indexer{firstSkip: func() error {
		// Synced before the index can put anything after the skipped record on disk.
		return ReplaceFile(path, nil, true)
	}, jumped: e.versionsJumped}}
	if _, err := os.Stat(path); err == nil {
		x.ix.skipped = 1
	}
	return x
}

// Apply adds r to b.
func (x *Indexer) Apply(b *index.Batch, r *pmdlog.Record) error {
	x.ix.b = b
	return x.ix.apply(r)
}

// SetID makes id the store id of the data directory, as a cluster node that joins a
// cluster takes the cluster's: saved like the first one (see loadID).
func (e *Engine) SetID(id uuid.UUID) error {
	if id == uuid.Nil {
		return fmt.Errorf("pmd: the nil UUID is no store id")
	}
	if id == e.id {
		return nil
	}
	if err := ReplaceFile(filepath.Join(e.dir, StoreIDFile), []byte(id.String()+"\n"), !e.opts.NoSync); err != nil {
		return fmt.Errorf("save the store id: %w", err)
	}
	e.id = id
	return nil
}

// RaftDir is the folder of a data directory that holds a cluster node's Raft state
// (package cluster): its Raft log and snapshots. A single node has none.
const RaftDir = "raft"

// InCluster reports whether the data directory is a cluster node's (it holds RaftDir),
// whether or not its log holds a record of a Raft entry yet: a cluster formed from a
// single node's store holds that store's records, with no Raft index, until its first write.
func (e *Engine) InCluster() bool {
	_, err := os.Stat(filepath.Join(e.dir, RaftDir))
	return err == nil
}
