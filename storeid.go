package pmd

import (
	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/engine"
)

// StoreIDFile is the file of a data directory that holds its store id: one line, the
// UUID in its canonical form.
const StoreIDFile = engine.StoreIDFile

// ID is the store's id: a random UUID made when the data directory was created (or, for
// a directory written by a pmd that had no store ids, when such a pmd first opened it)
// and the same at every Open after. Anything that must not collide between two stores,
// such as the ids of the commands process managers issue, puts it in. A copy of the
// data directory is the same store, and has the same id.
func (s *Store) ID() uuid.UUID { return s.eng.ID() }
