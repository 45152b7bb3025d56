package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/pmd-dev/pmd/internal/jsonfloat"
)

// The answers that carry events' or commands' data (pages of events, an event by id, a
// process, parked commands) are encoded in two passes over their values: the first
// counts the bytes of their JSON, allocating nothing of that size; those bytes are
// reserved of the memory budget; the second writes the JSON into a buffer of exactly
// that size. encoding/json would hold the whole answer in buffers of its own before any
// of it could be counted, and keep them in its pool after: up to three times the JSON's
// bytes, and the JSON of stored data can be six times its size (each < is written
// \u003c, as encoding/json writes it and as this encoder does too).
//
// The JSON is byte for byte what encoding/json writes of the same value
// (TestHeldJSONAsEncodingJSON), but for ParkedCommand and Command, written as their
// MarshalJSON writes them. Values of a type with a MarshalJSON method of its own (time.Time)
// are written by that method: small values, not data.

// heldOut is where a pass writes: it counts the bytes, and appends them to b unless
// counting. It never appends beyond b's capacity, whose bytes were reserved: what would
// not fit is left out and over set (a value that wrote more than it was counted).
type heldOut struct {
	b        []byte
	n        int
	counting bool
	over     bool
}

// fits counts n bytes, and says whether to append them to b: not when counting, nor
// when they would take b beyond its capacity.
func (o *heldOut) fits(n int) bool {
	o.n += n
	if o.counting || o.over {
		return false
	}
	if n > cap(o.b)-len(o.b) {
		o.over = true
		return false
	}
	return true
}

func (o *heldOut) str(s string) {
	if o.fits(len(s)) {
		o.b = append(o.b, s...)
	}
}

func (o *heldOut) raw(p []byte) {
	if o.fits(len(p)) {
		o.b = append(o.b, p...)
	}
}

func (o *heldOut) byte(c byte) {
	if o.fits(1) {
		o.b = append(o.b, c)
	}
}

// heldSize is the number of bytes of v's JSON.
func heldSize(v any) (int, error) {
	o := heldOut{counting: true}
	err := o.value(v)
	return o.n, err
}

// appendHeld appends v's JSON to dst, which must have room for it (heldSize): it never
// grows dst beyond its capacity, whose bytes ctx's request must have reserved.
func (s *Server) appendHeld(ctx context.Context, dst []byte, v any) ([]byte, error) {
	o := heldOut{b: dst}
	if err := o.value(v); err != nil {
		return dst, err
	}
	if o.over {
		return dst, fmt.Errorf("server: the JSON of a %T took %d bytes, %d more than were counted", v, o.n, o.n-(cap(dst)-len(dst)))
	}
	if hook := s.hooks.heldEncoded; hook != nil {
		var held int64
		if res := reservationOf(ctx); res != nil {
			held = res.s.memory.heldBy(res)
		}
		hook(held, cap(o.b))
	}
	return o.b, nil
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	parkedCommandType = reflect.TypeFor[ParkedCommand]()
	commandType       = reflect.TypeFor[Command]()
)

// value writes v, with fast cases for the values event data holds.
func (o *heldOut) value(v any) error {
	switch x := v.(type) {
	case nil:
		o.str("null")
	case string:
		o.string(x)
	case bool:
		o.bool(x)
	case int64:
		o.int(x)
	case int:
		o.int(int64(x))
	case uint64:
		o.uint(x)
	case float64:
		return o.float(x, 64)
	case jsonfloat.Whole:
		o.whole(x)
	case map[string]any:
		if x == nil {
			o.str("null")
			return nil
		}
		o.byte('{')
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				o.byte(',')
			}
			o.string(k)
			o.byte(':')
			if err := o.value(x[k]); err != nil {
				return err
			}
		}
		o.byte('}')
	case []any:
		if x == nil {
			o.str("null")
			return nil
		}
		o.byte('[')
		for i, e := range x {
			if i > 0 {
				o.byte(',')
			}
			if err := o.value(e); err != nil {
				return err
			}
		}
		o.byte(']')
	case eventJSON:
		return o.event(&x)
	case ParkedCommand:
		type plain ParkedCommand
		x.Data = jsonfloat.MarkMap(x.Data)
		return o.reflect(reflect.ValueOf(plain(x)))
	case Command:
		type plain Command
		x.Data = jsonfloat.MarkMap(x.Data)
		return o.reflect(reflect.ValueOf(plain(x)))
	default:
		return o.reflect(reflect.ValueOf(v))
	}
	return nil
}

