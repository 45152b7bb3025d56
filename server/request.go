package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// readBody reads the request body, bounded by Options.MaxBody, and parses it with
// parseBody.
func readBody(r *http.Request) (any, error) {
	data, err := readRaw(r)
	if err != nil {
		return nil, err
	}
	return parseBody(r.Context(), data)
}

// readOptionalBody is readBody for a route whose body may be left out: present is
// false for an empty body.
func readOptionalBody(r *http.Request) (v any, present bool, err error) {
	data, err := readRaw(r)
	if err != nil || len(data) == 0 {
		return nil, false, err
	}
	v, err = parseBody(r.Context(), data)
	return v, true, err
}

// readRaw reads the request body, bounded by Options.MaxBody. It reserves the bytes of
// the memory budget as the body arrives, before it allocates them, in steps that double
// up to its Content-Length (or, for a chunked body, one byte past MaxBody): a client
// holds about what it has sent, never what it only announced.
func readRaw(r *http.Request) ([]byte, error) {
	ctx := r.Context()
	res := reservationOf(ctx)
	maxBody := int64(math.MaxInt32)
	if res != nil {
		maxBody = res.s.opts.MaxBody
	}
	known := r.ContentLength >= 0
	// One byte past MaxBody for a chunked body, for http.MaxBytesReader to refuse.
	end := maxBody + 1
	if known {
		if r.ContentLength > maxBody {
			return nil, &http.MaxBytesError{Limit: maxBody}
		}
		end = r.ContentLength
	}
	buf, _, err := res.grow(ctx, nil, int(min(4<<10, end)), true)
	if err != nil {
		return nil, err
	}
	for {
		if len(buf) == cap(buf) {
			if known && int64(len(buf)) == end {
				return buf, nil // the server's body ends at its Content-Length
			}
			size := min(2*int64(cap(buf)), end)
			if size <= int64(cap(buf)) {
				return nil, &http.MaxBytesError{Limit: maxBody}
			}
			if buf, _, err = res.grow(ctx, buf, int(size), true); err != nil {
				return nil, err
			}
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			var netErr net.Error
			switch {
			case errors.As(err, &tooLarge):
				return nil, err
			case errors.As(err, &netErr) && netErr.Timeout():
				return nil, errBadRequest("the request body did not arrive in time")
			default:
				return nil, errBadRequest("the request body could not be read: %v", err)
			}
		}
	}
}

// kind names the JSON type of a parsed value, for messages.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// object returns v as an object whose keys are all in allowed; where names v in
// messages ("" for the body itself) and what says what v is ("an append").
func object(v any, where, what string, allowed ...string) (map[string]any, error) {
	name := where
	if name == "" {
		name = "the body"
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errBadRequest("%s must be a JSON object, got %s", name, kind(v))
	}
	for k := range obj {
		if !slices.Contains(allowed, k) {
			field := k
			if where != "" {
				field = where + "." + k
			}
			return nil, errBadRequest("unknown field %q: %s takes %s", field, what, list(allowed))
		}
	}
	return obj, nil
}

// list renders names as "a, b and c".
func list(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// optionalObject is an event's data or metadata: an object, or absent or null.
func optionalObject(v any, where string) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errBadRequest("%s must be a JSON object, got %s", where, kind(v))
	}
	return obj, nil
}

const badExpected = `expected_version must be "any", "no_stream", "stream_exists" or an integer ≥ -1`

// expectedFromJSON reads expected_version from a parsed body: absent or null is any;
// "any", "no_stream", "stream_exists", or an integer ≥ -1 (-1 meaning no_stream).
func expectedFromJSON(v any) (pmd.ExpectedVersion, error) {
	switch x := v.(type) {
	case nil:
		return pmd.Any, nil
	case string:
		// A name: pmd.ExpectedVersion's JSON form refuses a version as a string ("7").
		var e pmd.ExpectedVersion
		if e.UnmarshalJSON(strconv.AppendQuote(nil, x)) == nil {
			return e, nil
		}
	case int64:
		if x == -1 {
			return pmd.NoStream, nil
		}
		if x >= 0 {
			return pmd.AtVersion(uint64(x)), nil
		}
	case uint64:
		return pmd.AtVersion(x), nil
	}
	if x, ok := v.(float64); ok {
		// A number with a fraction or an exponent: json.Marshal would show 1.0 as 1,
		// which looks valid.
		shown := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(shown, ".e") {
			return pmd.Any, errBadRequest("%s, got %s.0: write an integer without a fraction or an exponent", badExpected, shown)
		}
		return pmd.Any, errBadRequest("%s, got %s", badExpected, shown)
	}
	shown, _ := json.Marshal(v)
	return pmd.Any, errBadRequest("%s, got %s", badExpected, shown)
}

