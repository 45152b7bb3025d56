package pm

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// trust says which records of a process manager's process streams and deliveries
// streams are the runtime's: those whose id is recordID of their stream and version in
// ns, which no writer without the store id can make; and, below the log position
// legacyBefore (where the manager first ran with this rule in this store: see
// Manager.loadTrust), those an earlier version would have taken for its own, whose ids
// cannot be checked: in a process stream, a record with a UUIDv5 id (recordID in
// namespace itself, before stores had ids, or in the namespace of an earlier store id,
// before a STORE_ID was removed), not one with an id the store made (UUIDv7), as a
// user's append without an id gets; in a deliveries stream, any record (the runtime's
// had ids the store made). Any other record in the form of the runtime's (a user's
// command or delivery record) is passed to Apply and otherwise ignored.
type trust struct {
	ns           uuid.UUID
	legacyBefore uint64
}

// memoryTrust is Memory's: it writes no store, and its records have ids in namespace.
var memoryTrust = &trust{ns: namespace}

// own reports whether e is a record the runtime wrote into stream (not a link).
func (t *trust) own(stream string, e *pmd.Event) bool {
	if e.Link || e.Stream != stream {
		return false
	}
	if e.ID == recordID(t.ns, stream, e.Version) {
		return true
	}
	return e.Position < t.legacyBefore && e.ID.Version() == 5 && e.ID.Variant() == uuid.RFC4122
}

// delivery reports whether e, read from a deliveries stream, is a record the runtime
// wrote.
func (t *trust) delivery(e *pmd.Event) bool {
	if e.Link {
		return false
	}
	return e.ID == recordID(t.ns, e.Stream, e.Version) || e.Position < t.legacyBefore
}

// snapshot reports whether e, read from a snapshots stream, is a snapshot the runtime
// wrote: one with the runtime's id, or any below the legacy cutoff (earlier versions'
// had ids the store made).
func (t *trust) snapshot(e *pmd.Event) bool {
	return t.delivery(e)
}

// legacyMarkID is the id of the checkpoint that records the legacy cutoff of manager
// name in the namespace ns: one per manager and store, looked up by id.
func legacyMarkID(ns uuid.UUID, name string) uuid.UUID {
	return uuid.NewSHA1(ns, []byte(checkpointStream(name)+"@legacy"))
}

// legacyField is the field of the checkpoint data that holds the cutoff.
const legacyField = "legacy_before"

// trustNow is the manager's trust: the one Run loaded, or, before Run, the one the
// store's legacy mark says, or what Run would make of the log as it is now.
func (m *Manager) trustNow(ctx context.Context) (*trust, error) {
	if t := m.trust.Load(); t != nil {
		return t, nil
	}
	before, found, err := m.readLegacyMark(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		before = m.store.LastPosition() + 1
	}
	return &trust{ns: m.ns, legacyBefore: before}, nil
}

// readLegacyMark looks up the checkpoint that records the manager's legacy cutoff: its
// legacy_before, or, if that does not read (erased, or removed by a scavenge after it
// died), its own position, past every record written before it. A dead mark (its
// stream deleted, or hidden by retention) is found too: it stands as long as its id is
// taken, which is for good.
func (m *Manager) readLegacyMark(ctx context.Context) (uint64, bool, error) {
	e, err := m.store.EventWith(ctx, legacyMarkID(m.ns, m.name), pmd.EventOptions{Dead: true})
	var gone *pmd.EventNotFoundError
	switch {
	case errors.As(err, &gone):
		return 0, false, nil
	case errors.Is(err, pmd.ErrCorrupt) && ctx.Err() == nil:
		m.logger.Error("pm: the checkpoint that records where records of earlier versions end is damaged: its position stands for it",
			"manager", m.name, "err", err)
		var ce *pmd.CorruptError
		if errors.As(err, &ce) {
			return ce.Position, true, nil
		}
		return 0, false, fmt.Errorf("pm: %s: read the legacy cutoff: %w", m.name, err)
	case err != nil:
		return 0, false, fmt.Errorf("pm: %s: read the legacy cutoff: %w", m.name, err)
	}
	if n, ok := asUint64(e.Data[legacyField]); ok && n <= e.Position {
		return n, true, nil
	}
	return e.Position, true, nil
}
