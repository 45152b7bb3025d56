package server

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

type writeResponse struct {
	FirstPosition uint64   `json:"first_position"`
	LastPosition  uint64   `json:"last_position"`
	Version       uint64   `json:"version"`
	IDs           []string `json:"ids"`
}

func (s *Server) append(w http.ResponseWriter, r *http.Request) error {
	// The body's bytes as read, for pmd_append_bytes_total: a chunked body has no
	// Content-Length.
	raw, err := readRaw(r)
	if err != nil {
		return err
	}
	body, err := parseBody(r.Context(), raw)
	if err != nil {
		return err
	}
	expected, events, err := appendFromJSON(r, body)
	if err != nil {
		return err
	}
	res, err := s.store.Append(r.Context(), r.PathValue("stream"), expected, events...)
	if err != nil {
		return err
	}
	s.metrics.appended(len(events), int64(len(raw)))
	ids := make([]string, len(res.IDs))
	for i, id := range res.IDs {
		ids[i] = id.String()
	}
	return writeJSON(w, http.StatusCreated, writeResponse{res.FirstPosition, res.LastPosition, res.Version, ids})
}

func (s *Server) link(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	expected, ids, err := linkFromJSON(r, body)
	if err != nil {
		return err
	}
	if tk := limitedToken(r); tk != nil {
		if err := s.mayLink(r, tk, ids); err != nil {
			return err
		}
	}
	res, err := s.store.Link(r.Context(), r.PathValue("stream"), expected, ids...)
	if err != nil {
		return err
	}
	s.metrics.linked(len(ids))
	return writeJSON(w, http.StatusCreated, map[string]uint64{"version": res.Version})
}

// mayLink refuses a token limited to streams the link of an event it cannot read: one in
// none of its streams. Linking it would show its data in a stream the token reads. An id
// not stored is left to Link, which answers event_not_found. An event can be in any
// number of streams: they are read a page (mayLinkPage) at a time, up to the first the
// token reads.
func (s *Server) mayLink(r *http.Request, tk *token, ids []uuid.UUID) error {
	for _, id := range ids {
		allowed := false
		for after := uint64(0); !allowed; {
			streams, next, err := s.store.EventStreamsPage(r.Context(), id, after, mayLinkPage)
			if errors.Is(err, pmd.ErrEventNotFound) {
				allowed = true // left to Link
				break
			}
			if err != nil {
				return err
			}
			allowed = slices.ContainsFunc(streams, tk.allows)
			if next == 0 {
				break
			}
			after = next
		}
		if !allowed {
			return errForbidden("token %q is limited to streams %s; event %s is in none of them", tk.name, strings.Join(quoteAll(tk.streams), ", "), id)
		}
	}
	return nil
}

// mayLinkPage is how many of an event's streams mayLink reads at a time.
const mayLinkPage = 100