// expectedFromQuery reads ?expected_version=, where the names come unquoted
// (?expected_version=no_stream). ok is false when the parameter is absent.
func expectedFromQuery(r *http.Request) (e pmd.ExpectedVersion, ok bool, err error) {
	q := r.URL.Query()
	if !q.Has("expected_version") {
		return pmd.Any, false, nil
	}
	v := q.Get("expected_version")
	if e, ok := pmd.ParseExpectedVersion(v); ok {
		return e, true, nil
	}
	return pmd.Any, true, errBadRequest("%s, got %q in the query", badExpected, v)
}

// expectedOf is the expected version of a write: from the body or the query string,
// not both, since two values that differ would leave one silently ignored.
func expectedOf(r *http.Request, body map[string]any) (pmd.ExpectedVersion, error) {
	fromQuery, inQuery, err := expectedFromQuery(r)
	if err != nil {
		return pmd.Any, err
	}
	inBody, ok := body["expected_version"]
	if inQuery {
		if ok {
			return pmd.Any, errBadRequest("expected_version is given both in the query and in the body: give it once")
		}
		return fromQuery, nil
	}
	return expectedFromJSON(inBody)
}

// appendFromJSON reads an append's body: {"expected_version"?, "events": [...]}.
func appendFromJSON(r *http.Request, v any) (pmd.ExpectedVersion, []pmd.EventData, error) {
	body, err := object(v, "", "an append", "expected_version", "events")
	if err != nil {
		return pmd.Any, nil, err
	}
	expected, err := expectedOf(r, body)
	if err != nil {
		return pmd.Any, nil, err
	}
	raw, ok := body["events"]
	if !ok || raw == nil {
		return pmd.Any, nil, errBadRequest("events is missing: an append needs at least one event")
	}
	list, ok := raw.([]any)
	if !ok {
		return pmd.Any, nil, errBadRequest("events must be an array of events, got %s", kind(raw))
	}
	if len(list) == 0 {
		return pmd.Any, nil, errBadRequest("events is empty: an append needs at least one event")
	}
	events := make([]pmd.EventData, len(list))
	for i, e := range list {
		where := fmt.Sprintf("events[%d]", i)
		obj, err := object(e, where, "an event", "id", "type", "data", "metadata")
		if err != nil {
			return pmd.Any, nil, err
		}
		typ, ok := obj["type"]
		if !ok || typ == nil {
			return pmd.Any, nil, errBadRequest("%s.type is missing", where)
		}
		if events[i].Type, ok = typ.(string); !ok {
			return pmd.Any, nil, errBadRequest("%s.type must be a string, got %s", where, kind(typ))
		}
		if id := obj["id"]; id != nil {
			s, ok := id.(string)
			if !ok {
				return pmd.Any, nil, errBadRequest("%s.id must be a UUID string, got %s", where, kind(id))
			}
			if events[i].ID, err = parseID(where+".id", s); err != nil {
				return pmd.Any, nil, err
			}
		}
		if events[i].Data, err = optionalObject(obj["data"], where+".data"); err != nil {
			return pmd.Any, nil, err
		}
		if events[i].Metadata, err = optionalObject(obj["metadata"], where+".metadata"); err != nil {
			return pmd.Any, nil, err
		}
	}
	return expected, events, nil
}

// linkFromJSON reads a link's body: {"expected_version"?, "event_ids": [...]}.
func linkFromJSON(r *http.Request, v any) (pmd.ExpectedVersion, []uuid.UUID, error) {
	body, err := object(v, "", "a link", "expected_version", "event_ids")
	if err != nil {
		return pmd.Any, nil, err
	}
	expected, err := expectedOf(r, body)
	if err != nil {
		return pmd.Any, nil, err
	}
	raw, ok := body["event_ids"]
	if !ok || raw == nil {
		return pmd.Any, nil, errBadRequest("event_ids is missing: a link needs at least one event id")
	}
	list, ok := raw.([]any)
	if !ok {
		return pmd.Any, nil, errBadRequest("event_ids must be an array of UUID strings, got %s", kind(raw))
	}
	if len(list) == 0 {
		return pmd.Any, nil, errBadRequest("event_ids is empty: a link needs at least one event id")
	}
	ids := make([]uuid.UUID, len(list))
	for i, e := range list {
		where := fmt.Sprintf("event_ids[%d]", i)
		s, ok := e.(string)
		if !ok {
			return pmd.Any, nil, errBadRequest("%s must be a UUID string, got %s", where, kind(e))
		}
		if ids[i], err = parseID(where, s); err != nil {
			return pmd.Any, nil, err
		}
	}
	return expected, ids, nil
}

// noBody refuses a body on a route that takes none: a client that sends one expects it
// to mean something.
func noBody(r *http.Request) error {
	var b [1]byte
	if n, err := r.Body.Read(b[:]); n > 0 || err != nil && !errors.Is(err, io.EOF) {
		return errBadRequest("this route takes no body")
	}
	return nil
}
