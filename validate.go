package pmd

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/vmihailenco/msgpack/v5"
)

const maxNameLen = 256

// CheckName reports whether name is a valid stream name or event type: 1–256 bytes of
// UTF-8 without control characters. The error says what is wrong, for a caller to put
// after the name of the field it checked.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case len(name) > maxNameLen:
		return fmt.Errorf("is %d bytes long, the limit is %d", len(name), maxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%q contains the control character %U", name, r)
		}
	}
	return nil
}

// checkName is CheckName as an *InvalidArgumentError naming arg.
func checkName(arg, name string) error {
	if err := CheckName(name); err != nil {
		return &InvalidArgumentError{Arg: arg, Reason: err.Error()}
	}
	return nil
}

// CheckCategory reports whether category can be read or followed: a name (CheckName)
// without a $, as a category is the part of a stream name before its first $; a stream's
// name given by mistake would read nothing. The error says what is wrong, as CheckName's.
func CheckCategory(category string) error {
	if err := CheckName(category); err != nil {
		return err
	}
	if before, _, ok := strings.Cut(category, "$"); ok {
		return fmt.Errorf("%q holds a $: a category is the part of a stream name before its first $ (here %q)", category, before)
	}
	return nil
}

// CheckWritable reports whether a user may append, link or delete in stream: a name
// (CheckName) not starting with $, which is reserved for the store's own streams, and
// not "." or "..", which no URL can name: HTTP clients and browsers take them for the
// path's own dot segments, so such a stream could be written but never read over HTTP.
func CheckWritable(stream string) error {
	if err := CheckName(stream); err != nil {
		return err
	}
	switch {
	case stream[0] == '$':
		return fmt.Errorf("%q starts with $, which is reserved for the store's own streams", stream)
	case stream == "." || stream == "..":
		return fmt.Errorf("%q cannot be a stream's name: a URL cannot name it, so it could not be read over HTTP", stream)
	}
	return nil
}

// checkCategory is CheckCategory as an *InvalidArgumentError naming arg.
func checkCategory(arg, category string) error {
	if err := CheckCategory(category); err != nil {
		return &InvalidArgumentError{Arg: arg, Reason: err.Error()}
	}
	return nil
}

// checkWritable is CheckWritable as an *InvalidArgumentError naming the stream.
func checkWritable(stream string) error {
	if err := CheckWritable(stream); err != nil {
		return &InvalidArgumentError{Arg: "stream", Reason: err.Error()}
	}
	return nil
}

// change is a Change validated and encoded, ready for the committer.
type change struct {
	link bool
	// fresh marks an id the store made (a UUIDv7 with 62 random bits): no stored event
	// can have it, so the committer does not look it up.
	fresh bool
	id    uuid.UUID
	typ   string
	data  []byte // msgpack map, nil for none
	meta  []byte
}

// Change is one entry of a Write: a new event (NewEvent) or a link to a stored one (LinkTo).
type Change struct {
	event  EventData
	linkID uuid.UUID
	isLink bool
}

// NewEvent is a Change that appends e.
func NewEvent(e EventData) Change { return Change{event: e} }

// LinkTo is a Change that links the stored event with the given id.
func LinkTo(id uuid.UUID) Change { return Change{linkID: id, isLink: true} }

