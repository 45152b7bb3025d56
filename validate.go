package pmd

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
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
		// One walk of each finds what would keep it from being written (Unwritable).
		if path, reason, ok := Unwritable(e.Data, "data"); ok {
			return nil, invalid(arg("data")+path, "%s", reason)
		}
		if path, reason, ok := Unwritable(e.Metadata, "metadata"); ok {
			return nil, invalid(arg("metadata")+path, "%s", reason)
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

// Unwritable finds in v, an event's data or metadata named what ("data", "metadata"),
// the first reason it cannot be written: what HoldsItself, NonFinite or NonStringKey
// finds, in one walk instead of three. It returns where (as they do) and the reason, as
// Append words it after the field's name. Append and the Go client check every event's
// data and metadata with it; the types JSON decodes into are walked without allocating.
func Unwritable(v any, what string) (path, reason string, found bool) {
	path, fl := walk(v, flawsAll)
	switch fl.kind {
	case flawHeld:
		return path, "holds itself: " + what + " that refers back to a value holding it cannot be written", true
	case flawNumber:
		return path, fmt.Sprintf("%v is not a JSON number", fl.number), true
	case flawKey:
		return path, fmt.Sprintf("the key %v is not a string: %s is a JSON object, whose keys are strings", fl.key, what), true
	}
	return "", "", false
}

// NonFinite finds a NaN or an infinity in v, at any depth, and returns where it is
// (".ratio", ".items[2]", "" for v itself) and what it is. JSON has no such number, so an
// event holding one could not be served over HTTP (every page of $all holding it would
// fail) nor delivered to a webhook: Append refuses data and metadata for which NonFinite
// finds one (by Unwritable), naming the path, and config checks a command's data with it
// before issuing.
//
// It looks where msgpack encodes: into maps, slices, arrays, pointers, interfaces and
// struct fields; a field is named by its msgpack tag when it has one, a field tagged
// msgpack:"-" is skipped, and the fields of an embedded struct msgpack inlines are named
// as its own (structFields: not one with a field shadowed, nor tagged noinline). A value
// that holds itself is not walked into again. The types JSON decodes into, and the
// common scalars, are checked without reflection.
func NonFinite(v any) (path string, f float64, found bool) {
	path, fl := walk(v, flawNumber)
	return path, fl.number, fl.kind != 0
}

// HoldsItself reports whether v refers back to a map, slice or pointer that holds it,
// and the path to the first such reference. Such a value cannot be written (msgpack and
// JSON would never end): Append refuses it (by Unwritable), and the Go client, and a
// process manager's command. A value held twice, but not by itself, is not refused. It
// looks where NonFinite does.
func HoldsItself(v any) (path string, found bool) {
	path, fl := walk(v, flawHeld)
	return path, fl.kind != 0
}

// NonStringKey finds a map in v, at any depth, with a key that is not a string, and
// returns where the map is and the key. Data and metadata are JSON objects, read back as
// maps of string keys: msgpack would write such a map, but every read of the event
// would fail on it, so Append refuses it (by Unwritable; and the Go client, before
// sending). A key of another type that msgpack writes as a string (one with a MarshalText
// method, as encoding/json names it too, and no MarshalBinary, which msgpack prefers) is
// a string key. It looks where NonFinite does.
func NonStringKey(v any) (path, key string, found bool) {
	path, fl := walk(v, flawKey)
	return path, fl.key, fl.kind != 0
}

// flaws are the kinds of reason a value cannot be written that a walk looks for.
type flaws uint8

const (
	flawHeld   flaws = 1 << iota // a map, slice or pointer that holds itself (HoldsItself)
	flawNumber                   // a NaN or an infinity (NonFinite)
	flawKey                      // a map key that is not a string (NonStringKey)
	flawsAll   = flawHeld | flawNumber | flawKey
)

// flaw is what a walk found: kind 0 for nothing.
type flaw struct {
	kind   flaws
	number float64 // the NaN or infinity of flawNumber
	key    string  // the key of flawKey, as fmt prints it
}

// walk finds in v the first value with a flaw of the kinds look names, and returns the
// path to it. A value that holds itself is not walked into again (the walk would never
// end): a flaw if look names flawHeld, else passed over.
func walk(v any, look flaws) (string, flaw) {
	var held [16]holder // the path of most data, without allocating
	return walkAny(v, look, held[:0])
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

// walkAny is walk of v, held by the holders of onPath: without reflection for the types
// JSON decodes into and the common scalars, else by walkValue.
func walkAny(v any, look flaws, onPath []holder) (string, flaw) {
	switch v := v.(type) {
	case nil, string, bool, []byte, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, time.Time, []string, map[string]string:
		return "", flaw{}
	case float64:
		return "", nonFinite(v, look)
	case float32:
		return "", nonFinite(float64(v), look)
	case map[string]any:
		if v == nil {
			return "", flaw{}
		}
		onPath, ok := enter(onPath, holder{uintptr(reflect.ValueOf(v).UnsafePointer()), 0, mapAnyType})
		if !ok {
			return "", flaw{kind: look & flawHeld}
		}
		for k, e := range v {
			if path, fl := walkAny(e, look, onPath); fl.kind != 0 {
				return "." + k + path, fl
			}
		}
		return "", flaw{}
	case []any:
		if len(v) == 0 {
			return "", flaw{}
		}
		onPath, ok := enter(onPath, holder{uintptr(unsafe.Pointer(unsafe.SliceData(v))), len(v), sliceAnyType})
		if !ok {
			return "", flaw{kind: look & flawHeld}
		}
		for i, e := range v {
			if path, fl := walkAny(e, look, onPath); fl.kind != 0 {
				return "[" + strconv.Itoa(i) + "]" + path, fl
			}
		}
		return "", flaw{}
	}
	return walkValue(reflect.ValueOf(v), look, onPath)
}

// nonFinite is the flaw of the number f: flawNumber if look names it and f is a NaN or an
// infinity.
func nonFinite(f float64, look flaws) flaw {
	if look&flawNumber != 0 && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return flaw{kind: flawNumber, number: f}
	}
	return flaw{}
}

// walkValue is walkAny by reflection. It walks v where msgpack encodes it: into maps,
// slices and arrays (not bytes), pointers, interfaces and struct fields, a field named as
// msgpack names it (structFields). Each value is checked before the walk goes into it.
func walkValue(v reflect.Value, look flaws, onPath []holder) (string, flaw) {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return "", nonFinite(v.Float(), look)
	case reflect.Interface:
		if !v.IsNil() {
			return walkValue(v.Elem(), look, onPath)
		}
		return "", flaw{}
	case reflect.Map:
		if look&flawKey != 0 {
			if key, ok := nonStringKeyOf(v); ok {
				return "", flaw{kind: flawKey, key: key}
			}
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if v.IsNil() || v.Kind() == reflect.Slice && (v.Len() == 0 || v.Type().Elem().Kind() == reflect.Uint8) {
			return "", flaw{}
		}
		var ok bool
		h := holder{uintptr(v.UnsafePointer()), 0, v.Type()}
		if v.Kind() == reflect.Slice {
			h.n = v.Len()
		}
		if onPath, ok = enter(onPath, h); !ok {
			return "", flaw{kind: look & flawHeld}
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		return walkValue(v.Elem(), look, onPath)
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if path, fl := walkValue(it.Value(), look, onPath); fl.kind != 0 {
				// fmt prints the key also when it came through an unexported embedded
				// struct, where Interface would panic.
				return "." + fmt.Sprint(it.Key()) + path, fl
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", flaw{} // bytes
		}
		for i := range v.Len() {
			if path, fl := walkValue(v.Index(i), look, onPath); fl.kind != 0 {
				return "[" + strconv.Itoa(i) + "]" + path, fl
			}
		}
	case reflect.Struct:
		for _, f := range structFields(v.Type()) {
			fv, err := v.FieldByIndexErr(f.index)
			if err != nil {
				continue // through a nil embedded pointer: msgpack writes nothing
			}
			if path, fl := walkValue(fv, look, onPath); fl.kind != 0 {
				return "." + f.name + path, fl
			}
		}
	}
	return "", flaw{}
}

// nonStringKeyOf returns a key of the map m that is not a string, as fmt prints it.
func nonStringKeyOf(m reflect.Value) (string, bool) {
	for it := m.MapRange(); it.Next(); {
		k := it.Key()
		if k.Kind() == reflect.Interface && !k.IsNil() {
			k = k.Elem()
		}
		if k.Kind() != reflect.String && !writtenAsString(k) {
			return fmt.Sprint(k), true
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

// structField is a field msgpack writes of a struct: its name in the struct's map, and
// where it is (reflect's index, through the embedded structs msgpack inlines).
type structField struct {
	name  string
	index []int
}

// structFieldsOf caches structFields: a struct's fields are worked out once.
var structFieldsOf sync.Map // reflect.Type → []structField

// structFields returns the fields msgpack writes of the struct type t, in its order, named
// as it names them: its msgpack tag's name, else its own; none tagged "-" nor unexported
// (but embedded ones). An embedded struct (or pointer to one) is inlined, its fields
// written as t's own (its tag's name unused): with the tag option inline, but for those
// of its fields that a field before it shadows (one of the same name); without it, only
// if no field before it shadows any of its fields and it has no encoder of its own
// (msgpack's or a Marshal method). The tag option noinline writes it as one field.
func structFields(t reflect.Type) []structField {
	if fs, ok := structFieldsOf.Load(t); ok {
		return fs.([]structField)
	}
	fs := structFieldsIn(t, map[reflect.Type]bool{})
	structFieldsOf.Store(t, fs)
	return fs
}

// structFieldsIn is structFields, inlining none of the types of inProgress: msgpack
// could not write a struct that embeds itself (its own pointer), but the walk ends.
func structFieldsIn(t reflect.Type, inProgress map[reflect.Type]bool) []structField {
	inProgress[t] = true
	defer delete(inProgress, t)
	var fs []structField
	names := map[string]bool{} // the names taken: the fields', and the inlined structs'
	has := func(name string) bool { return names[name] }
	for i := range t.NumField() {
		field := t.Field(i)
		name, opts, _ := strings.Cut(field.Tag.Get("msgpack"), ",")
		if name == "-" || !field.IsExported() && !field.Anonymous {
			continue
		}
		if name == "" {
			name = field.Name
		}
		if field.Anonymous && !hasOption(opts, "noinline") {
			if inner, ok := inlinable(field.Type, hasOption(opts, "inline")); ok && !inProgress[inner] {
				innerFields := structFieldsIn(inner, inProgress)
				shadowed := slices.ContainsFunc(innerFields, func(f structField) bool { return has(f.name) })
				if forced := hasOption(opts, "inline"); forced || !shadowed {
					for _, f := range innerFields {
						// Forced, a field before it shadows one of its fields, which is
						// not written; else it writes them all, two of one name too.
						if !forced || !has(f.name) {
							fs = append(fs, structField{f.name, append([]int{i}, f.index...)})
							names[f.name] = true
						}
					}
					names[name] = true
					continue
				}
			}
		}
		fs = append(fs, structField{name, []int{i}})
		names[name] = true
	}
	return fs
}

// inlinable returns the struct msgpack inlines for an embedded field of type t: t itself
// with the tag option inline (forced), else a struct or a pointer to one that msgpack
// writes field by field, not by an encoder of its own.
func inlinable(t reflect.Type, forced bool) (reflect.Type, bool) {
	if forced {
		return t, t.Kind() == reflect.Struct
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType {
		return nil, false
	}
	p := reflect.PointerTo(t)
	for _, i := range []reflect.Type{msgpackEncoderType, msgpackMarshalerType, binaryMarshalerType, textMarshalerType} {
		if t.Implements(i) || p.Implements(i) {
			return nil, false
		}
	}
	for _, i := range []reflect.Type{msgpackDecoderType, msgpackUnmarshalerType, binaryUnmarshalerType, textUnmarshalerType} {
		if p.Implements(i) {
			return nil, false
		}
	}
	return t, true
}

var (
	timeType               = reflect.TypeFor[time.Time]()
	msgpackDecoderType     = reflect.TypeFor[msgpack.CustomDecoder]()
	msgpackUnmarshalerType = reflect.TypeFor[msgpack.Unmarshaler]()
	binaryUnmarshalerType  = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textUnmarshalerType    = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// hasOption reports whether the options of a msgpack tag (after its name) hold option.
func hasOption(opts, option string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == option {
			return true
		}
	}
	return false
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
