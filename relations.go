package pmd

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// EventStreams returns the streams the event with id id is in: first the stream it was
// written to, unless that stream was deleted since (or its retention hides the version
// the event was written at, or its max age the event), then every stream it is linked
// into and still visible in, in the order of the links (for a stream it was linked into
// again after a deletion, its own stream too, the order of its last link). An event
// whose streams were all deleted is in none. An id that is not stored fails with
// *EventNotFoundError.
func (s *Store) EventStreams(ctx context.Context, id uuid.UUID) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.visible(ctx); err != nil {
		return nil, err
	}
	pos, ok, err := s.idx.Lookup(id)
	if err != nil {
		return nil, s.storeErr(err)
	}
	if !ok {
		return nil, &EventNotFoundError{ID: id}
	}
	// The index keeps no stream per event (4 bytes per event for a rare question): the
	// log record has it.
	r, err := s.log.Read(pos)
	if err != nil {
		return nil, s.storeErr(err)
	}
	if r.Kind != pmdlog.KindEvent {
		return nil, &CorruptError{Position: pos, Cause: fmt.Errorf("the index points at a %s record, not an event", r.Kind)}
	}
	own := r.Event.Stream
	var out []string
	// First only if the stream still shows the version it was written at: linked back
	// into the stream after a deletion, it is there in the order of that link.
	st, err := s.idx.Stream(own)
	if err != nil {
		return nil, s.storeErr(err)
	}
	// A max age hides the event from a stream's reads at once, by its timestamp, though
	// the event dies only at the next scavenge: a stream whose reads no longer show it
	// is not listed, as ReadStream decides it.
	now := time.Now()
	aged := func(st index.StreamState) bool {
		return st.Retention.MaxAge > 0 &&
			time.Unix(0, r.Event.Timestamp).Before(now.Add(-time.Duration(st.Retention.MaxAge)))
	}
	if v := r.Event.Version; v >= st.First && v < st.Next && !aged(st) {
		out = append(out, own)
	}
	linked, err := s.idx.LinkedInto(nil, pos)
	if err != nil {
		return nil, s.storeErr(err)
	}
	for _, name := range linked {
		lst, err := s.idx.Stream(name)
		if err != nil {
			return nil, s.storeErr(err)
		}
		if !aged(lst) {
			out = append(out, name)
		}
	}
	// Shown as written, the event cannot have been linked into its own stream as well,
	// but should an index hold such a link, the stream comes once, first.
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
// listed: the store resolves a causation_id once, when it writes the event. An erased
// event is not listed either: its causation_id went with its metadata (as an index
// rebuilt from the scavenged log finds). An id that is not stored fails with
// *EventNotFoundError; a negative limit with *InvalidArgumentError.
func (s *Store) Caused(ctx context.Context, id uuid.UUID, limit int) ([]Event, error) {
	if limit < 0 {
		return nil, invalid("limit", "must not be negative, got %d", limit)
	}
	out := []Event{}
	for ev, err := range s.CausedSeq(ctx, id) {
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// CausedSeq yields the events Caused returns, reading each only when the loop asks for
// it: a caller that stops early, at a number of bytes rather than of events, reads no
// more of them. An error ends the sequence.
func (s *Store) CausedSeq(ctx context.Context, id uuid.UUID) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(Event{}, err)
			return
		}
		if err := s.visible(ctx); err != nil {
			yield(Event{}, err)
			return
		}
		pos, ok, err := s.idx.Lookup(id)
		if err != nil {
			yield(Event{}, s.storeErr(err))
			return
		}
		if !ok {
			yield(Event{}, &EventNotFoundError{ID: id})
			return
		}
		// The positions a chunk at a time, the events after each: the index holds its
		// lock while it iterates, and a loop body that read the store while another
		// goroutine closed it would wait behind Close, which waits for the iteration.
		// Chunks keep a loop that stops early from paying for the whole fan-out.
		const chunk = 256
		children := make([]uint64, 0, chunk)
		for after := uint64(0); ; {
			children = children[:0]
			err = s.idx.Caused(pos, after, func(p uint64) (bool, error) {
				children = append(children, p)
				return len(children) < chunk, ctx.Err()
			})
			if err != nil {
				if ctx.Err() == nil {
					err = s.storeErr(err)
				}
				yield(Event{}, err)
				return
			}
			for _, p := range children {
				if err := ctx.Err(); err != nil {
					yield(Event{}, err)
					return
				}
				ev, err := s.readEvent(p)
				if err != nil {
					yield(Event{}, err)
					return
				}
				if !ev.Erased && !yield(ev, nil) {
					return
				}
			}
			if len(children) < chunk {
				return
			}
			after = children[len(children)-1]
		}
	}
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
		if id := engine.CausationOf(changes[i].meta); id != uuid.Nil {
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
