package pm

import (
	"context"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// SetParkedLookup makes Manager.Parked read the record of a parked command with f
// instead of the store's Event, until the returned restore is called: for tests of what
// Parked reads and of a lookup that fails.
func SetParkedLookup(f func(s *pmd.Store, ctx context.Context, id uuid.UUID) (pmd.Event, error)) (restore func()) {
	old := eventByID
	eventByID = f
	return func() { eventByID = old }
}
