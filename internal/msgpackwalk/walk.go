package msgpackwalk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Kind is what an Item is.
type Kind uint8

// The kinds of Item.
const (
	Nil Kind = iota
	Bool
	Int // a fixint, an int or uint of 8 to 64 bits
	Float
	String
	Binary
	Ext // an extension type, fixed or not
	Array
	Map
)

// Item is one msgpack item: for an array or a map, its header alone.
type Item struct {
	// Code is the item's first byte, its msgpack format.
	Code byte
	Kind Kind
	// Key says the item is a key of a map (as opposed to a value, or an array's item).
	Key bool
	// N is the items of an Array, the entries (pairs of key and value) of a Map.
	N int
	// Body is what follows the item's code and length: a String's or Binary's bytes, an
	// Ext's type byte and data, an Int's or Float's big-endian value (none for a fixint);
	// nil for the others.
	Body []byte
}

// Float is the value of a Float item (float 32 or float 64).
func (it Item) Float() float64 {
	if it.Code == 0xca {
		return float64(math.Float32frombits(binary.BigEndian.Uint32(it.Body)))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(it.Body))
}

// The errors of a walk, which every *Error matches (errors.Is).
var (
	ErrShort = errors.New("msgpack: cut short")
	ErrCode  = errors.New("msgpack: unknown code")
)

// Error is msgpack a Walker cannot walk: bytes that end inside an item (ErrShort), or a
// code msgpack does not use (ErrCode).
type Error struct {
	Err    error // ErrShort or ErrCode
	Offset int   // where the bytes that run past the end begin; where the unknown code is
	Want   int   // the bytes wanted at Offset (ErrShort)
	Len    int   // the length of the bytes walked
	Code   byte  // the unknown code (ErrCode)
}

func (e *Error) Error() string {
	if e.Err == ErrCode {
		return fmt.Sprintf("msgpack: unknown code %#x at offset %d", e.Code, e.Offset)
	}
	return fmt.Sprintf("msgpack: %d bytes at offset %d run past the end (%d)", e.Want, e.Offset, e.Len)
}

func (e *Error) Unwrap() error { return e.Err }

// container is one array or map being walked: the items it has still to give, a map's
// keys and values counted apart, so that its next item is a key when an even number is
// left.
type container struct {
	left  int
	isMap bool
}

// Walker walks one msgpack value (package doc). Its zero value walks nothing: use New.
type Walker struct {
	b   []byte
	i   int
	err error
	cur Item
	// inner is the innermost container open; the walk is over when it has nothing left
	// and no other is open. The others, outermost first, are the first depth of held
	// and more: those past len(held) in more.
	inner container
	depth int
	held  [16]container
	more  []container
}

// New is a Walker of the msgpack value at the start of b.
func New(b []byte) Walker {
	return Walker{b: b, inner: container{left: 1}}
}

// Offset is where the walk is in the bytes: once Next has returned false with no Err,
// the end of the value walked.
func (w *Walker) Offset() int { return w.i }

// Item is the item Next moved to, valid until the next call of Next.
func (w *Walker) Item() *Item { return &w.cur }

// Err is what made Next return false, an *Error; nil when the value was whole.
func (w *Walker) Err() error { return w.err }

// open makes c the innermost container.
func (w *Walker) open(c container) {
	if w.depth < len(w.held) {
		w.held[w.depth] = w.inner
	} else {
		w.more = append(w.more[:w.depth-len(w.held)], w.inner)
	}
	w.depth++
	w.inner = c
}

// close closes the innermost container, which has nothing left.
func (w *Walker) close() {
	w.depth--
	if w.depth < len(w.held) {
		w.inner = w.held[w.depth]
	} else {
		w.inner = w.more[w.depth-len(w.held)]
	}
}

// Next moves to the next item of the value (Item), and is false once the value is whole
// or at an error (Err), and from then on.
func (w *Walker) Next() bool {
	left := w.inner.left
	for left == 0 {
		if w.depth == 0 {
			return false
		}
		w.close()
		left = w.inner.left
	}
	w.inner.left = left - 1
	b, i := w.b, w.i
	if i >= len(b) {
		return w.short(1)
	}
	c := b[i]
	w.i = i + 1
	it := &w.cur
	it.Code, it.Key, it.N, it.Body = c, w.inner.isMap && left%2 == 0, 0, nil
	size := 0 // the bytes of its body
	switch {
	case c <= 0x7f || c >= 0xe0:
		it.Kind = Int
		return true
	case c <= 0x8f:
		it.Kind, it.N = Map, int(c&0x0f)
		w.open(container{left: 2 * it.N, isMap: true})
		return true
	case c <= 0x9f:
		it.Kind, it.N = Array, int(c&0x0f)
		w.open(container{left: it.N})
		return true
	case c <= 0xbf:
		it.Kind, size = String, int(c&0x1f)
	case c == 0xc0:
		it.Kind = Nil
		return true
	case c == 0xc2 || c == 0xc3:
		it.Kind = Bool
		return true
	case c == 0xca || c == 0xcb:
		it.Kind, size = Float, 4<<(c-0xca)
	case c >= 0xcc && c <= 0xcf: // uint 8 to 64
		it.Kind, size = Int, 1<<(c-0xcc)
	case c >= 0xd0 && c <= 0xd3: // int 8 to 64
		it.Kind, size = Int, 1<<(c-0xd0)
	case c >= 0xd4 && c <= 0xd8: // fixext 1 to 16: type and data
		it.Kind, size = Ext, 1<<(c-0xd4)+1
	default: // a length before the body, of width bytes
		var width int
		switch {
		case c >= 0xc4 && c <= 0xc6: // bin 8, 16, 32
			it.Kind, width = Binary, 1<<(c-0xc4)
		case c >= 0xc7 && c <= 0xc9: // ext 8, 16, 32: the type byte after the length
			it.Kind, width, size = Ext, 1<<(c-0xc7), 1
		case c >= 0xd9 && c <= 0xdb: // str 8, 16, 32
			it.Kind, width = String, 1<<(c-0xd9)
		case c == 0xdc || c == 0xdd: // array 16, 32
			it.Kind, width = Array, 2<<(c-0xdc)
		case c == 0xde || c == 0xdf: // map 16, 32
			it.Kind, width = Map, 2<<(c-0xde)
		default: // 0xc1
			return w.fail(&Error{Err: ErrCode, Offset: w.i - 1, Len: len(w.b), Code: c})
		}
		if len(w.b)-w.i < width {
			return w.short(width)
		}
		n := 0
		for _, x := range w.b[w.i : w.i+width] {
			n = n<<8 | int(x)
		}
		w.i += width
		switch it.Kind {
		case Array:
			it.N = n
			w.open(container{left: n})
			return true
		case Map:
			it.N = n
			w.open(container{left: 2 * n, isMap: true})
			return true
		}
		size += n
	}
	if size < 0 || len(w.b)-w.i < size {
		return w.short(size)
	}
	it.Body = w.b[w.i : w.i+size : w.i+size]
	w.i += size
	return true
}

// short ends the walk at want bytes that run past the end.
func (w *Walker) short(want int) bool {
	return w.fail(&Error{Err: ErrShort, Offset: w.i, Want: want, Len: len(w.b)})
}

// fail ends the walk at err: Next is false from now on.
func (w *Walker) fail(err error) bool {
	w.err = err
	w.inner, w.depth = container{}, 0
	return false
}