// prepare validates and encodes changes in the caller's goroutine, so that the
// committer only assigns positions and writes.
func prepare(changes []Change, what string) ([]change, error) {
	if len(changes) == 0 {
		return nil, invalid(what, "must hold at least one entry")
	}
	out := make([]change, len(changes))
	seen := make(map[uuid.UUID]struct{}, len(changes))
	for i, c := range changes {
		arg := func(field string) string { return fmtArg(what, i, field) }
		if c.isLink {
			if c.linkID == uuid.Nil {
				return nil, invalid(arg("id"), "must not be the nil UUID")
			}
			if _, dup := seen[c.linkID]; dup {
				return nil, invalid(arg("id"), "%s is given twice", c.linkID)
			}
			seen[c.linkID] = struct{}{}
			out[i] = change{link: true, id: c.linkID}
			continue
		}
		e := c.event
		if err := checkName(arg("type"), e.Type); err != nil {
			return nil, err
		}
		id, fresh := e.ID, e.ID == uuid.Nil
		if fresh {
			var err error
			if id, err = uuid.NewV7(); err != nil {
				return nil, err
			}
		}
		if _, dup := seen[id]; dup {
			return nil, invalid(arg("id"), "%s is given twice", id)
		}
		seen[id] = struct{}{}
		if path, ok := HoldsItself(e.Data); ok {
			return nil, invalid(arg("data")+path, "holds itself: data that refers back to a value holding it cannot be written")
		}
		if path, ok := HoldsItself(e.Metadata); ok {
			return nil, invalid(arg("metadata")+path, "holds itself: metadata that refers back to a value holding it cannot be written")
		}
		if path, v, ok := NonFinite(e.Data); ok {
			return nil, invalid(arg("data")+path, "%v is not a JSON number", v)
		}
		if path, v, ok := NonFinite(e.Metadata); ok {
			return nil, invalid(arg("metadata")+path, "%v is not a JSON number", v)
		}
		if path, k, ok := NonStringKey(e.Data); ok {
			return nil, invalid(arg("data")+path, "the key %v is not a string: data is a JSON object, whose keys are strings", k)
		}
		if path, k, ok := NonStringKey(e.Metadata); ok {
			return nil, invalid(arg("metadata")+path, "the key %v is not a string: metadata is a JSON object, whose keys are strings", k)
		}
		data, err := encodeMap(e.Data)
		if err != nil {
			return nil, invalid(arg("data"), "%v", err)
		}
		meta, err := encodeMap(e.Metadata)
		if err != nil {
			return nil, invalid(arg("metadata"), "%v", err)
		}
		out[i] = change{id: id, fresh: fresh, typ: e.Type, data: data, meta: meta}
	}
	return out, nil
}

// NonFinite finds a NaN or an infinity in v, at any depth, and returns where it is
// (".ratio", ".items[2]", "" for v itself) and what it is. JSON has no such number, so an
// event holding one could not be served over HTTP (every page of $all holding it would
// fail) nor delivered to a webhook: Append refuses data and metadata for which NonFinite
// finds one, naming the path, and config checks a command's data with it before issuing.
//
// It looks where msgpack encodes: into maps, slices, arrays, pointers, interfaces and
// struct fields; a field is named by its msgpack tag when it has one, a field tagged
// msgpack:"-" is skipped, and an embedded struct's fields are named as its own.
// The types JSON decodes into, and the common scalars, are checked without reflection:
// Append calls NonFinite on every event.
func NonFinite(v any) (path string, f float64, found bool) {
	switch v := v.(type) {
	case nil, string, bool, []byte, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, time.Time, []string, map[string]string:
		return "", 0, false
	case float64:
		return nonFiniteFloat(v)
	case float32:
		return nonFiniteFloat(float64(v))
	case map[string]any:
		for k, e := range v {
			if path, f, ok := NonFinite(e); ok {
				return "." + k + path, f, true
			}
		}
		return "", 0, false
	case []any:
		for i, e := range v {
			if path, f, ok := NonFinite(e); ok {
				return "[" + strconv.Itoa(i) + "]" + path, f, true
			}
		}
		return "", 0, false
	}
	return nonFiniteIn(reflect.ValueOf(v))
}

// HoldsItself reports whether v refers back to a map, slice or pointer that holds it,
// and the path to the first such reference. Such a value cannot be written (msgpack and
// JSON would never end), and the walks of NonFinite and NonStringKey, which assume it
// does not, would run until the stack overflowed, ending the program: Append refuses it
// first (and the Go client, and a process manager's command). A value held twice, but
// not by itself, is not refused. It looks where NonFinite does; the types JSON decodes
// into are walked without reflection.
func HoldsItself(v any) (path string, found bool) {
	var held [16]holder // the path of most data, without allocating
	return holdsItselfAny(v, held[:0])
}

// holder is a map, slice or pointer on the path to a value: its address and its type
// (a struct and its first field, or a slice and its first element, share an address).
type holder struct {
	p uintptr
	n int // a slice's length: a shorter slice of its own front is not the slice itself
	t reflect.Type
}

var (
	mapAnyType   = reflect.TypeFor[map[string]any]()
	sliceAnyType = reflect.TypeFor[[]any]()
)

