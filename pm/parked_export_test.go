package pm

import (
	"context"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// SetParkedLookup makes m's Parked, and the attempts of a command queued without its
// data (Options.QueueBytes), read the record of a command with f instead of the store's
// Event, until the returned restore is called: for tests of what they read and of a
// lookup that fails. It may be set while m runs.
func SetParkedLookup(m *Manager, f func(s *pmd.Store, ctx context.Context, id uuid.UUID) (pmd.Event, error)) (restore func()) {
	old := m.hooks.eventByID.Swap(&f)
	return func() { m.hooks.eventByID.Store(old) }
}
