package client

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// The checks here refuse, before anything is sent, input the embedded store would
// refuse, with the *pmd.InvalidArgumentError it would give (the same Arg): a name the
// client cannot even put into a path (an empty one would reach another route), or data
// JSON cannot carry (NaN). They reuse the root package's rules (pmd.CheckName,
// pmd.CheckWritable, pmd.CheckCategory, pmd.NonFinite, pmd.NonStringKey) rather than spell
// them again.

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
		if path, v, ok := pmd.NonFinite(e.Data); ok {
			return invalid(arg("data")+path, "%v is not a JSON number", v)
		}
		if path, v, ok := pmd.NonFinite(e.Metadata); ok {
			return invalid(arg("metadata")+path, "%v is not a JSON number", v)
		}
		if path, k, ok := pmd.NonStringKey(e.Data); ok {
			return invalid(arg("data")+path, "the key %v is not a string: data is a JSON object, whose keys are strings", k)
		}
		if path, k, ok := pmd.NonStringKey(e.Metadata); ok {
			return invalid(arg("metadata")+path, "the key %v is not a string: metadata is a JSON object, whose keys are strings", k)
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

// maxDepth bounds how deep invalidUTF8 looks: a value nested deeper (a cycle of
// pointers) is left to encoding/json, which refuses a cycle.
const maxDepth = 1000

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// invalidUTF8 finds text in v, a string or a map key, that is not valid UTF-8, and
// returns where it is (".note", ".lines[2]", "" for v itself) and what is wrong.
// encoding/json would send each bad byte as U+FFFD, so that the daemon stored other
// text than the caller's, where the API refuses such a string sent as it is. It looks
// where encoding/json writes: into maps, slices, arrays, pointers, interfaces and
// exported struct fields (named as their json tag names them); a value with a
// MarshalJSON or MarshalText method writes itself, and a []byte is sent as base64.
func invalidUTF8(v any) (path, what string, found bool) { return invalidUTF8At(v, 0) }

func invalidUTF8At(v any, depth int) (path, what string, found bool) {
	if depth > maxDepth {
		return "", "", false
	}
	switch x := v.(type) { // the types JSON decodes into, without reflection
	case nil, bool, float64, int, int64:
		return "", "", false
	case string:
		if !utf8.ValidString(x) {
			return "", fmt.Sprintf("%q is not valid UTF-8", x), true
		}
		return "", "", false
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
	}
	return invalidUTF8In(reflect.ValueOf(v), depth)
}

func invalidUTF8In(v reflect.Value, depth int) (path, what string, found bool) {
	if !v.IsValid() || depth > maxDepth {
		return "", "", false
	}
	t := v.Type()
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return "", "", false
	}
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); !utf8.ValidString(s) {
			return "", fmt.Sprintf("%q is not valid UTF-8", s), true
		}
	case reflect.Pointer, reflect.Interface:
		return invalidUTF8In(v.Elem(), depth+1)
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			k := fmt.Sprint(it.Key())
			if it.Key().Kind() == reflect.String && !utf8.ValidString(k) {
				return "", fmt.Sprintf("the key %q is not valid UTF-8", k), true
			}
			if path, what, ok := invalidUTF8In(it.Value(), depth+1); ok {
				return "." + k + path, what, true
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "", "", false // bytes: base64, or numbers for an array
		}
		for i := range v.Len() {
			if path, what, ok := invalidUTF8In(v.Index(i), depth+1); ok {
				return "[" + strconv.Itoa(i) + "]" + path, what, true
			}
		}
	case reflect.Struct:
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
			if path, what, ok := invalidUTF8In(v.Field(i), depth+1); ok {
				return name + path, what, true
			}
		}
	}
	return "", "", false
}