// enter returns onPath with h on it, or false if h is on it already: a value refers
// back to a holder of its own.
func enter(onPath []holder, h holder) ([]holder, bool) {
	for _, o := range onPath {
		if o == h {
			return onPath, false
		}
	}
	return append(onPath, h), true
}

// holdsItselfAny is holdsItself without reflection for the types JSON decodes into.
func holdsItselfAny(v any, onPath []holder) (string, bool) {
	switch v := v.(type) {
	case nil, string, bool, []byte, int, int64, float64, time.Time, []string, map[string]string:
		return "", false
	case map[string]any:
		if v == nil {
			return "", false
		}
		onPath, ok := enter(onPath, holder{uintptr(reflect.ValueOf(v).UnsafePointer()), 0, mapAnyType})
		if !ok {
			return "", true
		}
		for k, e := range v {
			if path, ok := holdsItselfAny(e, onPath); ok {
				return "." + k + path, true
			}
		}
		return "", false
	case []any:
		if len(v) == 0 {
			return "", false
		}
		onPath, ok := enter(onPath, holder{uintptr(unsafe.Pointer(unsafe.SliceData(v))), len(v), sliceAnyType})
		if !ok {
			return "", true
		}
		for i, e := range v {
			if path, ok := holdsItselfAny(e, onPath); ok {
				return "[" + strconv.Itoa(i) + "]" + path, true
			}
		}
		return "", false
	}
	return holdsItself(reflect.ValueOf(v), onPath)
}

// holdsItself is HoldsItself by reflection, v held by the holders of onPath.
func holdsItself(v reflect.Value, onPath []holder) (string, bool) {
	return findIn(v, func(reflect.Value) bool { return false }, onPath, true)
}

func nonFiniteFloat(f float64) (string, float64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", f, true
	}
	return "", 0, false
}

// nonFiniteIn is NonFinite by reflection, for the types its switch does not name.
func nonFiniteIn(v reflect.Value) (string, float64, bool) {
	var f float64
	path, found := findIn(v, func(v reflect.Value) bool {
		switch v.Kind() {
		case reflect.Float32, reflect.Float64:
			_, f, _ = nonFiniteFloat(v.Float())
			return math.IsNaN(f) || math.IsInf(f, 0)
		}
		return false
	}, nil, false)
	return path, f, found
}

// findIn walks v where msgpack encodes it: into maps, slices and arrays (not bytes),
// pointers, interfaces and struct fields, a field named as msgpack names it
// (fieldPath). It returns the path to the first value for which at holds, at being
// asked of every value before the walk goes into it. v is held by the maps, slices and
// pointers of onPath; one that holds itself is not walked into again (the walk would
// never end): found, if selfHeld, else passed over.
func findIn(v reflect.Value, at func(reflect.Value) bool, onPath []holder, selfHeld bool) (string, bool) {
	if at(v) {
		return "", true
	}
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			return findIn(v.Elem(), at, onPath, selfHeld)
		}
		return "", false
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if v.IsNil() || v.Kind() == reflect.Slice && (v.Len() == 0 || v.Type().Elem().Kind() == reflect.Uint8) {
			return "", false
		}
		var ok bool
		h := holder{uintptr(v.UnsafePointer()), 0, v.Type()}
		if v.Kind() == reflect.Slice {
			h.n = v.Len()
		}
		if onPath, ok = enter(onPath, h); !ok {
			return "", selfHeld
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		return findIn(v.Elem(), at, onPath, selfHeld)
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if path, ok := findIn(it.Value(), at, onPath, selfHeld); ok {
				// fmt prints the key also when it came through an unexported embedded
				// struct, where Interface would panic.
				return "." + fmt.Sprint(it.Key()) + path, true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false // bytes
		}
		for i := range v.Len() {
			if path, ok := findIn(v.Index(i), at, onPath, selfHeld); ok {
				return "[" + strconv.Itoa(i) + "]" + path, true
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			name, encoded := fieldPath(t.Field(i))
			if !encoded {
				continue
			}
			if path, ok := findIn(v.Field(i), at, onPath, selfHeld); ok {
				return name + path, true
			}
		}
	}
	return "", false
}

