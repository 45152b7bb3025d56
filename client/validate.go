package client

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// The checks here refuse, before anything is sent, input the embedded store would
// refuse, with the *pmd.InvalidArgumentError it would give (the same Arg): a name the
// client cannot even put into a path (an empty one would reach another route), or data
// JSON cannot carry (NaN). They reuse the root package's rules (pmd.CheckName,
// pmd.CheckWritable, pmd.CheckCategory, pmd.Unwritable) rather than spell them again.

func invalid(arg, format string, a ...any) error {
	return &pmd.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf(format, a...)}
}

// checked turns a failed root-package check into an *pmd.InvalidArgumentError naming arg.
func checked(arg string, err error) error {
	if err != nil {
		return &pmd.InvalidArgumentError{Arg: arg, Reason: err.Error()}
	}
	return nil
}

// checkStream checks the name of a stream to be read (pmd.All included).
func checkStream(stream string) error { return checked("stream", pmd.CheckName(stream)) }

// checkWritable checks the name of a stream to be written, as the store's writes do.
func checkWritable(stream string) error { return checked("stream", pmd.CheckWritable(stream)) }

// checkEvents checks what the store checks of an append before writing (at least one
// event; of each its type, an id not given twice, and data and metadata holding no NaN
// or infinity and no map with keys that are not strings), naming the field as it does.
func checkEvents(events []pmd.EventData) error {
	if len(events) == 0 {
		return invalid("events", "must hold at least one entry")
	}
	seen := make(map[uuid.UUID]bool, len(events))
	for i, e := range events {
		arg := func(field string) string { return fmt.Sprintf("events[%d].%s", i, field) }
		if err := checked(arg("type"), pmd.CheckName(e.Type)); err != nil {
			return err
		}
		if e.ID != uuid.Nil { // the store gives one a fresh id, never one given
			if seen[e.ID] {
				return invalid(arg("id"), "%s is given twice", e.ID)
			}
			seen[e.ID] = true
		}
		if path, reason, ok := pmd.Unwritable(e.Data, "data"); ok {
			return invalid(arg("data")+path, "%s", reason)
		}
		if path, reason, ok := pmd.Unwritable(e.Metadata, "metadata"); ok {
			return invalid(arg("metadata")+path, "%s", reason)
		}
		if path, what, ok := invalidUTF8(e.Data); ok {
			return invalid(arg("data")+path, "%s: encoding/json would send each bad byte as U+FFFD, storing other text", what)
		}
		if path, what, ok := invalidUTF8(e.Metadata); ok {
			return invalid(arg("metadata")+path, "%s: encoding/json would send each bad byte as U+FFFD, storing other text", what)
		}
	}
	return nil
}

// checkLinks checks the ids of a link as the store does before writing: at least one,
// none the nil UUID, none given twice.
func checkLinks(ids []uuid.UUID) error {
	if len(ids) == 0 {
		return invalid("event_ids", "must hold at least one entry")
	}
	seen := make(map[uuid.UUID]bool, len(ids))
	for i, id := range ids {
		arg := fmt.Sprintf("event_ids[%d].id", i)
		if id == uuid.Nil {
			return invalid(arg, "must not be the nil UUID")
		}
		if seen[id] {
			return invalid(arg, "%s is given twice", id)
		}
		seen[id] = true
	}
	return nil
}

// checkLimit refuses a negative limit, as the store's reads do.
func checkLimit(limit int) error {
	if limit < 0 {
		return invalid("limit", "must not be negative, got %d", limit)
	}
	return nil
}

// maxDepth bounds how deep invalidUTF8 looks: a value nested deeper is left to
// encoding/json. A value that holds itself never gets here: checkEvents refuses it
// first (pmd.Unwritable).
const maxDepth = 1000

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// invalidUTF8 finds text in v (a string, a map key, the text of a MarshalText) that is
// not valid UTF-8, and returns where it is (".note", ".lines[2]", "" for v itself) and
// what is wrong.
// encoding/json would send each bad byte as U+FFFD, so that the daemon stored other
// text than the caller's, where the API refuses such a string sent as it is. It looks
// where encoding/json writes, choosing as it does: into maps, slices, arrays, pointers,
// interfaces and exported struct fields (named as their json tag names them); a value
// whose MarshalJSON encoding/json calls writes itself (one of a pointer receiver only
// where its address can be taken, not stored by value in a map or an interface); the
// text of a MarshalText, a value's or a map key's, is written as a string, so it is
// checked (MarshalText is called here too); a []byte is sent as base64.
func invalidUTF8(v any) (path, what string, found bool) { return invalidUTF8At(v, 0) }

