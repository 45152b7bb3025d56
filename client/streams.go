package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/jsonfloat"
)

// Event is an event as the API returns it. Its JSON form is the API's.
type Event struct {
	ID        uuid.UUID      `json:"id"`
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	Metadata  map[string]any `json:"metadata"`
	Timestamp time.Time      `json:"timestamp"` // set by the store, UTC
	Position  uint64         `json:"position"`  // where it was written in the global log
	Stream    string         `json:"stream"`    // the stream it was appended to
	// Version is its version in the stream read or followed; nil for reads of $all, of
	// a category or by type, where the API gives none.
	Version *uint64 `json:"version,omitempty"`
	Link    bool    `json:"link"` // it is in the stream read through a link
	// Erased says the event's data and metadata were erased: they read as empty.
	Erased bool `json:"erased,omitempty"`
}

// eventFields is Event without its methods, for MarshalJSON.
type eventFields Event

// MarshalJSON writes e as the API does: a float of its data or metadata that has no
// fraction is written 2.0 (jsonfloat.MarkMap), so that what is read back, or appended again
// through the API, is a float as it was; written 2 it is read as the integer 2, and
// 1e20 is refused as an integer outside the 64-bit range.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(e.fields())
}

// UnmarshalJSON reads e as the client reads the API: an integer as int64 (uint64 above
// its range), any other number as float64 (2.0 included), so that Event's JSON form
// reads back as it was written.
func (e *Event) UnmarshalJSON(b []byte) error {
	var f eventFields
	if err := decodeNumbers(b, &f); err != nil {
		return err
	}
	*e = Event(f)
	return e.numbers()
}

// decodeNumbers decodes b into v with its numbers as json.Number, for number to turn
// into what the embedded store gives.
func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// fields is e with its data and metadata marked as MarshalJSON writes them.
func (e Event) fields() eventFields {
	e.Data, e.Metadata = jsonfloat.MarkMap(e.Data), jsonfloat.MarkMap(e.Metadata)
	return eventFields(e)
}

// numbers turns the json.Numbers of the event's data and metadata into what the
// embedded store gives: int64 (uint64 above its range) for integers, float64 otherwise.
func (e *Event) numbers() error {
	if e.Data == nil {
		e.Data = map[string]any{}
	}
	if e.Metadata == nil {
		e.Metadata = map[string]any{}
	}
	for _, m := range []map[string]any{e.Data, e.Metadata} {
		for k, v := range m {
			n, err := number(v)
			if err != nil {
				return fmt.Errorf("client: event %s: %s: %w", e.ID, k, err)
			}
			m[k] = n
		}
	}
	return nil
}

