package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"

	"github.com/pmd-dev/pmd"
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
	// open are the containers being walked, innermost last: the values each has
	// still to walk, and whether it is a map, whose keys are the values walked at an
	// even count left.
	type container struct {
		left  int64
		isMap bool
	}
	open := []container{{left: 1}}
	// A key neither str nor bin makes pmd.DecodeData decode the data twice (the plain
	// decode fails on it, internal/engine.DecodeMap), each such key then printed into
	// a string (keyBytes).
	anyKeys := int64(0)
	i := 0
	// need returns the n bytes at i, moving past them.
	need := func(n int) ([]byte, error) {
		if n < 0 || len(b)-i < n {
			return nil, fmt.Errorf("msgpack: %d bytes at offset %d run past the end (%d)", n, i, len(b))
		}
		p := b[i : i+n]
		i += n
		return p, nil
	}
	length := func(size int) (int64, error) {
		p, err := need(size)
		if err != nil {
			return 0, err
		}
		switch size {
		case 1:
			return int64(p[0]), nil
		case 2:
			return int64(binary.BigEndian.Uint16(p)), nil
		default:
			return int64(binary.BigEndian.Uint32(p)), nil
		}
	}
	// A container holds its entries; each decoded value costs what it holds on its
	// own, counted as it is walked. An empty map is its header alone; one of up to 8
	// entries, one group. MarkMap copies the maps and lists that hold a whole float:
	// their bytes again (copies), counted only when the data holds one (whole).
	var copies int64
	whole := false
	object := func(n int64) {
		c := int64(objectBytes)
		if n > 0 {
			c += max(minGroupBytes, n*memberBytes)
		}
		total += c
		copies += c
		open = append(open, container{left: 2 * n, isMap: true})
	}
	array := func(n int64) {
		c := arrayBytes + n*elementBytes
		total += c
		copies += c
		open = append(open, container{left: n})
	}
	// A string's bytes are read into the decoder's buffer, grown to the longest (in
	// steps of 1 MiB past 1 MiB, each a new buffer a quarter larger: up to six times
	// its bytes allocated as it grows), then copied into the string; each allocation
	// is rounded up to a size class: at most an eighth more and 8 bytes.
	var longest int64
	blob := func(n int64) error {
		if _, err := need(int(n)); err != nil {
			return err
		}
		total += stringBytes + 8 + n + n/8
		longest = max(longest, n)
		return nil
	}
	for len(open) > 0 {
		top := &open[len(open)-1]
		if top.left == 0 {
			open = open[:len(open)-1]
			continue
		}
		key := top.isMap && top.left%2 == 0
		top.left--
		p, err := need(1)
		if err != nil {
			return 0, err
		}
		if c := p[0]; key && !(c >= 0xa0 && c <= 0xbf || c >= 0xc4 && c <= 0xc6 || c >= 0xd9 && c <= 0xdb) {
			anyKeys++
		}
		switch c := p[0]; {
		case c <= 0x7f || c >= 0xe0: // fixint
			total += numberBytes
		case c <= 0x8f:
			object(int64(c & 0x0f))
		case c <= 0x9f:
			array(int64(c & 0x0f))
		case c == 0xa0: // the empty string, no allocation
		case c <= 0xbf:
			err = blob(int64(c & 0x1f))
		case c == 0xc0, c == 0xc2, c == 0xc3: // nil, false, true
		case c == 0xc4, c == 0xc5, c == 0xc6, c == 0xd9, c == 0xda, c == 0xdb: // bin, str
			var n int64
			if n, err = length(lengthBytes(c)); err == nil {
				err = blob(n)
			}
		case c == 0xc7, c == 0xc8, c == 0xc9: // ext 8, 16, 32: length, type, payload
			var n int64
			if n, err = length(lengthBytes(c)); err == nil {
				err = blob(n + 1)
				total += 2 * extBytes
			}
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16, and its type
			err = blob(int64(1)<<(c-0xd4) + 1)
			total += 2 * extBytes
		case c == 0xca, c == 0xcb: // float 32, 64
			var p []byte
			if p, err = need(lengthBytes(c)); err == nil {
				f := float64(math.Float32frombits(binary.BigEndian.Uint32(p)))
				if c == 0xcb {
					f = math.Float64frombits(binary.BigEndian.Uint64(p))
				}
				whole = whole || f == math.Trunc(f) && math.Abs(f) < 1e21
			}
			total += numberBytes
		case c >= 0xcc && c <= 0xd3: // uint and int of 8 to 64 bits
			_, err = need(lengthBytes(c))
			total += numberBytes
		case c == 0xdc, c == 0xdd:
			var n int64
			if n, err = length(lengthBytes(c)); err == nil {
				array(n)
			}
		case c == 0xde, c == 0xdf:
			var n int64
			if n, err = length(lengthBytes(c)); err == nil {
				object(n)
			}
		default:
			err = fmt.Errorf("msgpack: unknown code %#x at offset %d", c, i-1)
		}
		if err != nil {
			return 0, err
		}
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

// lengthBytes is the size of what follows msgpack code c: the length of a str, bin,
// ext, array or map, the value of a number.
func lengthBytes(c byte) int {
	switch c {
	case 0xc4, 0xc7, 0xcc, 0xd0, 0xd9:
		return 1
	case 0xc5, 0xc8, 0xcd, 0xd1, 0xda, 0xdc, 0xde:
		return 2
	case 0xc6, 0xc9, 0xca, 0xce, 0xd2, 0xdb, 0xdd, 0xdf:
		return 4
	default: // 0xcb, 0xcf, 0xd3
		return 8
	}
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
	msg := fmt.Sprintf("event %s at position %d takes up to %d bytes decoded, more than the server's whole memory budget "+
		"of %d bytes: it is read only while no other request holds bytes of the budget, and others held some for %s; "+
		"retry when the server is less busy, or raise its memory budget (pmd serve --memory-budget)",
		ev.ID, ev.Position, held, res.s.memory.limit, res.s.memory.wait)
	return &budgetError{apiError{http.StatusServiceUnavailable, codeUnavailable, msg}, err}
}
