package server

import (
	"math"
	"reflect"
)

// stateBytes is about an upper bound of the bytes process state v holds, by the cost
// model of parsed values (decode.go): a process's page holds the state after each of
// its events, values of its definition's own type, made for the answer (config's
// processes clone a map of the events' data for each) and not decoded from the store,
// so decodedBytes cannot bound them. It walks v: its maps and slices (their slots,
// with room to grow), strings, and what its pointers and interfaces reach, each
// reached once; and, as for decoded data, the containers again when v holds a whole
// float, for the copies jsonfloat.Mark makes to write it (floatsKept). What v shares
// with other states or with events is counted again in each: an overcount, on the
// side of the budget.
func stateBytes(v any) int64 {
	w := stateWalk{seen: make(map[uintptr]bool)}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return 0
	}
	w.total = int64(rv.Type().Size()) // boxed in the interface Process holds it in
	w.reach(rv, 0)
	if w.whole {
		w.total += w.copies
	}
	return w.total
}

// maxStateDepth bounds the walk's nesting: a state deeper than that is counted to it.
const maxStateDepth = 256

type stateWalk struct {
	seen   map[uintptr]bool // maps, slices' arrays and pointers counted already
	total  int64
	copies int64 // the bytes of the containers, which jsonfloat.Mark may copy
	whole  bool  // a whole float was met
}

// once reports whether p is met for the first time, marking it met.
func (w *stateWalk) once(p uintptr) bool {
	if w.seen[p] {
		return false
	}
	w.seen[p] = true
	return true
}

// reach counts what v, whose own bytes are counted by what holds it, reaches.
func (w *stateWalk) reach(v reflect.Value, depth int) {
	if depth > maxStateDepth {
		return
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		w.whole = w.whole || f == math.Trunc(f) && math.Abs(f) < 1e21
	case reflect.String:
		if n := v.Len(); n > 0 {
			w.total += int64(n) + int64(n)/8 + 8 // rounded up to its size class
		}
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		if e.Kind() != reflect.Pointer && e.Kind() != reflect.Map {
			w.total += int64(e.Type().Size()) // boxed
		}
		w.reach(e, depth+1)
	case reflect.Pointer:
		if v.IsNil() || !w.once(v.Pointer()) {
			return
		}
		w.total += int64(v.Type().Elem().Size())
		w.reach(v.Elem(), depth+1)
	case reflect.Map:
		if v.IsNil() || !w.once(v.Pointer()) {
			return
		}
		slot := int64(v.Type().Key().Size() + v.Type().Elem().Size())
		c := int64(objectBytes)
		if n := int64(v.Len()); n > 0 {
			c += max(minGroupBytes, n*max(memberBytes, 5*slot/2))
		}
		w.total += c
		w.copies += c
		for it := v.MapRange(); it.Next(); {
			w.reach(it.Key(), depth+1)
			w.reach(it.Value(), depth+1)
		}
	case reflect.Slice:
		if v.Cap() == 0 || !w.once(v.Pointer()) {
			return
		}
		c := int64(arrayBytes) + int64(v.Cap())*int64(v.Type().Elem().Size())
		w.total += c
		w.copies += c
		for i := range v.Len() {
			w.reach(v.Index(i), depth+1)
		}
	case reflect.Array:
		for i := range v.Len() {
			w.reach(v.Index(i), depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			w.reach(v.Field(i), depth+1)
		}
	}
}
