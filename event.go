package pmd

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// All is the name of the global log. It can be read and subscribed to, never written.
const All = "$all"

// End, as ReadOptions.From, starts a backward read at the last version or position.
const End uint64 = math.MaxUint64

// Event is an event as read from the store.
type Event struct {
	ID        uuid.UUID
	Type      string
	Data      map[string]any
	Metadata  map[string]any
	Timestamp time.Time // set by the store, UTC
	Position  uint64    // where the event was written in the global log
	Stream    string    // the stream the event was appended to
	// Version is the event's version in the stream that was read. For reads of $all,
	// of a category or by type it is the version in Stream.
	Version uint64
	Link    bool // the event is in the stream read through a link
	// Erased says that the event's data and metadata were erased (EraseStream): they
	// read as nil; its id, type, position, stream, version and timestamp stay.
	Erased bool

	// encoded holds the event's data and metadata undecoded, on a read with
	// ReadOptions.Encoded or SubscribeOptions.Encoded.
	encoded [2][]byte
}

// Encoded returns the event's data and metadata as the store keeps them (EncodeData's
// form, nil for none or erased), on a read with ReadOptions.Encoded or
// SubscribeOptions.Encoded, which leaves Data and Metadata nil; DecodeData decodes them.
// On other reads it returns nil, nil.
func (e Event) Encoded() (data, metadata []byte) { return e.encoded[0], e.encoded[1] }

// EventData is an event to append.
type EventData struct {
	ID       uuid.UUID // optional: the zero UUID makes the store assign a UUIDv7
	Type     string
	Data     map[string]any
	Metadata map[string]any
}

// Metadata keys the store and its process managers understand.
const (
	CorrelationID = "correlation_id"
	CausationID   = "causation_id"
)

// ExpectedVersion is the optimistic-concurrency check of a write. The zero value is Any.
type ExpectedVersion struct {
	kind    expectKind
	version uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any skips the check.
	Any = ExpectedVersion{}
	// NoStream requires the stream not to exist: never written, or deleted since its
	// last write. A stream whose retention hides all its events still exists.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists requires the stream to exist: written and not deleted since, whether
	// or not its retention hides its events.
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// AtVersion requires the stream's last event to be at version n, shown or hidden by
// its retention.
func AtVersion(n uint64) ExpectedVersion {
	return ExpectedVersion{kind: expectExact, version: n}
}

// String renders e the way the HTTP API spells it: any, no_stream, stream_exists or N.
func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no_stream"
	case expectStreamExists:
		return "stream_exists"
	case expectExact:
		return fmt.Sprint(e.version)
	default:
		return "any"
	}
}

// ParseExpectedVersion reads an expected version as the HTTP API's query string and pmd's
// command line spell it, and String writes it: any, no_stream, stream_exists, or an
// integer N ≥ 0, or -1 for no_stream. ok is false for anything else.
func ParseExpectedVersion(s string) (e ExpectedVersion, ok bool) {
	switch s {
	case "any":
		return Any, true
	case "no_stream", "-1":
		return NoStream, true
	case "stream_exists":
		return StreamExists, true
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return Any, false
	}
	return AtVersion(n), true
}

// MarshalJSON writes e as the HTTP API's bodies take it: the string "any", "no_stream"
// or "stream_exists", or the integer N.
func (e ExpectedVersion) MarshalJSON() ([]byte, error) {
	if e.kind == expectExact {
		return strconv.AppendUint(nil, e.version, 10), nil
	}
	return strconv.AppendQuote(nil, e.String()), nil
}

// UnmarshalJSON reads an expected version as the HTTP API's bodies give it: a string
// "any", "no_stream" or "stream_exists", or an integer N ≥ 0, or -1 for no_stream. A
// version as a string ("7") or with a fraction is refused, with an
// *InvalidArgumentError; null leaves e as it is. So is {}, which is what encoding/json
// wrote for an ExpectedVersion before it had these methods (the version was lost: the
// type's fields are unexported); read as any, it would pass a write that expected a
// version.
func (e *ExpectedVersion) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var v ExpectedVersion
	var ok bool
	if len(data) > 0 && data[0] == '"' {
		var s string
		if json.Unmarshal(data, &s) == nil {
			v, ok = ParseExpectedVersion(s)
			ok = ok && v.kind != expectExact && s != "-1"
		}
	} else {
		v, ok = ParseExpectedVersion(string(data))
	}
	if !ok {
		return invalid("expected_version", `must be "any", "no_stream", "stream_exists" or an integer ≥ -1, got %s`, data)
	}
	*e = v
	return nil
}

// WriteResult says where an Append or Link landed.
type WriteResult struct {
	FirstPosition uint64 // log position of the first record written
	LastPosition  uint64 // log position of the last record written
	Version       uint64 // the stream's version after the write (its last event's version)
	// IDs holds the id of each event the write appended or linked, in the order given:
	// the ids the store made for events given without one included.
	IDs []uuid.UUID
}

// ReadOptions selects a page of a stream, of $all or of a category.
type ReadOptions struct {
	// From is the first version (of a stream) or position (of $all or a category) to
	// return, inclusive. A backward read from beyond the end, for instance from End,
	// starts at the end.
	From     uint64
	Backward bool
	// Limit caps the number of events returned; 0 means no limit.
	Limit int
	// Types, when set, keeps only events of these types. Only for $all.
	Types []string
	// Encoded leaves each event's data and metadata undecoded (Event.Encoded). Decoded,
	// data can take tens of times its stored bytes (a map for each small object, an
	// interface for each value): a reader that bounds its memory, as the daemon's HTTP
	// API does, decodes it once it knows what decoding will take.
	Encoded bool
}

// EventOptions says how Store.EventWith and Store.CausedSeqWith read events.
type EventOptions struct {
	// Encoded leaves each event's data and metadata undecoded, as ReadOptions.Encoded.
	Encoded bool
	// Dead makes EventWith find the event even when it is dead (no stream shows it: its
	// stream deleted it or retention hides it): an id stays taken for good. A dead event
	// whose record a scavenge removed reads as its id and position alone, Erased; one
	// whose record it kept without its data reads Erased too. CausedSeqWith refuses it
	// (ErrInvalidArgument).
	Dead bool
}

// SubscribeOptions selects what a subscription delivers.
type SubscribeOptions struct {
	// Stream is the stream to follow; empty or All follows the global log.
	Stream string
	// Types keeps only events of these types. Only for the global log.
	Types []string
	// Category, if set, follows the events written to the streams of a category (see
	// ReadCategory) instead, by position. Not with Stream or Types.
	Category string
	// From is the first version (stream) or position (global log) to deliver, inclusive.
	From uint64
	// Encoded leaves each event's data and metadata undecoded, as ReadOptions.Encoded.
	Encoded bool
}

// StreamInfo describes a stream in a listing.
type StreamInfo struct {
	Name string
	// Exists is false for a stream whose events were all deleted.
	Exists bool
	// Version is the last version ever assigned in the stream, -1 if none.
	Version int64
}
