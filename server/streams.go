package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

type appendRequest struct {
	ExpectedVersion json.RawMessage `json:"expected_version"`
	Events          []eventRequest  `json:"events"`
}

type eventRequest struct {
	ID       *string        `json:"id"`
	Type     *string        `json:"type"`
	Data     map[string]any `json:"data"`
	Metadata map[string]any `json:"metadata"`
}

type writeResponse struct {
	FirstPosition uint64   `json:"first_position"`
	LastPosition  uint64   `json:"last_position"`
	Version       uint64   `json:"version"`
	IDs           []string `json:"ids"`
}

func (s *Server) append(w http.ResponseWriter, r *http.Request) error {
	stream := r.PathValue("stream")
	var req appendRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	expected, err := parseExpected(req.ExpectedVersion)
	if err != nil {
		return err
	}
	if len(req.Events) == 0 {
		return errBadRequest("events: an append needs at least one event")
	}
	events := make([]pmd.EventData, len(req.Events))
	for i, e := range req.Events {
		field := func(name string) string { return fmt.Sprintf("events[%d].%s", i, name) }
		if e.Type == nil {
			return errBadRequest("%s is missing", field("type"))
		}
		ev := pmd.EventData{Type: *e.Type}
		if e.ID != nil {
			if ev.ID, err = parseID(field("id"), *e.ID); err != nil {
				return err
			}
		}
		if ev.Data, err = objectFromJSON(field("data"), e.Data); err != nil {
			return err
		}
		if ev.Metadata, err = objectFromJSON(field("metadata"), e.Metadata); err != nil {
			return err
		}
		events[i] = ev
	}
	res, err := s.store.Append(r.Context(), stream, expected, events...)
	if err != nil {
		return err
	}
	s.metrics.appended(len(events), r.ContentLength)
	ids := make([]string, len(res.IDs))
	for i, id := range res.IDs {
		ids[i] = id.String()
	}
	return writeJSON(w, http.StatusCreated, writeResponse{res.FirstPosition, res.LastPosition, res.Version, ids})
}

type linkRequest struct {
	ExpectedVersion json.RawMessage `json:"expected_version"`
	EventIDs        []string        `json:"event_ids"`
}

func (s *Server) link(w http.ResponseWriter, r *http.Request) error {
	stream := r.PathValue("stream")
	var req linkRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	expected, err := parseExpected(req.ExpectedVersion)
	if err != nil {
		return err
	}
	if len(req.EventIDs) == 0 {
		return errBadRequest("event_ids: a link needs at least one event id")
	}
	ids := make([]uuid.UUID, len(req.EventIDs))
	for i, v := range req.EventIDs {
		if ids[i], err = parseID(fmt.Sprintf("event_ids[%d]", i), v); err != nil {
			return err
		}
	}
	res, err := s.store.Link(r.Context(), stream, expected, ids...)
	if err != nil {
		return err
	}
	s.metrics.linked(len(ids))
	return writeJSON(w, http.StatusCreated, map[string]uint64{"version": res.Version})
}

func (s *Server) deleteStream(w http.ResponseWriter, r *http.Request) error {
	expected, err := parseExpectedQuery(r.URL.Query().Get("expected_version"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteStream(r.Context(), r.PathValue("stream"), expected); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listResponse is a page of events.
type listResponse struct {
	Events []eventJSON `json:"events"`
	Next   *uint64     `json:"next"`
}

// collect reads up to p.limit events of seq, which must have been asked for one more: an
// extra event means there is a next page, starting at its cursor. A damaged record ends
// the page short, with next at it, so the client gets every event before it; a page that
// starts at a damaged record fails with corrupt, naming it, and the client skips it.
func (s *Server) collect(seq iter.Seq2[pmd.Event, error], p page, withVersion bool, cursor func(pmd.Event) uint64) (listResponse, error) {
	out := listResponse{Events: make([]eventJSON, 0, min(p.limit, 64))}
	for ev, err := range seq {
		var ce *pmd.CorruptError
		if errors.As(err, &ce) && len(out.Events) > 0 {
			next := ce.Position
			if withVersion {
				next = ce.Version
			}
			out.Next = &next
			break
		}
		if err != nil {
			return listResponse{}, err
		}
		if len(out.Events) == p.limit {
			next := cursor(ev)
			out.Next = &next
			break
		}
		out.Events = append(out.Events, toJSON(ev, withVersion))
	}
	s.metrics.read(len(out.Events))
	return out, nil
}

func byVersion(ev pmd.Event) uint64  { return ev.Version }
func byPosition(ev pmd.Event) uint64 { return ev.Position }

func (s *Server) readStream(w http.ResponseWriter, r *http.Request) error {
	stream := r.PathValue("stream")
	p, err := s.parsePage(r)
	if err != nil {
		return err
	}
	opts := pmd.ReadOptions{From: p.from, Backward: p.backward, Limit: p.limit + 1}
	var out listResponse
	if stream == pmd.All {
		out, err = s.collect(s.store.ReadAll(r.Context(), opts), p, false, byPosition)
	} else {
		out, err = s.collect(s.store.ReadStream(r.Context(), stream, opts), p, true, byVersion)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) readAll(w http.ResponseWriter, r *http.Request) error {
	p, err := s.parsePage(r)
	if err != nil {
		return err
	}
	opts := pmd.ReadOptions{From: p.from, Backward: p.backward, Limit: p.limit + 1, Types: splitTypes(r.URL.Query().Get("types"))}
	out, err := s.collect(s.store.ReadAll(r.Context(), opts), p, false, byPosition)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) readCategory(w http.ResponseWriter, r *http.Request) error {
	p, err := s.parsePage(r)
	if err != nil {
		return err
	}
	opts := pmd.ReadOptions{From: p.from, Backward: p.backward, Limit: p.limit + 1}
	out, err := s.collect(s.store.ReadCategory(r.Context(), r.PathValue("category"), opts), p, false, byPosition)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

type streamJSON struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Exists  bool   `json:"exists"`
}

type streamsResponse struct {
	Streams []streamJSON `json:"streams"`
	Next    *string      `json:"next"`
}

func (s *Server) listStreams(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := s.parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = s.opts.DefaultLimit
	}
	list, err := s.store.Streams(q.Get("prefix"), q.Get("after"), limit+1)
	if err != nil {
		return err
	}
	out := streamsResponse{Streams: make([]streamJSON, 0, len(list))}
	for i, st := range list {
		if i == limit {
			next := list[i-1].Name
			out.Next = &next
			break
		}
		out.Streams = append(out.Streams, streamJSON{Name: st.Name, Version: st.Version, Exists: st.Exists})
	}
	return writeJSON(w, http.StatusOK, out)
}