func invalidUTF8At(v any, depth int) (path, what string, found bool) {
	if depth > maxDepth {
		return "", "", false
	}
	switch x := v.(type) { // the types JSON decodes into and the commonest, without reflection
	case nil, bool, float64, int, int64:
		return "", "", false
	case string:
		return invalidString(x)
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) {
				return "", fmt.Sprintf("the key %q is not valid UTF-8", k), true
			}
			if path, what, ok := invalidUTF8At(e, depth+1); ok {
				return "." + k + path, what, true
			}
		}
		return "", "", false
	case []any:
		for i, e := range x {
			if path, what, ok := invalidUTF8At(e, depth+1); ok {
				return "[" + strconv.Itoa(i) + "]" + path, what, true
			}
		}
		return "", "", false
	case map[string]string:
		return invalidStrings(x)
	case []string:
		for i, s := range x {
			if !utf8.ValidString(s) {
				return "[" + strconv.Itoa(i) + "]", fmt.Sprintf("%q is not valid UTF-8", s), true
			}
		}
		return "", "", false
	}
	return invalidUTF8In(reflect.ValueOf(v), false, depth)
}

func invalidString(s string) (path, what string, found bool) {
	if !utf8.ValidString(s) {
		return "", fmt.Sprintf("%q is not valid UTF-8", s), true
	}
	return "", "", false
}

func invalidStrings(m map[string]string) (path, what string, found bool) {
	for k, s := range m {
		if !utf8.ValidString(k) {
			return "", fmt.Sprintf("the key %q is not valid UTF-8", k), true
		}
		if !utf8.ValidString(s) {
			return "." + k, fmt.Sprintf("%q is not valid UTF-8", s), true
		}
	}
	return "", "", false
}

// How encoding/json writes a value of a type, as its newTypeEncoder chooses.
type writer uint8

const (
	byKind     writer = iota // by its kind: a string, into its elements or fields
	byJSON                   // by its MarshalJSON
	byText                   // as the text of its MarshalText
	byAddrText               // as the text of its pointer's MarshalText
)

// typeInfo is what invalidUTF8In needs of a type, worked out once per type.
type typeInfo struct {
	addressable, value writer // how a value is written where its address can be taken, and elsewhere
	noText             bool   // no value of the type holds text (numbers, bools, bytes)
	keyText            bool   // a map whose keys are written as the text of their MarshalText
	strings            bool   // a map[string]string, or a type of its own of one
	fields             []field
}

type field struct {
	index  int
	path   string // ".name", or "" for an embedded struct whose fields are written as its own
	inline bool   // an embedded struct (or a pointer to one) whose fields are written as its own
}

var typeInfos sync.Map // reflect.Type to *typeInfo

func infoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeInfos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti, _ := typeInfos.LoadOrStore(t, newTypeInfo(t))
	return ti.(*typeInfo)
}

func newTypeInfo(t reflect.Type) *typeInfo {
	ti := &typeInfo{addressable: writerOf(t, true), value: writerOf(t, false), noText: noText(t, map[reflect.Type]uint8{})}
	switch t.Kind() {
	case reflect.Struct:
		ti.fields = encodedFields(t)
	case reflect.Map:
		ti.keyText = t.Key().Kind() != reflect.String && t.Key().Implements(textMarshaler)
		ti.strings = t.ConvertibleTo(mapOfStrings)
	}
	return ti
}

// encodedFields are the fields of struct type t encoding/json writes, named as it does.
func encodedFields(t reflect.Type) []field {
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		promoted := f.Anonymous && ft.Kind() == reflect.Struct
		tag := f.Tag.Get("json")
		if (!f.IsExported() && !promoted) || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name != "":
			name = "." + name
		case !promoted: // an embedded struct's fields are written as its own
			name = "." + f.Name
		}
		fields = append(fields, field{index: i, path: name, inline: promoted && name == ""})
	}
	return fields
}

// writerOf is how encoding/json writes a value of type t, where its address can be
// taken (addressable) or not.
func writerOf(t reflect.Type, addressable bool) writer {
	pointer := t.Kind() != reflect.Pointer && addressable
	switch {
	case pointer && reflect.PointerTo(t).Implements(jsonMarshaler), t.Implements(jsonMarshaler):
		return byJSON
	case pointer && reflect.PointerTo(t).Implements(textMarshaler):
		return byAddrText
	case t.Implements(textMarshaler):
		return byText
	}
	return byKind
}

// noText reports whether no value of type t holds text invalidUTF8In would check.
// done holds what is known (1 while working a type out, 2 for no text, 3 for text): a
// type met again while it is worked out (a recursive one) is taken to hold some.
func noText(t reflect.Type, done map[reflect.Type]uint8) bool {
	switch done[t] {
	case 1, 3:
		return false
	case 2:
		return true
	}
	done[t] = 1
	none := noTextIn(t, done)
	done[t] = 3
	if none {
		done[t] = 2
	}
	return none
}

