package pmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/vmihailenco/msgpack/v5"
)

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plainMapCases are msgpack values with whether plainMap answers for them.
func plainMapCases(t testing.TB) []struct {
	name  string
	b     []byte
	plain bool
} {
	many := map[string]any{}
	for i := range 20 {
		many[strings.Repeat("k", i+1)] = i
	}
	good := mustMsgpack(t, map[string]any{"order": "o-1"})
	return []struct {
		name  string
		b     []byte
		plain bool
	}{
		{"one string", good, true},
		{"every plain kind", mustMsgpack(t, map[string]any{
			"nil": nil, "t": true, "f": false, "small": 7, "neg": -3, "i8": -100, "i16": -1000, "i32": -100000,
			"i64": int64(-1) << 40, "u8": uint8(200), "u16": uint16(60000), "u32": uint32(1 << 31), "u64": uint64(1) << 63,
			"f32": float32(1.5), "f64": 2.25, "bin": []byte{1, 2, 3}, "bin16": bytes.Repeat([]byte{1}, 300),
			"s31": strings.Repeat("s", 31), "s32": strings.Repeat("s", 32), "s300": strings.Repeat("s", 300),
			"s70k": strings.Repeat("s", 70000), "arr": []any{1, "a", []any{}, map[string]any{}},
			"arr16": make([]int, 20), "nested": map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": 1}}}},
		}), true},
		{"a map of 20 entries (map 16)", mustMsgpack(t, many), true},
		{"a map 32 header", append([]byte{0xdf, 0, 0, 0, 1}, good[1:]...), true},
		{"empty map", []byte{0x80}, false},
		{"nil", []byte{0xc0}, false},
		{"nothing", nil, false},
		{"an array", mustMsgpack(t, []any{1}), false},
		{"a string", mustMsgpack(t, "a"), false},
		{"an int key", mustMsgpack(t, map[int]any{1: "a"}), false},
		{"a bin key", append([]byte{0x81, 0xc4, 1, 'k'}, 1), false},
		{"a nested int key", mustMsgpack(t, map[string]any{"a": map[int]any{1: 2}}), false},
		{"a time (extension)", mustMsgpack(t, map[string]any{"at": time.Unix(1, 0)}), false},
		{"code 0xc1", []byte{0x81, 0xa1, 'k', 0xc1}, false},
		{"bytes after the map", append(append([]byte{}, good...), 0x01), false},
		{"cut short", good[:len(good)-1], false},
		{"a header of more entries than it holds", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k', 1}, false},
		{"a string longer than what follows", []byte{0x81, 0xa1, 'k', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}, false},
		{"nested 70 deep", append(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, 70), 1), true},
	}
}

// TestPlainMap checks plainMap answers for the maps the store's write methods encode, and
// that decodeMap takes every map it answers for, with its entries.
func TestPlainMap(t *testing.T) {
	for _, c := range plainMapCases(t) {
		t.Run(c.name, func(t *testing.T) {
			if got := plainMap(c.b); got != c.plain {
				t.Fatalf("plainMap(% x) = %t, want %t", c.b, got, c.plain)
			}
			if !c.plain {
				return // decodeMap would try the map of 2^32 entries a header says
			}
			if m, err := engine.DecodeMap(c.b); err != nil || len(m) == 0 {
				t.Fatalf("plainMap takes % x, which decodeMap does not: %v, %d entries", c.b, err, len(m))
			}
		})
	}
}

// FuzzPlainMap checks that decodeMap takes, with its entries, whatever plainMap answers for:
// checkWire takes those without decoding them.
func FuzzPlainMap(f *testing.F) {
	for _, c := range plainMapCases(f) {
		f.Add(c.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !plainMap(b) {
			return
		}
		if m, err := engine.DecodeMap(b); err != nil || len(m) == 0 {
			t.Fatalf("plainMap takes % x, which decodeMap does not: %v, %d entries", b, err, len(m))
		}
	})
}

// TestDecodeWriteDoesNotDecodeTheData checks that every node decoding a replicated write
// checks its events' data and metadata without decoding them into maps (plainMap): it
// did, at every entry, on every node, where a single node's write never decodes them.
func TestDecodeWriteDoesNotDecodeTheData(t *testing.T) {
	data := mustMsgpack(t, map[string]any{"order": "o-1", "amount": 120, "currency": "EUR",
		"customer": "c-12345", "items": []any{map[string]any{"sku": "a", "n": 2}, map[string]any{"sku": "b", "n": 1}}})
	meta := mustMsgpack(t, map[string]any{"by": "bench", "correlation": "c-1"})
	w, err := encodeWrite(&request{stream: "Order-1", expected: ExpectedVersion{kind: expectAny},
		changes: []change{{fresh: true, id: uuid.New(), typ: "OrderPlaced", data: data, meta: meta}}})
	if err != nil {
		t.Fatal(err)
	}
	withData := testing.AllocsPerRun(50, func() {
		if _, err := decodeWrite(w); err != nil {
			t.Fatal(err)
		}
	})
	w, err = encodeWrite(&request{stream: "Order-1", expected: ExpectedVersion{kind: expectAny},
		changes: []change{{fresh: true, id: uuid.New(), typ: "OrderPlaced"}}})
	if err != nil {
		t.Fatal(err)
	}
	without := testing.AllocsPerRun(50, func() {
		if _, err := decodeWrite(w); err != nil {
			t.Fatal(err)
		}
	})
	// The data and metadata are read into the request (two slices of the entry, as the
	// decode of the write makes them), never into maps of their keys and values.
	if withData > without+2 {
		t.Fatalf("decoding a write whose event has data and metadata took %.0f allocations, %.0f without them: it decodes them", withData, without)
	}
}

// TestDecodeWriteChecksTheData checks that a replicated write's events are refused, or
// taken, by their data and metadata as decodeMap decides, whether plainMap answers or not.
func TestDecodeWriteChecksTheData(t *testing.T) {
	good := mustMsgpack(t, map[string]any{"a": 1})
	for _, c := range []struct {
		name       string
		data, meta []byte
		refused    string // the argument named, "" for none
	}{
		{"plain", good, good, ""},
		{"no metadata", good, nil, ""},
		{"a nested int key, which decodeMap takes", mustMsgpack(t, map[string]any{"a": map[int]any{1: 2}}), nil, ""},
		{"an int key", mustMsgpack(t, map[int]any{1: 2}), nil, "changes[0].data"},
		{"a time, which decodeMap takes", mustMsgpack(t, map[string]any{"at": time.Unix(1, 0)}), nil, ""},
		{"empty data", []byte{0x80}, nil, "changes[0].data"},
		{"data not a map", mustMsgpack(t, []any{1}), nil, "changes[0].data"},
		{"metadata cut short", good, good[:len(good)-1], "changes[0].metadata"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := encodeWrite(&request{stream: "Order-1", expected: ExpectedVersion{kind: expectAny},
				changes: []change{{fresh: true, id: uuid.New(), typ: "OrderPlaced", data: c.data, meta: c.meta}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = decodeWrite(w)
			switch {
			case c.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
				t.Fatalf("got %v, want a refusal naming %s", err, c.refused)
			}
		})
	}
}
