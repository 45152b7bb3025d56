package msgpackwalk

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// walk is the items of b's first value, and where it ends, or the walk's error.
func walk(b []byte) ([]Item, int, error) {
	w := New(b)
	var items []Item
	for w.Next() {
		items = append(items, *w.Item())
	}
	if err := w.Err(); err != nil {
		if w.Next() || w.Err() != err {
			return nil, 0, errors.New("Next after an error did not stop at it again")
		}
		return nil, 0, err
	}
	return items, w.Offset(), nil
}

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWalk checks the items of each format, their keys, nesting, bodies and end.
func TestWalk(t *testing.T) {
	s300 := strings.Repeat("s", 300)
	for _, c := range []struct {
		name  string
		b     []byte
		items []Item
		end   int
	}{
		{"fixint", []byte{0x07, 0xff}, []Item{{Code: 0x07, Kind: Int}}, 1},
		{"negative fixint", []byte{0xe0}, []Item{{Code: 0xe0, Kind: Int}}, 1},
		{"nil", []byte{0xc0}, []Item{{Code: 0xc0, Kind: Nil}}, 1},
		{"true", []byte{0xc3}, []Item{{Code: 0xc3, Kind: Bool}}, 1},
		{"uint 16", []byte{0xcd, 1, 2}, []Item{{Code: 0xcd, Kind: Int, Body: []byte{1, 2}}}, 3},
		{"int 64", mustMsgpack(t, int64(-1)<<40), []Item{{Code: 0xd3, Kind: Int, Body: mustMsgpack(t, int64(-1)<<40)[1:]}}, 9},
		{"float 32", mustMsgpack(t, float32(1.5)), []Item{{Code: 0xca, Kind: Float, Body: mustMsgpack(t, float32(1.5))[1:]}}, 5},
		{"fixstr", []byte{0xa2, 'h', 'i'}, []Item{{Code: 0xa2, Kind: String, Body: []byte("hi")}}, 3},
		{"empty fixstr", []byte{0xa0}, []Item{{Code: 0xa0, Kind: String, Body: []byte{}}}, 1},
		{"str 16", mustMsgpack(t, s300), []Item{{Code: 0xda, Kind: String, Body: []byte(s300)}}, 303},
		{"bin 8", []byte{0xc4, 2, 9, 9}, []Item{{Code: 0xc4, Kind: Binary, Body: []byte{9, 9}}}, 4},
		{"fixext 4", []byte{0xd6, 0xff, 1, 2, 3, 4}, []Item{{Code: 0xd6, Kind: Ext, Body: []byte{0xff, 1, 2, 3, 4}}}, 6},
		{"ext 8", []byte{0xc7, 2, 5, 1, 2}, []Item{{Code: 0xc7, Kind: Ext, Body: []byte{5, 1, 2}}}, 5},
		{"empty array", []byte{0x90}, []Item{{Code: 0x90, Kind: Array}}, 1},
		{"map of a key and an array", []byte{0x81, 0xa1, 'k', 0x92, 0x01, 0xc0, 0x02}, []Item{
			{Code: 0x81, Kind: Map, N: 1},
			{Code: 0xa1, Kind: String, Key: true, Body: []byte("k")},
			{Code: 0x92, Kind: Array, N: 2},
			{Code: 0x01, Kind: Int},
			{Code: 0xc0, Kind: Nil},
		}, 6},
		{"map 16 of a map key", []byte{0xde, 0, 1, 0x81, 0x01, 0x02, 0x03}, []Item{
			{Code: 0xde, Kind: Map, N: 1},
			{Code: 0x81, Kind: Map, N: 1, Key: true},
			{Code: 0x01, Kind: Int, Key: true},
			{Code: 0x02, Kind: Int},
			{Code: 0x03, Kind: Int},
		}, 7},
		{"array 32", []byte{0xdd, 0, 0, 0, 1, 0xc2}, []Item{{Code: 0xdd, Kind: Array, N: 1}, {Code: 0xc2, Kind: Bool}}, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			items, end, err := walk(c.b)
			if err != nil {
				t.Fatalf("walk(% x): %v", c.b, err)
			}
			if !reflect.DeepEqual(items, c.items) || end != c.end {
				t.Fatalf("walk(% x) = %+v, ending at %d; want %+v, ending at %d", c.b, items, end, c.items, c.end)
			}
		})
	}
}

