package engine

import (
	"fmt"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// Indexer adds log records copied from another replica of the same log (a cluster node
// catching up) to index batches the way a replay does: gone and void records are gone
// past, and a stream's versions may jump after one of them. Keep one for the life of a
// store, so that what it skipped is remembered across copies.
type Indexer struct{ ix indexer }

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