// event writes e without reflection, as encoding/json writes it by its fields' tags
// (TestHeldJSONAsEncodingJSON): pages hold many.
func (o *heldOut) event(e *eventJSON) error {
	o.str(`{"id":`)
	o.string(e.ID)
	o.str(`,"type":`)
	o.string(e.Type)
	o.str(`,"data":`)
	if err := o.value(e.Data); err != nil {
		return err
	}
	o.str(`,"metadata":`)
	if err := o.value(e.Metadata); err != nil {
		return err
	}
	o.str(`,"timestamp":`)
	o.string(e.Timestamp)
	o.str(`,"position":`)
	o.uint(e.Position)
	o.str(`,"stream":`)
	o.string(e.Stream)
	if e.Version != nil {
		o.str(`,"version":`)
		o.uint(*e.Version)
	}
	o.str(`,"link":`)
	o.bool(e.Link)
	if e.Erased {
		o.str(`,"erased":true`)
	}
	o.byte('}')
	return nil
}

func (o *heldOut) bool(b bool) {
	if b {
		o.str("true")
	} else {
		o.str("false")
	}
}

func (o *heldOut) int(i int64) {
	var a [20]byte
	o.raw(strconv.AppendInt(a[:0], i, 10))
}

func (o *heldOut) uint(u uint64) {
	var a [20]byte
	o.raw(strconv.AppendUint(a[:0], u, 10))
}

func (o *heldOut) whole(f jsonfloat.Whole) {
	var a [32]byte
	o.raw(append(strconv.AppendFloat(a[:0], float64(f), 'f', -1, 64), ".0"...))
}

