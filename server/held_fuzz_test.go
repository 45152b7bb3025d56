package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/pmd-dev/pmd/internal/jsonfloat"
)

// heldValue builds a value of the shapes event data takes (maps, lists, strings of any
// bytes, float64, int64, uint64, bool, nil, []byte) from the bytes of a fuzz input.
type heldValue struct {
	in    []byte
	depth int
}

func (h *heldValue) next() byte {
	if len(h.in) == 0 {
		return 0
	}
	c := h.in[0]
	h.in = h.in[1:]
	return c
}

func (h *heldValue) take(n int) []byte {
	n = min(n, len(h.in))
	b := h.in[:n]
	h.in = h.in[n:]
	return b
}

func (h *heldValue) u64() uint64 {
	var a [8]byte
	copy(a[:], h.take(8))
	return binary.LittleEndian.Uint64(a[:])
}

func (h *heldValue) str() string {
	return string(h.take(int(h.next() % 64)))
}

// specialStrings are the runes encoding/json escapes, and bytes that are not UTF-8.
var specialStrings = []string{"<", ">", "&", "\u2028", "\u2029", "\x00", "\x1f", "\x7f", "\"", "\\",
	"\xff", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "é", "😀", "\ufffd", "\b\f\n\r\t"}

// specialFloats are floats at the edges of encoding/json's formats.
var specialFloats = []float64{0, math.Copysign(0, -1), 1e-6, 1e-7, 1e21, 1e20, 999999999999999999999,
	math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64, 5e-324, 1e-9, 1.5e300, 0.1,
	math.Inf(1), math.Inf(-1), math.NaN(), 9007199254740993, -1e-7}

func (h *heldValue) value() any {
	h.depth++
	defer func() { h.depth-- }()
	kind := h.next()
	if h.depth > 8 {
		kind %= 12 // no more containers
	}
	switch kind % 18 {
	case 0:
		return nil
	case 1:
		return h.next()%2 == 0
	case 2:
		return h.str()
	case 3:
		var s []byte
		for range h.next() % 8 {
			s = append(s, specialStrings[int(h.next())%len(specialStrings)]...)
			s = append(s, h.take(int(h.next()%4))...)
		}
		return string(s)
	case 4:
		return math.Float64frombits(h.u64())
	case 5:
		return specialFloats[int(h.next())%len(specialFloats)]
	case 6:
		return int64(h.u64())
	case 7:
		return []int64{math.MinInt64, math.MaxInt64, 0, -1}[h.next()%4]
	case 8:
		return h.u64()
	case 9:
		return []uint64{math.MaxUint64, 0, 1 << 63}[h.next()%3]
	case 10:
		if h.next()%4 == 0 {
			return []byte(nil)
		}
		return h.take(int(h.next() % 32))
	case 11:
		return float64(int64(h.u64()>>11)) * []float64{1, -1, 1e3, 1e-3}[h.next()%4]
	case 12, 13:
		if h.next()%8 == 0 {
			return map[string]any(nil)
		}
		m := map[string]any{}
		for range h.next() % 6 {
			m[h.str()] = h.value()
		}
		return m
	case 16, 17:
		return h.marshalers()
	default:
		if h.next()%8 == 0 {
			return []any(nil)
		}
		l := []any{}
		for range h.next() % 6 {
			l = append(l, h.value())
		}
		return l
	}
}

// ptrMarshaler and ptrText have their methods on the pointer: encoding/json calls them
// for a value it can address (reached through a pointer, an element of a slice), and
// writes the fields of one it cannot (in an interface, a map, an array held by value).
type ptrMarshaler struct{ S string }

func (p *ptrMarshaler) MarshalJSON() ([]byte, error) {
	return []byte(`{ "m" : ` + strconv.Quote(p.S) + ` }`), nil
}

type ptrText struct{ S string }

func (p *ptrText) MarshalText() ([]byte, error) { return []byte("t<" + p.S), nil }

type marshalersHolder struct {
	M  ptrMarshaler
	T  ptrText
	P  *ptrMarshaler
	L  []ptrText
	A  [1]ptrMarshaler
	Mp map[string]ptrMarshaler
}

// marshalers is a value of ptrMarshaler and ptrText, addressable or not.
func (h *heldValue) marshalers() any {
	s := h.str()
	holder := marshalersHolder{M: ptrMarshaler{s}, T: ptrText{s}, P: &ptrMarshaler{s}, L: []ptrText{{s}},
		A: [1]ptrMarshaler{{s}}, Mp: map[string]ptrMarshaler{s: {s}}}
	return []any{
		ptrMarshaler{s}, &ptrMarshaler{s}, ptrText{s}, &ptrText{s}, holder, &holder,
		[]ptrMarshaler{{s}}, [1]ptrText{{s}}, &[1]ptrText{{s}}, map[string]ptrText{s: {s}},
	}[h.next()%10]
}

// FuzzHeldJSONAsEncodingJSON: held.go counts and writes the JSON of any value of the
// shapes event data takes as encoding/json writes it, byte for byte, and fails where
// encoding/json fails; so does it once jsonfloat has marked the value's whole floats,
// as the API's answers hold them, and inside an event.
func FuzzHeldJSONAsEncodingJSON(f *testing.F) {
	for _, seed := range []string{
		"",
		"\x0c\x05\x02<>\x03\x04\x00\x01\x02\x03\x04\x05\x06",
		"\x0d\x04\x01k\x05\x01\x01\x02a\x05\x10",
		"\x0e\x01\x05\x03\x07\x00\x07\x01\x09\x00\x09\x02",
		"\x03\x07\x03\x01x\x04\x00\x0b\x00\x0c\x01y\x01\x00",
		"\x04\xff\xff\xff\xff\xff\xff\xef\x7f",
		"\x04\x01\x00\x00\x00\x00\x00\x00\x80",
		"\x0a\x01\x10\x00\xff<>&\xc3\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\x0b\x00\x00\x00\x00\x00\x00\x10\x00\x02",
		"\x0f\x01\x03\x0e\x01\x02\x0d\x01\x03abc\x05\x0f",
		"\x02\x05\xe2\x80\xa8\xe2\x80",
	} {
		f.Add([]byte(seed))
	}
	for i := range byte(10) {
		f.Add([]byte{0x10, 2, '<', '&', i}) // each value of marshalers
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v := (&heldValue{in: in}).value()
		marked, _ := jsonfloat.Mark(v)
		data, _ := marked.(map[string]any)
		for _, v := range []any{v, marked, eventJSON{ID: "x", Data: data, Metadata: data}} {
			checkHeldAsEncodingJSON(t, v)
		}
	})
}

func checkHeldAsEncodingJSON(t *testing.T, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	n, err := heldSize(v)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%#v: held.go counted with error %v, encoding/json's is %v", v, err, wantErr)
	}
	if err != nil {
		return
	}
	if n != len(want) {
		t.Fatalf("%#v: counted %d bytes, encoding/json writes %d: %s", v, n, len(want), want)
	}
	got, err := new(Server).appendHeld(context.Background(), make([]byte, 0, n), v)
	if err != nil {
		t.Fatalf("%#v: %v", v, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%#v: written\n%q\nencoding/json writes\n%q", v, got, want)
	}
}