func number(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return u, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			n, err := number(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := number(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}

func numbersAll(events []Event) error {
	for i := range events {
		if err := events[i].numbers(); err != nil {
			return err
		}
	}
	return nil
}

func streamPath(stream string) string { return "/v1/streams/" + segment(stream) }

type eventRequest struct {
	ID       string         `json:"id,omitempty"`
	Type     string         `json:"type"`
	Data     map[string]any `json:"data"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Append appends events to stream if its version is what expected says, all of them or
// none. An event given without an id gets one from the store; the result's IDs holds
// every event's id, in order. An exact retry of an append that succeeded (same stream,
// same ids) succeeds again without writing anything.
func (c *Client) Append(ctx context.Context, stream string, expected pmd.ExpectedVersion, events ...pmd.EventData) (pmd.WriteResult, error) {
	if err := checkWritable(stream); err != nil {
		return pmd.WriteResult{}, err
	}
	if err := checkEvents(events); err != nil {
		return pmd.WriteResult{}, err
	}
	body := struct {
		ExpectedVersion pmd.ExpectedVersion `json:"expected_version"`
		Events          []eventRequest      `json:"events"`
	}{expected, make([]eventRequest, len(events))}
	for i, e := range events {
		// A float with no fraction goes as 2.0, so that the daemon stores a float, as the
		// embedded store does: written 2, it was stored as the integer 2.
		r := eventRequest{Type: e.Type, Data: jsonfloat.MarkMap(e.Data), Metadata: jsonfloat.MarkMap(e.Metadata)}
		if e.ID != uuid.Nil {
			r.ID = e.ID.String()
		}
		if r.Data == nil {
			r.Data = map[string]any{}
		}
		body.Events[i] = r
	}
	var out struct {
		FirstPosition uint64      `json:"first_position"`
		LastPosition  uint64      `json:"last_position"`
		Version       uint64      `json:"version"`
		IDs           []uuid.UUID `json:"ids"`
	}
	if err := c.do(ctx, "POST", streamPath(stream), body, &out); err != nil {
		return pmd.WriteResult{}, err
	}
	return pmd.WriteResult{FirstPosition: out.FirstPosition, LastPosition: out.LastPosition, Version: out.Version, IDs: out.IDs}, nil
}

// LinkResult is what a link answers.
type LinkResult struct {
	Version uint64 `json:"version"` // the stream's version after the link
}

// Link links stored events into stream, at its next versions, if its version is what
// expected says: all of them or none.
func (c *Client) Link(ctx context.Context, stream string, expected pmd.ExpectedVersion, ids ...uuid.UUID) (LinkResult, error) {
	if err := checkWritable(stream); err != nil {
		return LinkResult{}, err
	}
	if err := checkLinks(ids); err != nil {
		return LinkResult{}, err
	}
	body := struct {
		ExpectedVersion pmd.ExpectedVersion `json:"expected_version"`
		EventIDs        []uuid.UUID         `json:"event_ids"`
	}{expected, ids}
	var out LinkResult
	err := c.do(ctx, "POST", streamPath(stream)+"/links", body, &out)
	return out, err
}

// DeleteStream deletes stream if its version is what expected says. Its events stay in
// the streams they are linked into; those no stream shows any more are dead and leave
// $all. A later write starts the stream again.
func (c *Client) DeleteStream(ctx context.Context, stream string, expected pmd.ExpectedVersion) error {
	if err := checkWritable(stream); err != nil {
		return err
	}
	path := streamPath(stream)
	if expected != pmd.Any {
		path += "?" + url.Values{"expected_version": {expected.String()}}.Encode()
	}
	return c.do(ctx, "DELETE", path, nil, nil)
}

// Page is one page of events.
type Page struct {
	Events []Event `json:"events"`
	// Next is the From of the following page (a version in a stream read, a position
	// otherwise), nil on the last page.
	Next *uint64 `json:"next"`
}

// pageQuery spells opts as the read routes' query. A forward read from 0 and a
// backward read from pmd.End are the API's defaults and are not sent. Limit 0 leaves
// the page size to the daemon (100 unless configured); larger limits are capped by
// it, and a page is cut short at 4 MiB: Next continues.
func pageQuery(opts pmd.ReadOptions, withTypes bool) (string, error) {
	q := url.Values{}
	if opts.Backward {
		q.Set("direction", "backward")
	}
	if (opts.Backward && opts.From != pmd.End) || (!opts.Backward && opts.From != 0) {
		q.Set("from", strconv.FormatUint(opts.From, 10))
	}
	if err := checkLimit(opts.Limit); err != nil {
		return "", err
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if len(opts.Types) > 0 {
		if !withTypes {
			return "", invalid("types", "filter only reads of the global log (ReadAll)")
		}
		if err := checkTypes(opts.Types); err != nil {
			return "", err
		}
		setTypes(q, opts.Types)
	}
	if len(q) == 0 {
		return "", nil
	}
	return "?" + q.Encode(), nil
}

// checkTypes checks the event types of a filter, as the store's reads do, before
// anything is sent: an error names the type as the caller gave it (types[1]), not as
// the query spelt it.
func checkTypes(types []string) error {
	for i, t := range types {
		if err := checked(fmt.Sprintf("types[%d]", i), pmd.CheckName(t)); err != nil {
			return err
		}
	}
	return nil
}

// setTypes puts the event types of a filter in q: types=A,B, which every daemon
// takes, unless a type holds a comma, which types= would split; then type=, once per
// type, each whole (a daemon older than type= refuses it as an unknown parameter, but
// could not filter such a type at all).
func setTypes(q url.Values, types []string) {
	if slices.ContainsFunc(types, func(t string) bool { return strings.Contains(t, ",") }) {
		q["type"] = types
		return
	}
	q.Set("types", strings.Join(types, ","))
}

func (c *Client) page(ctx context.Context, path string, opts pmd.ReadOptions, withTypes bool) (Page, error) {
	q, err := pageQuery(opts, withTypes)
	if err != nil {
		return Page{}, err
	}
	var p Page
	if err := c.do(ctx, "GET", path+q, nil, &p); err != nil {
		return Page{}, err
	}
	return p, numbersAll(p.Events)
}

// ReadStream reads one page of stream (pmd.All reads the global log, as ReadAll does,
// opts.Types included) from opts.From, forward or backward. A stream without events
// fails with pmd.ErrStreamNotFound.
func (c *Client) ReadStream(ctx context.Context, stream string, opts pmd.ReadOptions) (Page, error) {
	if err := checkStream(stream); err != nil {
		return Page{}, err
	}
	if stream == pmd.All {
		return c.ReadAll(ctx, opts) // with opts.Types, as the store's ReadStream reads $all
	}
	return c.page(ctx, streamPath(stream), opts, false)
}

// ReadAll reads one page of the global log from position opts.From, keeping only
// events of opts.Types when given.
func (c *Client) ReadAll(ctx context.Context, opts pmd.ReadOptions) (Page, error) {
	return c.page(ctx, "/v1/all", opts, true)
}

// ReadCategory reads one page of the events of the streams of category (the part of a
// stream's name before its first $), in log order from position opts.From.
func (c *Client) ReadCategory(ctx context.Context, category string, opts pmd.ReadOptions) (Page, error) {
	if err := checked("category", pmd.CheckCategory(category)); err != nil {
		return Page{}, err
	}
	return c.page(ctx, "/v1/categories/"+segment(category), opts, false)
}

// ListOptions selects a page of a listing in name (or id) order.
type ListOptions struct {
	Prefix string // only names starting with it (streams only)
	After  string // only names after it: the Next of the page before
	Limit  int    // at most this many; 0 leaves it to the daemon
}

func (o ListOptions) query(withPrefix bool) (string, error) {
	q := url.Values{}
	if o.Prefix != "" {
		if !withPrefix {
			return "", invalid("prefix", "this listing takes none")
		}
		q.Set("prefix", o.Prefix)
	}
	if o.After != "" {
		q.Set("after", o.After)
	}
	if err := checkLimit(o.Limit); err != nil {
		return "", err
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if len(q) == 0 {
		return "", nil
	}
	return "?" + q.Encode(), nil
}

// StreamPage is one page of the stream listing.
type StreamPage struct {
	Streams []StreamInfo `json:"streams"`
	// Next is the After of the following page, nil on the last page.
	Next *string `json:"next"`
}

// StreamInfo is a stream in the listing.
type StreamInfo struct {
	Name string `json:"name"`
	// Version is the last version ever given in the stream, -1 if none.
	Version int64 `json:"version"`
	// Exists is false for a stream whose events were all deleted.
	Exists bool `json:"exists"`
}

// ListStreams lists stream names in name order with their last versions.
func (c *Client) ListStreams(ctx context.Context, opts ListOptions) (StreamPage, error) {
	q, err := opts.query(true)
	if err != nil {
		return StreamPage{}, err
	}
	var p StreamPage
	err = c.do(ctx, "GET", "/v1/streams"+q, nil, &p)
	return p, err
}

// EventDetail is one event with its relations.
type EventDetail struct {
	Event Event `json:"event"`
	// Streams are the streams it is in: the one it was written to (unless deleted),
	// then those it is linked into; as many as fit in one page of the daemon's.
	Streams []string `json:"streams"`
	// StreamsTruncated says it is in more streams than Streams holds.
	StreamsTruncated bool `json:"streams_truncated"`
	// Causation is the event its causation_id names, nil if none is stored or it was
	// left out (CausationOmitted).
	Causation *Event `json:"causation"`
	// CausationOmitted says its cause is stored but was left out: the daemon's memory
	// budget had no room for it when the answer was built (the daemon does not wait for
	// room; a cause larger than the whole budget has room only while no other request
	// holds bytes of it). Event reads the cause itself.
	CausationOmitted bool `json:"causation_omitted"`
	// Caused are the events whose causation_id is its id, in log order: as many as
	// fit in one page of the daemon's (1000 and 4 MiB unless configured) and in its
	// memory budget.
	Caused []Event `json:"caused"`
	// CausedTruncated says more events name it as their cause than Caused holds;
	// ReadAll finds the others.
	CausedTruncated bool `json:"caused_truncated"`
}

// Event reads one event by id. An id that is not stored fails with
// pmd.ErrEventNotFound.
func (c *Client) Event(ctx context.Context, id uuid.UUID) (EventDetail, error) {
	var d EventDetail
	if err := c.do(ctx, "GET", "/v1/events/"+segment(id.String()), nil, &d); err != nil {
		return EventDetail{}, err
	}
	if err := d.Event.numbers(); err != nil {
		return EventDetail{}, err
	}
	if d.Causation != nil {
		if err := d.Causation.numbers(); err != nil {
			return EventDetail{}, err
		}
	}
	return d, numbersAll(d.Caused)
}