// float writes f as encoding/json does: as ES6 writes a number.
func (o *heldOut) float(f float64, bits int) error {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("server: encode response: json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, bits))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	var a [32]byte
	b := strconv.AppendFloat(a[:0], f, format, -1, bits)
	if format == 'e' {
		// e-09 is written e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	o.raw(b)
	return nil
}

// string writes s quoted as encoding/json does, HTML's <, > and & escaped.
func (o *heldOut) string(s string) {
	const hex = "0123456789abcdef"
	o.byte('"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			o.str(s[start:i])
			switch c {
			case '\\', '"':
				o.byte('\\')
				o.byte(c)
			case '\b':
				o.str(`\b`)
			case '\f':
				o.str(`\f`)
			case '\n':
				o.str(`\n`)
			case '\r':
				o.str(`\r`)
			case '\t':
				o.str(`\t`)
			default:
				o.str(`\u00`)
				o.byte(hex[c>>4])
				o.byte(hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			o.str(s[start:i])
			o.str(`\ufffd`)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			o.str(s[start:i])
			o.str(`\u202`)
			o.byte(hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	o.str(s[start:])
	o.byte('"')
}

// reflect writes the values of other types as encoding/json does.
func (o *heldOut) reflect(v reflect.Value) error {
	if !v.IsValid() {
		o.str("null")
		return nil
	}
	t := v.Type()
	if t == parkedCommandType || t == commandType {
		// Not their MarshalJSON, which writes their data with encoding/json.
		return o.value(v.Interface())
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		// A method of *T is called for a T that is addressable (reached through a
		// pointer, an element of a slice), as encoding/json calls it.
		addr := v.CanAddr()
		switch {
		case addr && reflect.PointerTo(t).Implements(jsonMarshalerType):
			return o.marshaler(v.Addr())
		case t.Implements(jsonMarshalerType):
			return o.marshaler(v)
		case addr && reflect.PointerTo(t).Implements(textMarshalerType):
			return o.text(v.Addr())
		case t.Implements(textMarshalerType):
			return o.text(v)
		}
	}
	switch v.Kind() {
	case reflect.Bool:
		o.bool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		o.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		o.uint(v.Uint())
	case reflect.Float32:
		return o.float(v.Float(), 32)
	case reflect.Float64:
		return o.float(v.Float(), 64)
	case reflect.String:
		if t == reflect.TypeFor[json.Number]() {
			return o.other(v)
		}
		o.string(v.String())
	case reflect.Interface:
		if v.IsNil() {
			o.str("null")
			return nil
		}
		return o.value(v.Elem().Interface())
	case reflect.Pointer:
		if v.IsNil() {
			o.str("null")
			return nil
		}
		if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
			return o.other(v)
		}
		if e, ok := v.Interface().(*eventJSON); ok {
			return o.event(e)
		}
		// What a pointer points at is addressable: its methods of *T are called.
		return o.reflect(v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			o.str("null")
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(jsonMarshalerType) &&
			!reflect.PointerTo(t.Elem()).Implements(textMarshalerType) {
			o.byte('"')
			b := v.Bytes()
			if o.fits(base64.StdEncoding.EncodedLen(len(b))) {
				o.b = base64.StdEncoding.AppendEncode(o.b, b)
			}
			o.byte('"')
			return nil
		}
		return o.list(v)
	case reflect.Array:
		return o.list(v)
	case reflect.Map:
		if t.Key().Kind() != reflect.String || t.Key().Implements(textMarshalerType) {
			return o.other(v)
		}
		if v.IsNil() {
			o.str("null")
			return nil
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		o.byte('{')
		for i, k := range keys {
			if i > 0 {
				o.byte(',')
			}
			o.string(k.String())
			o.byte(':')
			if err := o.reflect(v.MapIndex(k)); err != nil {
				return err
			}
		}
		o.byte('}')
	case reflect.Struct:
		fields, ok := fieldsOf(t)
		if !ok {
			return o.other(v)
		}
		o.byte('{')
		first := true
		for _, f := range fields {
			fv, ok := fieldByIndex(v, f.index)
			if !ok || f.omitEmpty && emptyValue(fv) {
				continue
			}
			if !first {
				o.byte(',')
			}
			first = false
			o.string(f.name)
			o.byte(':')
			if err := o.reflect(fv); err != nil {
				return err
			}
		}
		o.byte('}')
	default:
		return o.other(v)
	}
	return nil
}

func (o *heldOut) list(v reflect.Value) error {
	o.byte('[')
	for i := range v.Len() {
		if i > 0 {
			o.byte(',')
		}
		if err := o.reflect(v.Index(i)); err != nil {
			return err
		}
	}
	o.byte(']')
	return nil
}

// marshaler writes what v's MarshalJSON writes, compact and HTML-escaped, as
// encoding/json does.
func (o *heldOut) marshaler(v reflect.Value) error {
	if t := v.Type(); t == reflect.TypeFor[json.RawMessage]() && v.IsNil() {
		o.str("null")
		return nil
	}
	b, err := v.Interface().(json.Marshaler).MarshalJSON()
	if err != nil {
		return fmt.Errorf("server: encode response: %s: %w", v.Type(), err)
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return fmt.Errorf("server: encode response: %s wrote invalid JSON: %w", v.Type(), err)
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	o.raw(escaped.Bytes())
	return nil
}

// text writes what v's MarshalText writes, as a JSON string.
func (o *heldOut) text(v reflect.Value) error {
	text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
	if err != nil {
		return fmt.Errorf("server: encode response: %s: %w", v.Type(), err)
	}
	o.string(string(text))
	return nil
}

// other writes what encoding/json writes of a value this encoder does not take apart
// (a map with keys of another type, a pointer to a marshaler): none of those the API
// writes holds data.
func (o *heldOut) other(v reflect.Value) error {
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Errorf("server: encode response: %w", err)
	}
	o.raw(b)
	return nil
}

func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// fieldByIndex is v's field at index, false when an embedded pointer on the way is nil.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

type heldField struct {
	name      string
	index     []int
	omitEmpty bool
	tagged    bool
}

// heldFields caches fieldsOf.
var heldFields sync.Map // reflect.Type → []heldField, or nil for a struct left to encoding/json

// fieldsOf lists the fields of struct type t that encoding/json writes, in its order:
// embedded structs' fields promoted, a name given twice at one depth left out. ok is
// false for a struct with a field tagged ",string", left to encoding/json.
func fieldsOf(t reflect.Type) ([]heldField, bool) {
	if c, ok := heldFields.Load(t); ok {
		fields, _ := c.([]heldField)
		return fields, fields != nil
	}
	type found struct {
		heldField
		depth int
	}
	var all []found
	simple := true
	var walk func(t reflect.Type, index []int, depth int, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, index []int, depth int, seen map[reflect.Type]bool) {
		if seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			sf := t.Field(i)
			ft := sf.Type
			if sf.Anonymous && ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if !sf.IsExported() && (!sf.Anonymous || ft.Kind() != reflect.Struct) {
				continue
			}
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			at := append(slices.Clone(index), i)
			if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
				walk(ft, at, depth+1, seen)
				continue
			}
			omit := false
			for opt := range strings.SplitSeq(opts, ",") {
				switch opt {
				case "omitempty":
					omit = true
				case "string", "omitzero":
					simple = false
				}
			}
			tagged := name != ""
			if !tagged {
				name = sf.Name
			}
			all = append(all, found{heldField{name, at, omit, tagged}, depth})
		}
		delete(seen, t)
	}
	walk(t, nil, 0, map[reflect.Type]bool{})
	var fields []heldField
	if simple {
		fields = []heldField{}
		for _, f := range all {
			// The field of a name that encoding/json keeps: the shallowest, the tagged
			// one of those, none when that leaves more than one.
			var rivals []found
			for _, g := range all {
				if g.name == f.name && g.depth <= f.depth {
					rivals = append(rivals, g)
				}
			}
			minDepth := slices.MinFunc(rivals, func(a, b found) int { return cmp.Compare(a.depth, b.depth) }).depth
			var top []found
			for _, g := range rivals {
				if g.depth == minDepth {
					top = append(top, g)
				}
			}
			if len(top) > 1 {
				var tagged []found
				for _, g := range top {
					if g.tagged {
						tagged = append(tagged, g)
					}
				}
				top = tagged
			}
			if len(top) == 1 && slices.Equal(top[0].index, f.index) {
				fields = append(fields, f.heldField)
			}
		}
	}
	heldFields.Store(t, fields)
	return fields, fields != nil
}
