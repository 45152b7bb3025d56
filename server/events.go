package server

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

type eventResponse struct {
	Event eventJSON `json:"event"`
	// Streams are the streams the event is in: the one it was written to first, then
	// the process streams it is linked into.
	Streams []string `json:"streams"`
	// Causation is the event named by the event's causation_id, null if none is stored.
	Causation *eventJSON `json:"causation"`
	// Caused are the events whose causation_id is this event's id, in log order.
	Caused []eventJSON `json:"caused"`
}

func (s *Server) event(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("id", r.PathValue("id"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	ev, err := s.store.Event(ctx, id)
	if err != nil {
		return err
	}
	out := eventResponse{Event: toJSON(ev, false), Streams: []string{ev.Stream}, Caused: []eventJSON{}}
	if s.opts.Processes != nil {
		held, err := s.opts.Processes.Holding(ctx, ev)
		if err != nil {
			return err
		}
		out.Streams = append(out.Streams, held...)
	}
	if parent, ok := causationOf(ev); ok {
		switch p, err := s.store.Event(ctx, parent); {
		case err == nil:
			pj := toJSON(p, false)
			out.Causation = &pj
		case !errors.Is(err, pmd.ErrEventNotFound):
			return err
		}
	}
	caused, err := s.causes.caused(ctx, s.store, id)
	if err != nil {
		return err
	}
	for _, c := range caused[:min(len(caused), s.opts.MaxLimit)] {
		cev, err := s.store.Event(ctx, c)
		if err != nil {
			return err
		}
		out.Caused = append(out.Caused, toJSON(cev, false))
	}
	s.metrics.read(1 + len(out.Caused))
	return writeJSON(w, http.StatusOK, out)
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

// causeIndex maps an event id to the ids of the events whose causation_id names it. The
// store keeps no such index, so the server builds it from the log: each query first
// reads the events written since the previous one. Only events with a causation id
// take memory.
type causeIndex struct {
	mu       sync.Mutex
	upTo     uint64 // the last log position read
	children map[uuid.UUID][]uuid.UUID
}

func (c *causeIndex) caused(ctx context.Context, store *pmd.Store, id uuid.UUID) ([]uuid.UUID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := store.LastPosition()
	if end > c.upTo {
		if c.children == nil {
			c.children = make(map[uuid.UUID][]uuid.UUID)
		}
		for ev, err := range store.ReadAll(ctx, pmd.ReadOptions{From: c.upTo + 1}) {
			if err != nil {
				return nil, err
			}
			if ev.Position > end {
				break
			}
			if parent, ok := causationOf(ev); ok {
				c.children[parent] = append(c.children[parent], ev.ID)
			}
			c.upTo = ev.Position // a failed read resumes after the events indexed
		}
		c.upTo = end
	}
	return append([]uuid.UUID(nil), c.children[id]...), nil
}