// TestWalkErrors checks that bytes cut short and the unused code are refused, naming where.
func TestWalkErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		is   error
		msg  string
	}{
		{"nothing", nil, ErrShort, "msgpack: 1 bytes at offset 0 run past the end (0)"},
		{"an array missing its item", []byte{0x91}, ErrShort, "msgpack: 1 bytes at offset 1 run past the end (1)"},
		{"a str 8 longer than what follows", []byte{0xd9, 5, 'a'}, ErrShort, "msgpack: 5 bytes at offset 2 run past the end (3)"},
		{"an array 32 header cut short", []byte{0xdd, 0xff, 0xff}, ErrShort, "msgpack: 4 bytes at offset 1 run past the end (3)"},
		{"a header of 2^32-1 entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k', 1}, ErrShort, "msgpack: 1 bytes at offset 8 run past the end (8)"},
		{"float 64 cut short", []byte{0xcb, 1, 2}, ErrShort, "msgpack: 8 bytes at offset 1 run past the end (3)"},
		{"fixext 16 cut short", []byte{0xd8, 1}, ErrShort, "msgpack: 17 bytes at offset 1 run past the end (2)"},
		{"code 0xc1", []byte{0x81, 0xa1, 'k', 0xc1}, ErrCode, "msgpack: unknown code 0xc1 at offset 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := walk(c.b)
			var e *Error
			if !errors.Is(err, c.is) || !errors.As(err, &e) || err.Error() != c.msg {
				t.Fatalf("walk(% x): %v, want an *Error matching %v: %s", c.b, err, c.is, c.msg)
			}
		})
	}
}

// TestWalkDeep checks a value nested past the containers a Walker holds without
// allocating, and that they are given back: the items after the deepest are still
// counted to their containers.
func TestWalkDeep(t *testing.T) {
	const depth = 70
	// Arrays of two, each holding the next first: the innermost holds two ints, and
	// each other an int after the array it holds.
	b := append(bytes.Repeat([]byte{0x92}, depth), 0x01, 0x01)
	b = append(b, bytes.Repeat([]byte{0x03}, depth-1)...)
	b = append(b, 0xff) // what follows the value
	items, end, err := walk(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2*depth+1 || end != len(b)-1 {
		t.Fatalf("walked %d items to %d, want %d to %d", len(items), end, 2*depth+1, len(b)-1)
	}
	if _, _, err := walk(b[:len(b)-2]); !errors.Is(err, ErrShort) {
		t.Fatalf("walk of the value without its last item: %v, want ErrShort", err)
	}
}

// TestWalkFloat checks Item.Float of both widths.
func TestWalkFloat(t *testing.T) {
	for _, f := range []any{float32(-2.5), 1e300, 0.1} {
		items, _, err := walk(mustMsgpack(t, f))
		if err != nil {
			t.Fatal(err)
		}
		want := reflect.ValueOf(f).Convert(reflect.TypeFor[float64]()).Float()
		if got := items[0].Float(); got != want {
			t.Errorf("Float of %v = %v", f, got)
		}
	}
}

// TestWalkAllocates checks that a walk of a shallow value allocates nothing, however
// many entries its headers say.
func TestWalkAllocates(t *testing.T) {
	b := mustMsgpack(t, map[string]any{"a": []any{1, "x", map[string]any{"b": 2.5}}, "t": time.Unix(1, 0)})
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := walkCount(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("a walk allocated %v times", n)
	}
}

// walkCount walks b, counting its items.
func walkCount(b []byte) (int, int, error) {
	w := New(b)
	n := 0
	for w.Next() {
		n++
	}
	return n, w.Offset(), w.Err()
}

// FuzzWalk checks the walk against msgpack's own framing (Decoder.Skip): a value it
// walks is one msgpack skips, to the same end, and every item's body lies in the bytes.
func FuzzWalk(f *testing.F) {
	for _, v := range []any{
		map[string]any{"a": []any{1, "x", nil, true, 2.5, float32(1), []byte{1}, map[int]any{1: 2}}},
		time.Unix(1, 0), uint64(1) << 63, strings.Repeat("s", 300), []any{},
	} {
		f.Add(mustMsgpack(f, v))
	}
	f.Add([]byte{0xc7, 2, 5, 1, 2})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k', 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, end, err := walk(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrShort) && !errors.Is(err, ErrCode) {
				t.Fatalf("walk(% x): %v, not an *Error", b, err)
			}
			return
		}
		if end > len(b) {
			t.Fatalf("walk(% x) ends at %d, past the end", b, end)
		}
		for _, it := range items {
			if len(it.Body) > 0 && !inside(b, it.Body) {
				t.Fatalf("walk(% x): an item's body is not in the bytes", b)
			}
		}
		r := bytes.NewReader(b)
		if err := msgpack.NewDecoder(r).Skip(); err != nil {
			t.Fatalf("walk(% x) took the value to %d, msgpack's Skip refused it: %v", b, end, err)
		}
		if skipped := len(b) - r.Len(); skipped != end {
			t.Fatalf("walk(% x) ends at %d, msgpack's Skip at %d", b, end, skipped)
		}
	})
}

// inside reports whether p lies in b.
func inside(b, p []byte) bool {
	for i := range b {
		if &b[i] == &p[0] {
			return len(b)-i >= len(p)
		}
	}
	return false
}
