package server

import (
	"context"
	"fmt"
	"math"
	"net/http"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/msgpackwalk"
)

// Events are read undecoded (pmd.ReadOptions.Encoded) and decoded one at a time, once
// the bytes their decoded data will hold are reserved of the memory budget: decoded,
// data can take tens of times its stored bytes (a list of small integers, 1 byte each
// stored, takes 32 as []any; an object of one member, 3 bytes, a map of about 300), and
// pages, an event's JSON, were counted only once written. Those bytes are given back
// once the event's JSON is written. An event whose bound is more than the budget has
// room for is read as a page that outgrows it is: by the oldest request that holds
// bytes, which alone may pass the limit (memory.go).

// decodedBytes is an upper bound of the bytes that pmd.DecodeData of b allocates, and
// that the JSON encoding of it (toJSON's jsonfloat.MarkMap, which copies each map and
// list holding a whole float) adds, by the cost model of parsed values (decode.go),
// found without decoding: a walk of b's msgpack, in memory of its nesting depth
// (TestDecodedBytesBoundsDecoding).
func decodedBytes(b []byte) (int64, error) {
	if len(b) == 0 {
		return objectBytes + minGroupBytes, nil
	}
	var total int64
	// A key neither str nor bin makes pmd.DecodeData decode the data twice (the plain
	// decode fails on it, internal/engine.DecodeMap), each such key then printed into
	// a string (keyBytes).
	anyKeys := int64(0)
	// A container holds its entries; each decoded value costs what it holds on its
	// own, counted as it is walked. An empty map is its header alone; one of up to 8
	// entries, one group. MarkMap copies the maps and lists that hold a whole float:
	// their bytes again (copies), counted only when the data holds one (whole).
	var copies int64
	whole := false
	// A string's bytes are read into the decoder's buffer, grown to the longest (in
	// steps of 1 MiB past 1 MiB, each a new buffer a quarter larger: up to six times
	// its bytes allocated as it grows), then copied into the string; each allocation
	// is rounded up to a size class: at most an eighth more and 8 bytes.
	var longest int64
	blob := func(n int64) {
		total += stringBytes + 8 + n + n/8
		longest = max(longest, n)
	}
	w := msgpackwalk.New(b)
	for w.Next() {
		it := w.Item()
		if it.Key && it.Kind != msgpackwalk.String && it.Kind != msgpackwalk.Binary {
			anyKeys++
		}
		switch it.Kind {
		case msgpackwalk.Int:
			total += numberBytes
		case msgpackwalk.Float:
			f := it.Float()
			whole = whole || f == math.Trunc(f) && math.Abs(f) < 1e21
			total += numberBytes
		case msgpackwalk.Map:
			c := int64(objectBytes)
			if it.N > 0 {
				c += max(minGroupBytes, int64(it.N)*memberBytes)
			}
			total += c
			copies += c
		case msgpackwalk.Array:
			c := arrayBytes + int64(it.N)*elementBytes
			total += c
			copies += c
		case msgpackwalk.String, msgpackwalk.Binary:
			if it.Code != 0xa0 { // the empty fixstr allocates nothing
				blob(int64(len(it.Body)))
			}
		case msgpackwalk.Ext: // its type and data, decoded to a time.Time
			blob(int64(len(it.Body)))
			total += 2 * extBytes
		}
	}
	if err := w.Err(); err != nil {
		return 0, err
	}
	if whole {
		total += copies
	}
	total += 6 * (64 + longest + longest/8)
	if anyKeys > 0 {
		total = 2*total + anyKeys*keyBytes // each decode grows a buffer of its own
	}
	return total, nil
}

// keyBytes is what printing a key that is not a string takes (fmt.Sprint): its string
// and header, and the boxing of the value printed.
const keyBytes = 64

// extBytes is what a msgpack extension decodes to beside its bytes (a time.Time).
const extBytes = 48

// decodeHeld decodes the data and metadata of ev, read undecoded, once the bytes they
// will hold are reserved for ctx's request (decodedBytes); wait says whether to wait for
// them when the budget is full (reservation.grow). ok is false when not waiting and the
// budget has no room now. held is what was reserved, the event's encoded bytes with
// it, which the caller gives back (reservation.give) once done with the event. Data that
// does not decode is a *pmd.CorruptError naming the event's position, and with stream
// set (a read or subscription of that one stream) its version there and stream, as the
// store names a damaged record of the stream being read (pmd.CorruptError.Stream).
func decodeHeld(ctx context.Context, ev *pmd.Event, stream string, wait bool) (held int64, ok bool, err error) {
	data, meta := ev.Encoded()
	if ev.Erased {
		return 0, true, nil
	}
	corrupt := func(what string, err error) error {
		ce := &pmd.CorruptError{Position: ev.Position, Version: ev.Version, Cause: fmt.Errorf("%s: %w", what, err)}
		if stream != "" {
			ce.Stream = stream // the stream read, which names Version: a link's, not its event's
		}
		return ce
	}
	nd, err := decodedBytes(data)
	if err != nil {
		return 0, false, corrupt("data", err)
	}
	nm, err := decodedBytes(meta)
	if err != nil {
		return 0, false, corrupt("metadata", err)
	}
	held = int64(len(data)+len(meta)) + nd + nm
	res := reservationOf(ctx)
	if wait {
		if err := res.take(ctx, held); err != nil {
			return 0, false, beyondBudget(res, ev, held, err)
		}
	} else if !res.tryTake(held) {
		return 0, false, nil
	}
	if ev.Data, err = pmd.DecodeData(data); err != nil {
		res.give(held)
		return 0, false, corrupt("data", err)
	}
	if ev.Metadata, err = pmd.DecodeData(meta); err != nil {
		res.give(held)
		return 0, false, corrupt("metadata", err)
	}
	return held, true, nil
}

// budgetError is the refusal of a request at the memory budget (memoryBudget.full) with
// a message of its own.
type budgetError struct {
	apiError
	full error
}

func (e *budgetError) Unwrap() []error { return []error{&e.apiError, e.full} }

// beyondBudget is err, the refusal of the held bytes of ev's decoded data, saying why
// when they are more than the whole budget: ev is read only by the oldest request that
// holds bytes of it, so not while others hold some, however long the client retries.
func beyondBudget(res *reservation, ev *pmd.Event, held int64, err error) error {
	if res == nil || err != res.s.memory.full || held <= res.s.memory.limit {
		return err
	}
	return beyondBudgetOf(res, fmt.Sprintf("event %s at position %d takes up to %d bytes decoded", ev.ID, ev.Position, held), err)
}

// beyondBudgetOf is the refusal err of what more than the whole budget, as what says
// ("event ... takes up to N bytes decoded"), when a request holds it alone only.
func beyondBudgetOf(res *reservation, what string, err error) error {
	msg := fmt.Sprintf("%s, more than the server's whole memory budget "+
		"of %d bytes: it is read only while no other request holds bytes of the budget, and others held some for %s; "+
		"retry when the server is less busy, or raise its memory budget (pmd serve --memory-budget)",
		what, res.s.memory.limit, res.s.memory.wait)
	return &budgetError{apiError{http.StatusServiceUnavailable, codeUnavailable, msg}, err}
}
