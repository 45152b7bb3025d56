package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
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
	}
	if out.Data == nil {
		out.Data = map[string]any{}
	}
	if out.Metadata == nil {
		out.Metadata = map[string]any{}
	}
	if withVersion {
		v := ev.Version
		out.Version = &v
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return fmt.Errorf("server: encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// decodeBody reads one JSON value from r's body into v, refusing unknown fields and
// trailing data. Numbers are kept as json.Number so that integers stay integers.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return errBadRequest("malformed JSON: more data after the request object")
	}
	return nil
}

func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.As(err, &netErr) && netErr.Timeout():
		return errBadRequest("the request body did not arrive in time")
	case errors.Is(err, io.EOF):
		return errBadRequest("malformed JSON: the request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBadRequest("malformed JSON: the request body ends too early")
	case errors.As(err, &syntax):
		return errBadRequest("malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		return errBadRequest("malformed JSON: %s must be %s, got %s", typ.Field, typ.Type, typ.Value)
	default:
		return errBadRequest("malformed JSON: %v", err)
	}
}

// fromJSON turns the json.Numbers of a decoded value into int64 (or uint64 when too
// big) for integers and float64 otherwise, in place, so that msgpack stores integers.
func fromJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return u, nil
		}
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case []any:
		for i, e := range x {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	default:
		return v, nil
	}
}

func objectFromJSON(field string, m map[string]any) (map[string]any, error) {
	if _, err := fromJSON(m); err != nil {
		return nil, errBadRequest("%s: %v", field, err)
	}
	return m, nil
}

// parseExpected reads expected_version: absent or null is any; "any", "no_stream",
// "stream_exists", or an integer ≥ -1 (-1 meaning no_stream).
func parseExpected(raw json.RawMessage) (pmd.ExpectedVersion, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return pmd.Any, nil
	}
	bad := errBadRequest(`expected_version must be "any", "no_stream", "stream_exists" or an integer ≥ -1, got %s`, raw)
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return pmd.Any, bad
		}
		switch s {
		case "any":
			return pmd.Any, nil
		case "no_stream":
			return pmd.NoStream, nil
		case "stream_exists":
			return pmd.StreamExists, nil
		}
		return pmd.Any, bad
	}
	if string(raw) == "-1" {
		return pmd.NoStream, nil
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return pmd.Any, bad
	}
	return pmd.AtVersion(n), nil
}

// parseExpectedQuery is parseExpected for a query parameter, where the names come
// unquoted: ?expected_version=no_stream.
func parseExpectedQuery(v string) (pmd.ExpectedVersion, error) {
	if v == "" || v[0] == '-' || (v[0] >= '0' && v[0] <= '9') {
		return parseExpected(json.RawMessage(v))
	}
	return parseExpected(json.RawMessage(strconv.Quote(v)))
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
		return errBadRequest("%s %v", field, err)
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

// parseLimit returns 0 for an absent limit, the limit clamped to MaxLimit otherwise.
func (s *Server) parseLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errBadRequest("limit must be an integer ≥ 1, got %q", v)
	}
	return min(n, s.opts.MaxLimit), nil
}

func splitTypes(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}
