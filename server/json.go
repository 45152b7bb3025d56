package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/jsonfloat"
)

// eventJSON is an event as the API shows it.
type eventJSON struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	Metadata  map[string]any `json:"metadata"`
	Timestamp string         `json:"timestamp"`
	Position  uint64         `json:"position"`
	Stream    string         `json:"stream"`
	Version   *uint64        `json:"version,omitempty"`
	Link      bool           `json:"link"`
	Erased    bool           `json:"erased,omitempty"` // data and metadata erased: they show as {}
}

// toJSON renders ev; withVersion is false for reads of $all, of a category or by type,
// where the version of the stream read has no meaning.
func toJSON(ev pmd.Event, withVersion bool) eventJSON {
	out := eventJSON{
		ID:        ev.ID.String(),
		Type:      ev.Type,
		Data:      ev.Data,
		Metadata:  ev.Metadata,
		Timestamp: ev.Timestamp.UTC().Format(time.RFC3339Nano),
		Position:  ev.Position,
		Stream:    ev.Stream,
		Link:      ev.Link,
		Erased:    ev.Erased,
	}
	if out.Data == nil {
		out.Data = map[string]any{}
	}
	if out.Metadata == nil {
		out.Metadata = map[string]any{}
	}
	out.Data, out.Metadata = jsonfloat.MarkMap(out.Data), jsonfloat.MarkMap(out.Metadata)
	if withVersion {
		v := ev.Version
		out.Version = &v
	}
	return out
}

// floatsKept is v with each float that has no fraction written 2.0 (jsonfloat), in
// the maps and slices of v at any depth: written 2, as encoding/json writes it, every
// reader of the API (this server's parser, the Go client) takes it for an integer, and
// 1e20 for one outside the 64-bit range, which an append of the event read refused.
// Every value the API writes that came from event data (an event's data and metadata,
// a command's data, a process's state) goes through it. v itself is left as it is.
func floatsKept(v any) any {
	m, _ := jsonfloat.Mark(v)
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return fmt.Errorf("server: encode response: %w", err)
	}
	return writeRaw(w, status, buf.Bytes())
}

// writeHeld is writeJSON for an answer that carries events' or commands' data besides a
// page of events (an event with its cause and effects, a process, parked commands): it
// can be as large as an event, and clients that ask for it and do not read would each
// hold one, so it holds its bytes of the memory budget (Options.MemoryBudget) until its
// request ends, as a page does. Its JSON is counted first and written into bytes
// reserved for it (held.go), waiting up to a second for them, as a page's first event
// does; it is refused with unavailable if they do not come.
func (s *Server) writeHeld(ctx context.Context, w http.ResponseWriter, status int, v any) error {
	size, err := heldSize(v)
	if err != nil {
		return fmt.Errorf("server: encode response: %w", err)
	}
	buf, _, err := reservationOf(ctx).grow(ctx, nil, size+1, true)
	if err != nil {
		return err
	}
	if buf, err = s.appendHeld(ctx, buf, v); err != nil {
		return fmt.Errorf("server: encode response: %w", err)
	}
	return writeRaw(w, status, append(buf, '\n'))
}

// writeRaw writes body, which is JSON, as the response.
func writeRaw(w http.ResponseWriter, status int, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// parseID parses an event id given by a client: a UUID in its canonical 36-character
// form, not the nil UUID.
func parseID(field, s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, errBadRequest("%s: %q is not a UUID (want the 36-character form)", field, s)
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, errBadRequest("%s: %q is not a UUID: %v", field, s, err)
	}
	if id == uuid.Nil {
		return uuid.Nil, errBadRequest("%s: the nil UUID is not a valid event id", field)
	}
	return id, nil
}

// checkName applies the contract's rules for stream names and event types (pmd.CheckName).
// The store checks them too; the server checks where it must answer before the store is
// asked (subscriptions).
func checkName(field, name string) error {
	if err := pmd.CheckName(name); err != nil {
		return errBadArgument(field, err.Error())
	}
	return nil
}

// page is the paging of a read: from, direction and limit from the query string.
type page struct {
	from     uint64
	backward bool
	limit    int
}

func (s *Server) parsePage(r *http.Request) (page, error) {
	q := r.URL.Query()
	p := page{limit: s.opts.DefaultLimit}
	switch d := q.Get("direction"); d {
	case "", "forward":
	case "backward":
		p.backward = true
		p.from = pmd.End
	default:
		return p, errBadRequest("direction must be forward or backward, got %q", d)
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return p, errBadRequest("from must be a non-negative integer, got %q", v)
		}
		p.from = n
	}
	limit, err := s.parseLimit(q.Get("limit"))
	if err != nil {
		return p, err
	}
	if limit > 0 {
		p.limit = limit
	}
	return p, nil
}

// parseLimit returns 0 for an absent limit, the limit clamped to MaxLimit otherwise,
// however large: one past the int range is clamped too.
func (s *Server) parseLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		return s.opts.MaxLimit, nil
	}
	if err != nil || n < 1 {
		return 0, errBadRequest("limit must be an integer ≥ 1, got %q", v)
	}
	return min(n, s.opts.MaxLimit), nil
}

// queryTypes reads the event types a read of the global log or a subscription keeps:
// ?type=, once per type, each value one whole type (a type may hold a comma), or
// ?types=, split at its commas, as before type was taken. Both together are refused.
// param is the one given, for messages.
func queryTypes(q url.Values) (types []string, param string, err error) {
	one, list := q["type"], q.Get("types")
	switch {
	case len(one) > 0 && list != "":
		return nil, "", errBadRequest("give type (once per type) or types (comma-separated), not both")
	case len(one) > 0:
		types, param = one, "type"
	case list != "":
		types, param = strings.Split(list, ","), "types"
	default:
		return nil, "", nil
	}
	for i, t := range types {
		if err := checkName(fmt.Sprintf("%s[%d]", param, i), t); err != nil {
			return nil, "", err
		}
	}
	return types, param, nil
}
