package pmd

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	"github.com/pmd-dev/pmd/internal/dedup"
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
//
// It holds every stream the event is in, however many: EventStreamsPage lists them a
// page at a time. It reads them a page at a time too, and stops with ctx's error once
// ctx is done.
func (s *Store) EventStreams(ctx context.Context, id uuid.UUID) ([]string, error) {
	const chunk = 1024
	var out []string
	for after := uint64(0); ; {
		page, next, err := s.EventStreamsPage(ctx, id, after, chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == 0 {
			break
		}
		after = next
	}
	// Linked twice while visible (the store never does, an index may hold it): the
	// stream comes once, at its last link.
	return dedup.KeepLast(out), nil
}

// EventStreamsPage lists the streams EventStreams lists a page at a time: at most limit
// of them (limit ≥ 1), those after the cursor after, and next, the cursor of the page
// after this one, 0 when there is none. The first page has after 0 and starts with the
// stream the event was written to, if it still shows it; a cursor is a position in the
// log (the event's, then its links'), so a page is the same whatever was linked or
// deleted since the page before it. A stream the index holds two visible links into
// (which the store never writes) comes at each of them; EventStreams lists it once.
//
// A page costs a lookup of the event, a read of its record and a lookup of the state of
// each link's stream from after on, until one past the page is found: links whose
// streams no longer show the event are read and left out, so a page can read more links
// than it lists. Each link is read only while ctx is not done; ctx's error fails the
// page. An id that is not stored fails with *EventNotFoundError, a limit below 1 with
// *InvalidArgumentError.
func (s *Store) EventStreamsPage(ctx context.Context, id uuid.UUID, after uint64, limit int) (streams []string, next uint64, err error) {
	if limit < 1 {
		return nil, 0, invalid("limit", "must be at least 1, got %d", limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := s.visible(ctx); err != nil {
		return nil, 0, err
	}
	pos, ok, err := s.idx.Lookup(id)
	if err != nil {
		return nil, 0, s.storeErr(err)
	}
	if !ok {
		return nil, 0, &EventNotFoundError{ID: id}
	}
	// The index keeps no stream per event (4 bytes per event for a rare question): the
	// log record has it.
	r, err := s.log.Read(pos)
	if err != nil {
		return nil, 0, s.storeErr(err)
	}
	if r.Kind != pmdlog.KindEvent {
		return nil, 0, &CorruptError{Position: pos, Cause: fmt.Errorf("the index points at a %s record, not an event", r.Kind)}
	}
	own := r.Event.Stream
	// A max age hides the event from a stream's reads at once, by its timestamp, though
	// the event dies only at the next scavenge: a stream whose reads no longer show it
	// is not listed, as ReadStream decides it.
	now := time.Now()
	aged := func(st index.StreamState) bool {
		return st.Retention.MaxAge > 0 &&
			time.Unix(0, r.Event.Timestamp).Before(now.Add(-time.Duration(st.Retention.MaxAge)))
	}
	// Its own stream only if it still shows the version the event was written at:
	// linked back into the stream after a deletion, it is there in the order of that
	// link. Decided on every page, so that a link into it is left out on every page
	// when it comes first.
	st, err := s.idx.Stream(own)
	if err != nil {
		return nil, 0, s.storeErr(err)
	}
	ownShown := r.Event.Version >= st.First && r.Event.Version < st.Next && !aged(st)
	if after < pos && ownShown {
		streams = append(streams, own)
		next = pos
	}
	// The links after the cursor, one past the page to know whether there is a next.
	var more bool
	var done error
	err = s.idx.Links(pos, max(after, pos), func(l index.Link) (bool, error) {
		if done = ctx.Err(); done != nil {
			return false, nil
		}
		if l.Hidden || aged(l.State) || ownShown && l.Stream == own {
			return true, nil
		}
		if len(streams) == limit {
			more = true
			return false, nil
		}
		streams, next = append(streams, l.Stream), l.Position
		return true, nil
	})
	if err != nil {
		return nil, 0, s.storeErr(err)
	}
	if done != nil {
		return nil, 0, done
	}
	if !more {
		next = 0
	}
	return streams, next, nil
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
	return s.CausedSeqWith(ctx, id, EventOptions{})
}

// CausedSeqWith is CausedSeq, reading the events as opts say.
func (s *Store) CausedSeqWith(ctx context.Context, id uuid.UUID, opts EventOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(Event{}, err)
			return
		}
		if opts.Dead {
			yield(Event{}, invalid("opts.Dead", "CausedSeqWith follows live events only: a dead event's causations go at a scavenge"))
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
				ev, err := s.readEventAs(p, opts.Encoded)
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
