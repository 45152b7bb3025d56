package config

import (
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// notJSON finds in v, a command's data value, what has no JSON form: a function (a
// method not called, now().Add), an object whose key is not a string (groupBy over
// numbers), or another Go value (timezone('UTC')). The store refuses the first, and
// would write the second as a record that no read can decode (msgpack keeps the key;
// data decodes into string keys), so either stopped the process manager at every start.
// It returns where (".x", "[1]", "" for v itself) and what is wrong. event, state and
// the other names of env are objects, with the names expressions use as their tags.
func notJSON(v any) (path, problem string, found bool) {
	switch v := v.(type) {
	case nil, string, bool, int, int64, float64, time.Time:
		return "", "", false
	case map[string]any:
		for k, e := range v {
			if path, problem, ok := notJSON(e); ok {
				return "." + k + path, problem, true
			}
		}
		return "", "", false
	case []any:
		for i, e := range v {
			if path, problem, ok := notJSON(e); ok {
				return "[" + strconv.Itoa(i) + "]" + path, problem, true
			}
		}
		return "", "", false
	}
	return notJSONIn(reflect.ValueOf(v))
}

// views are the structs expressions see, which encode as objects by their tags.
var views = []reflect.Type{reflect.TypeFor[env](), reflect.TypeFor[stateView](), reflect.TypeFor[eventView]()}

// notJSONIn is notJSON by reflection, for the types its switch does not name.
func notJSONIn(v reflect.Value) (string, string, bool) {
	const notAValue = "is not a JSON value"
	switch v.Kind() {
	case reflect.Invalid, reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "", "", false
	case reflect.Func:
		return "", "is a function, not a JSON value", true
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return "", "", false
		}
		return notJSONIn(v.Elem())
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if path, problem, ok := notJSONIn(v.Index(i)); ok {
				return "[" + strconv.Itoa(i) + "]" + path, problem, true
			}
		}
		return "", "", false
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			k := it.Key()
			if k.Kind() == reflect.Interface && !k.IsNil() {
				k = k.Elem()
			}
			if k.Kind() != reflect.String {
				return "", fmt.Sprintf("has the key %v, not a string: a JSON object's keys are strings", k), true
			}
			if path, problem, ok := notJSONIn(it.Value()); ok {
				return "." + k.String() + path, problem, true
			}
		}
		return "", "", false
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return "", "", false
		}
		for _, view := range views {
			if v.Type() == view {
				for i := range v.NumField() {
					if path, problem, ok := notJSONIn(v.Field(i)); ok {
						return "." + v.Type().Field(i).Tag.Get("json") + path, problem, true
					}
				}
				return "", "", false
			}
		}
	}
	return "", notAValue, true
}