// writtenAsString reports whether msgpack writes the map key k as a string a read takes
// as the key JSON names it by: a type with a MarshalText method, whose text msgpack writes.
// It picks a key's encoding as msgpack does, first its own encoder, then MarshalBinary,
// then MarshalText: a key with MarshalBinary (uuid.UUID, despite its MarshalText) is
// written as those bytes and would read back as them, not as its text.
func writtenAsString(k reflect.Value) bool {
	t := k.Type()
	switch {
	case t.Implements(msgpackEncoderType), t.Implements(msgpackMarshalerType):
		if !k.CanInterface() {
			return false
		}
		b, err := msgpack.Marshal(k.Interface())
		if err != nil || len(b) == 0 {
			return false
		}
		switch c := b[0]; {
		case c >= 0xa0 && c <= 0xbf, c >= 0xd9 && c <= 0xdb: // fixstr, str 8/16/32
			return true
		case c >= 0xc4 && c <= 0xc6: // bin 8/16/32, which a read takes as a string key
			return true
		}
		return false
	case t.Implements(binaryMarshalerType):
		return false
	}
	return t.Implements(textMarshalerType)
}

var (
	msgpackEncoderType   = reflect.TypeFor[msgpack.CustomEncoder]()
	msgpackMarshalerType = reflect.TypeFor[msgpack.Marshaler]()
	binaryMarshalerType  = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalerType    = reflect.TypeFor[encoding.TextMarshaler]()
)

// fieldPath is where msgpack writes field in its struct's map: "." and its name (its
// msgpack tag's, else its own), or "" for an embedded struct, whose fields msgpack
// writes as its own; encoded is false for a field it skips (tagged "-", unexported).
func fieldPath(field reflect.StructField) (path string, encoded bool) {
	name, opts, _ := strings.Cut(field.Tag.Get("msgpack"), ",")
	switch {
	case name == "-" || !field.IsExported() && !field.Anonymous:
		return "", false
	case field.Anonymous && name == "" && !strings.Contains(opts, "noinline") && isStruct(field.Type):
		return "", true
	case name == "":
		return "." + field.Name, true
	}
	return "." + name, true
}

// NonStringKey finds a map in v, at any depth, with a key that is not a string, and
// returns where the map is and the key. Data and metadata are JSON objects, read back as
// maps of string keys: msgpack would write such a map, but every read of the event
// would fail on it, so Append refuses it (and the Go client, before sending). A key of
// another type that msgpack writes as a string (one with a MarshalText method, as
// encoding/json names it too, and no MarshalBinary, which msgpack prefers) is a string
// key. It looks where NonFinite does; the types JSON decodes into are checked without
// reflection.
func NonStringKey(v any) (path, key string, found bool) {
	switch v := v.(type) {
	case nil, string, bool, []byte, int, int64, float64, time.Time, []string, map[string]string:
		return "", "", false
	case map[string]any:
		for k, e := range v {
			if path, key, ok := NonStringKey(e); ok {
				return "." + k + path, key, true
			}
		}
		return "", "", false
	case []any:
		for i, e := range v {
			if path, key, ok := NonStringKey(e); ok {
				return "[" + strconv.Itoa(i) + "]" + path, key, true
			}
		}
		return "", "", false
	}
	return nonStringKeyIn(reflect.ValueOf(v))
}

// nonStringKeyIn is NonStringKey by reflection, for the types its switch does not name.
func nonStringKeyIn(v reflect.Value) (string, string, bool) {
	var key string
	path, found := findIn(v, func(v reflect.Value) bool {
		if v.Kind() != reflect.Map {
			return false
		}
		for it := v.MapRange(); it.Next(); {
			k := it.Key()
			if k.Kind() == reflect.Interface && !k.IsNil() {
				k = k.Elem()
			}
			if k.Kind() != reflect.String && !writtenAsString(k) {
				key = fmt.Sprint(k)
				return true
			}
		}
		return false
	}, nil, false)
	return path, key, found
}

func isStruct(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

func fmtArg(what string, i int, field string) string {
	return what + "[" + strconv.Itoa(i) + "]." + field
}

func encodeMap(m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return msgpack.Marshal(m)
}

func decodeMap(b []byte) (map[string]any, error) { return engine.DecodeMap(b) }
