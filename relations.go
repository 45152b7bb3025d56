package pmd

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// EventStreams returns the streams the event with id id is in: first the stream it was
// written to, unless that stream was deleted since, then every stream it is linked into
// and still visible in, in the order of the links (for a stream it was linked into again
// after a deletion, the order of its last link). An event whose streams were all deleted
// is in none. An id that is not stored fails with *EventNotFoundError.
func (s *Store) EventStreams(ctx context.Context, id uuid.UUID) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	pos, ok := s.idx.Lookup(id)
	s.mu.RUnlock()
	if !ok {
		return nil, &EventNotFoundError{ID: id}
	}
	// The index keeps no stream per event (4 bytes per event for a rare question): the
	// log record has it.
	r, err := s.log.Read(pos)
	if err != nil {
		return nil, mapLogErr(err)
	}
	if r.Kind != pmdlog.KindEvent {
		return nil, fmt.Errorf("pmd: index points at a %d record at position %d, not an event: %w", r.Kind, pos, pmdlog.ErrCorrupt)
	}
	own := r.Event.Stream
	var out []string
	s.mu.RLock()
	if s.idx.Contains(own, pos) {
		out = append(out, own)
	}
	out = s.idx.LinkedInto(out, pos)
	s.mu.RUnlock()
	// Linked back into its own stream after a deletion of it, the event is there once.
	if len(out) > 1 && out[0] == own {
		for i := 1; i < len(out); i++ {
			if out[i] == own {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
	}
	return out, nil
}

// Caused returns the events caused by the event with id id, in log order, at most limit
// of them (0 means no limit): those whose metadata names id as causation_id and that were
// written after it. An event written before the event it names as its cause is not
// listed: the store resolves a causation_id once, when it writes the event. An id that is
// not stored fails with *EventNotFoundError; a negative limit with *InvalidArgumentError.
func (s *Store) Caused(ctx context.Context, id uuid.UUID, limit int) ([]Event, error) {
	if limit < 0 {
		return nil, invalid("limit", "must not be negative, got %d", limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	pos, ok := s.idx.Lookup(id)
	var caused []uint64
	if ok {
		caused = s.idx.Caused(nil, pos, limit)
	}
	s.mu.RUnlock()
	if !ok {
		return nil, &EventNotFoundError{ID: id}
	}
	out := make([]Event, 0, len(caused))
	for _, p := range caused {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ev, err := s.readEvent(p)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// causationID is the metadata key as it shows in msgpack bytes.
var causationID = []byte(CausationID)

// CausationOf returns the causation parent that the store records for an event whose
// metadata, as the log stores it (msgpack bytes, pmdlog.Event.Metadata), is meta: the
// UUID its CausationID key holds as a string, or uuid.Nil if it names none. A tool that
// rebuilds an index from the log, as pmd verify does, looks this id up before adding the
// event and calls index.AddCausation when it is found, as the store does on replay.
func CausationOf(meta []byte) uuid.UUID { return causeIn(meta) }

// causeIn returns the id that the msgpack metadata meta names as causation_id, exactly as
// a reader of the event sees it in Event.Metadata: a string holding a UUID. It returns
// uuid.Nil if there is none. It decodes only metadata that holds the key's bytes, so
// events without a cause cost a byte search.
func causeIn(meta []byte) uuid.UUID {
	if !bytes.Contains(meta, causationID) {
		return uuid.Nil
	}
	m, err := decodeMap(meta)
	if err != nil {
		return uuid.Nil
	}
	str, _ := m[CausationID].(string)
	id, err := uuid.Parse(str)
	if err != nil {
		return uuid.Nil
	}
	return id
}

// causesOf returns the causation ids of the new events of changes, nil if none has one.
// The write path finds them here, in the writer's goroutine, from the very bytes the log
// will hold, so that the committer and a replay of the log record the same causations.
func causesOf(changes []change) []uuid.UUID {
	var out []uuid.UUID
	for i := range changes {
		if changes[i].link {
			continue
		}
		if id := causeIn(changes[i].meta); id != uuid.Nil {
			if out == nil {
				out = make([]uuid.UUID, len(changes))
			}
			out[i] = id
		}
	}
	return out
}

// cause returns the causation id of the i-th change of r, uuid.Nil if none.
func (r *request) cause(i int) uuid.UUID {
	if r.causes == nil {
		return uuid.Nil
	}
	return r.causes[i]
}

// addEvent adds the event record r to idx and, if cause is the id of an event stored
// before it, records that event as its causation parent. The parent is looked up before
// the event is added, so an event never causes itself. On the write path and on replay
// the index holds exactly the records before r when it is added, so both find the same
// parent.
func addEvent(idx *index.Index, r *pmdlog.Record, cause uuid.UUID) (version uint64) {
	var parent uint64
	var found bool
	if cause != uuid.Nil {
		parent, found = idx.Lookup(cause)
	}
	version = idx.AddEvent(r.Position, r.Event.ID, r.Event.Stream, r.Event.Type)
	if found {
		idx.AddCausation(r.Position, parent)
	}
	return version
}
