package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

type eventResponse struct {
	Event eventJSON `json:"event"`
	// Streams are the streams the event is in: the one it was written to unless that
	// was deleted, then those it is linked into and still visible in, in link order; as
	// many as fit in a page's bytes with the event (at least one), and at most MaxLimit.
	Streams []string `json:"streams"`
	// StreamsTruncated says that the event is in more streams than Streams holds.
	StreamsTruncated bool `json:"streams_truncated"`
	// Causation is the event named by the event's causation_id, null if none is stored
	// or it is left out (CausationOmitted).
	Causation *eventJSON `json:"causation"`
	// CausationOmitted says that the event's cause is stored but left out: the memory
	// budget had no room for its decoded data when the answer was built (it is not
	// waited for; a cause beyond the whole budget has room only while no other request
	// holds bytes of it). The event itself is answered all the same.
	CausationOmitted bool `json:"causation_omitted"`
	// Caused are the events whose causation_id is this event's id, in log order: as
	// many as fit in a page's bytes with the rest of the answer (at least one) and in
	// the memory budget now, and at most MaxLimit.
	Caused []eventJSON `json:"caused"`
	// CausedTruncated says that more events name this one as their cause than
	// Caused holds: past the page, or the budget had no room for the next one.
	CausedTruncated bool `json:"caused_truncated"`
}

func (s *Server) event(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("id", r.PathValue("id"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	// The events of the answer are read undecoded and decoded once the bytes they take
	// are reserved (decoded.go), held until the answer is written.
	read := pmd.EventOptions{Encoded: true}
	ev, err := s.store.EventWith(ctx, id, read)
	if err != nil {
		return err
	}
	if _, _, err := decodeHeld(ctx, &ev, "", true); err != nil {
		return err
	}
	// At most a page of the streams: an event can be linked into any number of them.
	all, more, err := s.store.EventStreamsPage(ctx, id, 0, s.opts.MaxLimit)
	if err != nil {
		return err
	}
	if more == 0 && s.opts.Processes != nil {
		// The store knows every process stream an event is linked into; a Processes
		// implementation may know of more, listed after them (so past a page the store
		// filled).
		held, err := s.opts.Processes.Holding(ctx, ev)
		if err != nil {
			return err
		}
		for _, h := range held {
			if !slices.Contains(all, h) {
				all = append(all, h)
			}
		}
	}
	out := eventResponse{Event: toJSON(ev, false), Streams: []string{}, Caused: []eventJSON{}}
	if parent, ok := causationOf(ev); ok {
		p, err := s.store.EventWith(ctx, parent, read)
		roomy := false
		if err == nil {
			// Without waiting, as for the events it caused: the answer is the event
			// asked for, so the budget's want of room for its cause now leaves the cause
			// out rather than holding the event's bytes while it waits, and is no refusal.
			_, roomy, err = decodeHeld(ctx, &p, "", false)
		}
		switch {
		case err == nil && roomy:
			pj := toJSON(p, false)
			out.Causation = &pj
		case err == nil:
			out.CausationOmitted = true
		case !errors.Is(err, pmd.ErrEventNotFound):
			return err
		}
	}
	// The answer's JSON is counted, not written, until writeHeld has reserved its
	// bytes (held.go).
	size, err := heldSize(out)
	if err != nil {
		return fmt.Errorf("server: encode event %s: %w", id, err)
	}
	// An event can be linked into any number of streams: the streams and then the
	// events it caused share the page's bytes, each list holding at least one.
	for i, name := range all {
		n, err := heldSize(name)
		if err != nil {
			return fmt.Errorf("server: encode stream name %q: %w", name, err)
		}
		if i == s.opts.MaxLimit || i > 0 && size+n+1 > s.opts.PageBytes {
			out.StreamsTruncated = true
			break
		}
		size += n + 1
		out.Streams = append(out.Streams, name)
	}
	if more != 0 {
		out.StreamsTruncated = true
	}
	// Each caused event is read as it is listed: those past the page are not read. None
	// waits for the bytes of its decoded data: the answer is the event asked for, and
	// one the budget has no room for (the first too) ends the list.
	for c, err := range s.store.CausedSeqWith(ctx, id, read) {
		if err != nil {
			return err
		}
		i := len(out.Caused)
		if i == s.opts.MaxLimit {
			out.CausedTruncated = true
			break
		}
		decoded, ok, err := decodeHeld(ctx, &c, "", false)
		if err != nil {
			return err
		}
		if !ok {
			out.CausedTruncated = true
			break
		}
		e := toJSON(c, false)
		n, err := heldSize(e)
		if err != nil {
			return fmt.Errorf("server: encode event %s: %w", c.ID, err)
		}
		if i > 0 && size+n+1 > s.opts.PageBytes {
			reservationOf(ctx).give(decoded)
			out.CausedTruncated = true
			break
		}
		size += n + 1
		out.Caused = append(out.Caused, e)
	}
	s.metrics.read(1 + len(out.Caused))
	return s.writeHeld(ctx, w, http.StatusOK, out)
}

// causationOf returns the id in ev's causation_id metadata, if it holds one.
func causationOf(ev pmd.Event) (uuid.UUID, bool) {
	s, ok := ev.Metadata[pmd.CausationID].(string)
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil && id != ev.ID
}