// deleteStream takes expected_version in the query or in an optional body
// {"expected_version"}, as every write does: a body it ignored would delete a stream the
// client meant to guard.
func (s *Server) deleteStream(w http.ResponseWriter, r *http.Request) error {
	v, present, err := readOptionalBody(r)
	if err != nil {
		return err
	}
	var body map[string]any
	if present {
		if body, err = object(v, "", "a delete", "expected_version"); err != nil {
			return err
		}
	}
	expected, err := expectedOf(r, body)
	if err != nil {
		return err
	}
	if err := s.store.DeleteStream(r.Context(), r.PathValue("stream"), expected); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// collect writes a page of seq's events: at most p.limit of them (seq must have been
// asked for one more) and at most Options.PageBytes of JSON, but always one. An event
// left out means there is a next page, starting at its cursor. A damaged record ends
// the page short, with next at it, so the client gets every event before it; a page that
// starts at a damaged record fails with corrupt, naming it, and the client skips it.
//
// The page is encoded as it is read, each event counted before it is written (held.go),
// so its size is known exactly and no more than one page is held:
// {"events": [...], "next": <cursor or null>}. Its bytes are reserved of
// the memory budget before they are allocated, and held until the request ends: a page
// that the budget cannot grow ends early, with next; one that cannot get the bytes of
// its first event fails with unavailable.
func (s *Server) collect(ctx context.Context, w http.ResponseWriter, seq iter.Seq2[pmd.Event, error], p page, stream string, cursor func(pmd.Event) uint64) error {
	withVersion := stream != "" // a page of one stream, read by version
	res := reservationOf(ctx)
	const head = `{"events":[`
	const tail = len(`],"next":18446744073709551615}` + "\n")
	buf, _, err := res.grow(ctx, nil, min(4<<10, len(head)+tail+s.opts.PageBytes), true)
	if err != nil {
		return err
	}
	buf = append(buf, head...)
	n := 0
	var next *uint64
	for ev, err := range seq {
		if err == nil && n == p.limit {
			at := cursor(ev)
			next = &at
			break
		}
		// The event's data is decoded once the bytes it takes are reserved, given
		// back once it is written (decoded.go); its JSON is counted before it is
		// written, and written into bytes reserved for it (held.go).
		var decoded int64
		ok := true
		if err == nil {
			decoded, ok, err = decodeHeld(ctx, &ev, stream, n == 0)
		}
		var ce *pmd.CorruptError
		if errors.As(err, &ce) && n > 0 {
			at := ce.Position
			if withVersion {
				at = ce.Version
			}
			next = &at
			break
		}
		if err != nil {
			return err
		}
		if !ok {
			at := cursor(ev)
			next = &at
			break
		}
		var added bool
		buf, added, err = s.appendEvent(ctx, buf, ev, n, withVersion, tail)
		res.give(decoded)
		if err != nil {
			return err
		}
		if !added {
			at := cursor(ev)
			next = &at
			break
		}
		n++
	}
	buf = append(buf, `],"next":`...)
	if next == nil {
		buf = append(buf, "null"...)
	} else {
		buf = strconv.AppendUint(buf, *next, 10)
	}
	buf = append(buf, "}\n"...)
	s.metrics.read(n)
	return writeRaw(w, http.StatusOK, buf)
}

// appendEvent appends ev's JSON to the page in buf, which holds n events and has tail
// bytes to end with, growing buf within Options.PageBytes and the memory budget (waiting
// for it only for the first event); added is false when the page has no room for it.
func (s *Server) appendEvent(ctx context.Context, buf []byte, ev pmd.Event, n int, withVersion bool, tail int) (_ []byte, added bool, err error) {
	e := toJSON(ev, withVersion)
	size, err := heldSize(e)
	if err != nil {
		return buf, false, fmt.Errorf("server: encode event %s: %w", ev.ID, err)
	}
	need := len(buf) + 1 + size + tail
	if n > 0 && need > s.opts.PageBytes {
		return buf, false, nil
	}
	if need > cap(buf) {
		grown, ok, err := reservationOf(ctx).grow(ctx, buf, max(need, min(2*cap(buf), s.opts.PageBytes)), n == 0)
		if err != nil || !ok {
			return buf, false, err
		}
		buf = grown
	}
	if n > 0 {
		buf = append(buf, ',')
	}
	if buf, err = s.appendHeld(ctx, buf, e); err != nil {
		return buf, false, fmt.Errorf("server: encode event %s: %w", ev.ID, err)
	}
	return buf, true, nil
}

func byVersion(ev pmd.Event) uint64  { return ev.Version }
func byPosition(ev pmd.Event) uint64 { return ev.Position }

func (s *Server) readStream(w http.ResponseWriter, r *http.Request) error {
	stream := r.PathValue("stream")
	p, err := s.parsePage(r)
	if err != nil {
		return err
	}
	opts := pmd.ReadOptions{From: p.from, Backward: p.backward, Limit: p.limit + 1, Encoded: true}
	if stream == pmd.All {
		return s.collect(r.Context(), w, s.store.ReadAll(r.Context(), opts), p, "", byPosition)
	}
	return s.collect(r.Context(), w, s.store.ReadStream(r.Context(), stream, opts), p, stream, byVersion)
}

func (s *Server) readAll(w http.ResponseWriter, r *http.Request) error {
	p, err := s.parsePage(r)
	if err != nil {
		return err
	}
	types, _, err := queryTypes(r.URL.Query())
	if err != nil {
		return err
	}
	opts := pmd.ReadOptions{From: p.from, Backward: p.backward, Limit: p.limit + 1, Types: types, Encoded: true}
	return s.collect(r.Context(), w, s.store.ReadAll(r.Context(), opts), p, "", byPosition)
}

func (s *Server) readCategory(w http.ResponseWriter, r *http.Request) error {
	p, err := s.parsePage(r)
	if err != nil {
		return err
	}
	opts := pmd.ReadOptions{From: p.from, Backward: p.backward, Limit: p.limit + 1, Encoded: true}
	return s.collect(r.Context(), w, s.store.ReadCategory(r.Context(), r.PathValue("category"), opts), p, "", byPosition)
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