func noTextIn(t reflect.Type, done map[reflect.Type]uint8) bool {
	switch w := writerOf(t, true); {
	case w != writerOf(t, false) || w == byText || w == byAddrText:
		return false
	case w == byJSON:
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Slice, reflect.Array:
		return t.Elem().Kind() == reflect.Uint8 || noText(t.Elem(), done)
	case reflect.Pointer:
		return noText(t.Elem(), done)
	case reflect.Struct:
		for _, f := range encodedFields(t) {
			ft := t.Field(f.index).Type
			if f.inline && ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			// An embedded struct's fields are written whatever its methods: one
			// with any is taken to hold text.
			if f.inline && (writerOf(ft, true) != byKind || writerOf(ft, false) != byKind) || !noText(ft, done) {
				return false
			}
		}
		return true
	}
	return false // strings, maps, interfaces, and what encoding/json refuses
}

// invalidUTF8In is invalidUTF8 by reflection; addressable is whether encoding/json could
// take v's address (reached through a pointer, a slice, or an addressable array or
// struct; not a map's value or an interface's).
func invalidUTF8In(v reflect.Value, addressable bool, depth int) (path, what string, found bool) {
	if !v.IsValid() || depth > maxDepth {
		return "", "", false
	}
	t := v.Type()
	ti := infoOf(t)
	if ti.noText {
		return "", "", false
	}
	w := ti.value
	if addressable {
		w = ti.addressable
	}
	switch w {
	case byJSON:
		return "", "", false
	case byText, byAddrText:
		if w == byAddrText {
			v = v.Addr()
		}
		if b, ok := marshalText(v); ok && !utf8.Valid(b) {
			return "", fmt.Sprintf("%q, the text of its MarshalText, is not valid UTF-8", b), true
		}
		return "", "", false
	}
	switch v.Kind() {
	case reflect.String:
		return invalidString(v.String())
	case reflect.Pointer:
		return invalidUTF8In(v.Elem(), true, depth+1)
	case reflect.Interface:
		return invalidUTF8In(v.Elem(), false, depth+1)
	case reflect.Map:
		if v.Len() == 0 {
			return "", "", false
		}
		if ti.strings && v.CanInterface() { // without reflection
			if t != mapOfStrings {
				v = v.Convert(mapOfStrings)
			}
			return invalidStrings(v.Interface().(map[string]string))
		}
		key, value := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
		for it := v.MapRange(); it.Next(); {
			key.SetIterKey(it)
			if key.Kind() == reflect.String && !utf8.ValidString(key.String()) {
				return "", fmt.Sprintf("the key %q is not valid UTF-8", key.String()), true
			}
			if ti.keyText {
				if b, ok := marshalText(key); ok && !utf8.Valid(b) {
					return "", fmt.Sprintf("the key %q, the text of its MarshalText, is not valid UTF-8", b), true
				}
			}
			value.SetIterValue(it)
			// encoding/json writes a copy of the value, whose address it does not take.
			if path, what, ok := invalidUTF8In(value, false, depth+1); ok {
				return "." + keyName(key) + path, what, true
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "", "", false // bytes: base64, or numbers for an array
		}
		elems := addressable || v.Kind() == reflect.Slice
		for i := range v.Len() {
			if path, what, ok := invalidUTF8In(v.Index(i), elems, depth+1); ok {
				return "[" + strconv.Itoa(i) + "]" + path, what, true
			}
		}
	case reflect.Struct:
		return invalidUTF8Fields(v, ti, addressable, depth)
	}
	return "", "", false
}

// invalidUTF8Fields is invalidUTF8In for the fields of the struct v.
func invalidUTF8Fields(v reflect.Value, ti *typeInfo, addressable bool, depth int) (path, what string, found bool) {
	if depth > maxDepth {
		return "", "", false
	}
	for _, f := range ti.fields {
		fv, addr := v.Field(f.index), addressable
		if !f.inline {
			if path, what, ok := invalidUTF8In(fv, addr, depth+1); ok {
				return f.path + path, what, true
			}
			continue
		}
		// encoding/json writes an embedded struct's fields as its own, whatever
		// methods the embedded struct has.
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv, addr = fv.Elem(), true
		}
		if path, what, ok := invalidUTF8Fields(fv, infoOf(fv.Type()), addr, depth+1); ok {
			return f.path + path, what, true
		}
	}
	return "", "", false
}

var mapOfStrings = reflect.TypeFor[map[string]string]()

// marshalText is the text of v's MarshalText, as encoding/json takes it: none (ok false)
// for a nil pointer or interface, where it writes null, or an error, which it returns.
func marshalText(v reflect.Value) (b []byte, ok bool) {
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() || !v.CanInterface() {
		return nil, false
	}
	m, ok := reflect.TypeAssert[encoding.TextMarshaler](v)
	if !ok {
		return nil, false
	}
	b, err := m.MarshalText()
	return b, err == nil
}

// keyName is a map key as a path names it: as encoding/json writes it, or as fmt
// prints it.
func keyName(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	if b, ok := marshalText(k); ok {
		return string(b)
	}
	return fmt.Sprint(k)
}
