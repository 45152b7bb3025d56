package pmd_test

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/vmihailenco/msgpack/v5"
)

// walkNode is Go data for the walks: a struct behind a pointer, a field msgpack skips,
// and fields that may hold anything, the struct itself included.
type walkNode struct {
	F    float64
	Skip float64 `msgpack:"-"`
	Any  any
	Next *walkNode
}

// walkGen builds data from fuzz bytes: JSON's types, typed slices and maps, structs,
// NaNs and infinities, maps keyed by numbers, and references back to a value made before
// (a holder on the path: data that holds itself; elsewhere: data held twice).
type walkGen struct {
	b       []byte
	made    []any // the maps, slices and pointers made so far
	several bool  // some map has more than one entry: the walks' order is random
}

func (g *walkGen) next() int {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return int(c)
}

func (g *walkGen) value(depth int) any {
	if depth > 5 {
		return "leaf"
	}
	switch g.next() % 15 {
	case 0:
		return nil
	case 1:
		return "s"
	case 2:
		return float64(g.next()) / 7
	case 3:
		return math.NaN()
	case 4:
		return math.Inf(1)
	case 5:
		return float32(math.Inf(-1))
	case 6:
		return map[int]int{g.next(): 1}
	case 7:
		m := map[string]any{}
		g.made = append(g.made, m)
		n := g.next() % 3
		g.several = g.several || n > 1
		for i := range n {
			m[fmt.Sprint("k", i)] = g.value(depth + 1)
		}
		return m
	case 8:
		l := make([]any, 1+g.next()%3)
		g.made = append(g.made, l)
		for i := range l {
			l[i] = g.value(depth + 1)
		}
		return l
	case 9:
		n := &walkNode{F: float64(g.next()), Skip: math.NaN()}
		g.made = append(g.made, n)
		n.Any = g.value(depth + 1)
		if next, ok := g.value(depth + 1).(*walkNode); ok {
			n.Next = next
		}
		return n
	case 10:
		if len(g.made) == 0 {
			return int64(g.next())
		}
		return g.made[g.next()%len(g.made)]
	case 11:
		return []float64{1, []float64{2, math.NaN()}[g.next()%2]}
	case 12:
		g.several = true
		return map[any]any{"a": g.value(depth + 1), []any{"b", true}[g.next()%2]: 1}
	case 13:
		return []walkNode{{F: 1}, {F: []float64{2, math.Inf(-1)}[g.next()%2], Any: g.value(depth + 1)}}
	}
	return int64(g.next())
}

// FuzzUnwritableAgrees: Unwritable, the one walk Append makes of an event's data, finds
// something exactly when one of HoldsItself, NonFinite and NonStringKey does, and what it
// finds is what that check finds: the same path, and the reason Append gives for it.
// Where the order of the walks is fixed (no map of several entries) it is the first thing
// of the three: exactly one check's answer. None of the walks ends the program on data
// that holds itself.
func FuzzUnwritableAgrees(f *testing.F) {
	for _, seed := range []string{
		"", "\x07\x02\x03", "\x07\x02\x07\x02\x0a\x00", "\x08\x02\x04\x0a\x01", "\x09\x03\x0a\x00\x09",
		"\x07\x02\x06\x05", "\x0c\x01\x03", "\x0d\x01\x07\x01\x0a\x00", "\x08\x02\x07\x01\x08\x00\x0a\x01\x03",
		"\x07\x02\x02\x09\x07\x07\x01\x0a\x02\x06", "\x08\x01\x0b\x01\x0a\x00\x03", "\x0c\x03", "\x0b\x01",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &walkGen{b: b}
		v := g.value(0)
		checkUnwritableAgrees(t, v, !g.several)
		// Each value the generator makes takes a byte at least: a path of more
		// values than that holds one of them twice.
		checkUnwritableOracle(t, v, len(b)+2)
	})
}

// checkUnwritableOracle checks the walks against answers found without them: whether v
// holds itself by a walk that gives up deeper than bound maps, slices and pointers (an
// acyclic path holds each value once: data of fewer values than bound is deeper only
// if it holds itself), and where its NaNs, infinities and non-string keys are by
// encoding it with msgpack and decoding that, which is what the walks follow.
func checkUnwritableOracle(t *testing.T, v any, bound int) {
	t.Helper()
	path, reason, found := pmd.Unwritable(v, "data")
	_, held := pmd.HoldsItself(v)
	if deeperThan(reflect.ValueOf(v), bound) {
		if !held || !found {
			t.Fatalf("v holds itself, but HoldsItself = %v and Unwritable = %q %q %v", held, path, reason, found)
		}
		return
	}
	if held {
		t.Fatalf("HoldsItself found a value that does not hold itself")
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatalf("msgpack: %v", err)
	}
	d := msgpack.NewDecoder(bytes.NewReader(b))
	d.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	decoded, err := d.DecodeInterface()
	if err != nil {
		t.Fatalf("msgpack: %v", err)
	}
	var numbers, keys, all []string // "path: reason"
	decodedFlaws(decoded, "", &numbers, &keys)
	all = append(append(all, numbers...), keys...)
	answer := func(path, reason string, found bool) string {
		if !found {
			return ""
		}
		return path + ": " + reason
	}
	numberPath, number, numberFound := pmd.NonFinite(v)
	keyPath, key, keyFound := pmd.NonStringKey(v)
	for _, c := range []struct {
		name, got string
		want      []string
	}{
		{"Unwritable", answer(path, reason, found), all},
		{"NonFinite", answer(numberPath, fmt.Sprintf("%v is not a JSON number", number), numberFound), numbers},
		{"NonStringKey", answer(keyPath, fmt.Sprintf("the key %v is not a string: data is a JSON object, whose keys are strings", key), keyFound), keys},
	} {
		switch {
		case c.got == "" && len(c.want) > 0:
			t.Errorf("%s found nothing; msgpack's data holds %q", c.name, c.want)
		case c.got != "" && !slices.Contains(c.want, c.got):
			t.Errorf("%s = %q; msgpack's data holds %q", c.name, c.got, c.want)
		}
	}
}

// deeperThan reports whether v holds a path of more than bound maps, slices and
// pointers, following what msgpack encodes.
func deeperThan(v reflect.Value, bound int) bool {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer, reflect.Map, reflect.Slice:
		if v.IsNil() {
			return false
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if bound == 0 {
			return true
		}
		bound--
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		return deeperThan(v.Elem(), bound)
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if deeperThan(it.Value(), bound) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if deeperThan(v.Index(i), bound) {
				return true
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && f.Tag.Get("msgpack") != "-" && deeperThan(v.Field(i), bound) {
				return true
			}
		}
	}
	return false
}

// decodedFlaws adds to numbers and keys the NaNs, infinities and non-string keys of
// msgpack's decoded data v, as "path: reason" in the words of Unwritable's reasons.
func decodedFlaws(v any, path string, numbers, keys *[]string) {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			*numbers = append(*numbers, path+": "+fmt.Sprintf("%v is not a JSON number", v))
		}
	case float32:
		decodedFlaws(float64(v), path, numbers, keys)
	case []any:
		for i, e := range v {
			decodedFlaws(e, path+"["+strconv.Itoa(i)+"]", numbers, keys)
		}
	case map[any]any:
		for k, e := range v {
			switch k := k.(type) {
			case string:
				decodedFlaws(e, path+"."+k, numbers, keys)
			case []byte:
				decodedFlaws(e, path+"."+string(k), numbers, keys)
			default:
				*keys = append(*keys, path+": "+fmt.Sprintf("the key %v is not a string: data is a JSON object, whose keys are strings", k))
				decodedFlaws(e, path+"."+fmt.Sprint(k), numbers, keys)
			}
		}
	}
}

func checkUnwritableAgrees(t *testing.T, v any, ordered bool) {
	t.Helper()
	type answer struct {
		path, reason string
	}
	var singles []answer
	if path, ok := pmd.HoldsItself(v); ok {
		singles = append(singles, answer{path, "holds itself: data that refers back to a value holding it cannot be written"})
	}
	if path, f, ok := pmd.NonFinite(v); ok {
		singles = append(singles, answer{path, fmt.Sprintf("%v is not a JSON number", f)})
	}
	if path, k, ok := pmd.NonStringKey(v); ok {
		singles = append(singles, answer{path, fmt.Sprintf("the key %v is not a string: data is a JSON object, whose keys are strings", k)})
	}
	path, reason, found := pmd.Unwritable(v, "data")
	if found != (len(singles) > 0) {
		t.Fatalf("Unwritable = %q %q %v; the single checks found %q", path, reason, found, singles)
	}
	if !found || !ordered {
		return
	}
	for _, s := range singles {
		if s == (answer{path, reason}) {
			return
		}
	}
	t.Fatalf("Unwritable = %q %q; the single checks found %q", path, reason, singles)
}

// TestUnwritableAgrees: table cases of FuzzUnwritableAgrees, and the first of two problems
// of different kinds.
func TestUnwritableAgrees(t *testing.T) {
	self := map[string]any{"k": 1}
	self["self"] = self
	n := &walkNode{F: 1}
	n.Next = n
	tests := []struct {
		name         string
		v            any
		path, reason string
	}{
		{"fine", map[string]any{"a": []any{1.5, "x", map[string]any{"b": true}}, "n": &walkNode{F: 2, Skip: math.NaN()}}, "", ""},
		{"a NaN", map[string]any{"a": []any{1.5, math.NaN()}}, ".a[1]", "NaN is not a JSON number"},
		{"a NaN in a typed slice", map[string]any{"s": []float64{1, math.NaN()}}, ".s[1]", "NaN is not a JSON number"},
		{"a NaN in a struct's field", map[string]any{"n": walkNode{F: math.NaN()}}, ".n.F", "NaN is not a JSON number"},
		{"an infinity in a struct", map[string]any{"n": walkNode{Any: []float32{float32(math.Inf(1))}}}, ".n.Any[0]", "+Inf is not a JSON number"},
		{"a number key", map[string]any{"m": []any{map[int]bool{3: true}}}, ".m[0]", "the key 3 is not a string: data is a JSON object, whose keys are strings"},
		{"a map holding itself", map[string]any{"m": self}, ".m.self", "holds itself: data that refers back to a value holding it cannot be written"},
		{"a struct holding itself", n, ".Next", "holds itself: data that refers back to a value holding it cannot be written"},
		{"a NaN before a loop", []any{math.NaN(), self}, "[0]", "NaN is not a JSON number"},
		{"a loop before a key", []any{self, map[int]int{1: 1}}, "[0].self", "holds itself: data that refers back to a value holding it cannot be written"},
		{"a key before a NaN", []any{map[int]int{1: 1}, math.NaN()}, "[0]", "the key 1 is not a string: data is a JSON object, whose keys are strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, reason, found := pmd.Unwritable(tt.v, "data")
			if path != tt.path || reason != tt.reason || found != (tt.reason != "") {
				t.Errorf("Unwritable = %q, %q, %v; want %q, %q", path, reason, found, tt.path, tt.reason)
			}
			checkUnwritableAgrees(t, tt.v, true)
			checkUnwritableOracle(t, tt.v, 16)
		})
	}
}

// TestUnwritableChecksJSONDataWithoutAllocating: Append walks every event's data once,
// and the data HTTP decodes is walked without allocating.
func TestUnwritableChecksJSONDataWithoutAllocating(t *testing.T) {
	data := jsonEventData()
	if allocs := testing.AllocsPerRun(100, func() {
		if path, reason, found := pmd.Unwritable(data, "data"); found {
			t.Fatalf("Unwritable found %s at %q in writable data", reason, path)
		}
	}); allocs != 0 {
		t.Errorf("Unwritable of JSON data allocates %v times, want 0", allocs)
	}
}

func jsonEventData() map[string]any {
	return map[string]any{
		"order_id": int64(42), "total": 12.5, "paid": true, "note": nil, "customer": "c-17",
		"lines": []any{
			map[string]any{"sku": "A-1", "qty": int64(2), "price": 3.25},
			map[string]any{"sku": "B-7", "qty": int64(1), "price": 9.5, "tags": []any{"gift"}},
		},
		"address": map[string]any{"city": "Lyon", "zip": "69001", "geo": []any{45.76, 4.83}},
	}
}

// benchOrder is Go data an application appends: a struct, walked by reflection.
type benchOrder struct {
	ID    string            `msgpack:"id"`
	Total float64           `msgpack:"total"`
	Lines []benchLine       `msgpack:"lines"`
	Attrs map[string]string `msgpack:"attrs"`
}

type benchLine struct {
	SKU   string  `msgpack:"sku"`
	Qty   int     `msgpack:"qty"`
	Price float64 `msgpack:"price"`
}

// BenchmarkDataChecks: what Append's checks of an event's data cost: the three walks it
// made (HoldsItself, NonFinite, NonStringKey) and the one it makes (Unwritable), on the
// data HTTP decodes and on a Go struct. The ratio of the two, in one run, is the saving.
func BenchmarkDataChecks(b *testing.B) {
	for _, data := range []struct {
		name string
		v    map[string]any
	}{
		{"json", jsonEventData()},
		{"struct", map[string]any{"order": benchOrder{ID: "o-1", Total: 12.5,
			Lines: []benchLine{{"A-1", 2, 3.25}, {"B-7", 1, 9.5}}, Attrs: map[string]string{"channel": "web"}}}},
	} {
		b.Run(data.name+"/three", func(b *testing.B) {
			for b.Loop() {
				pmd.HoldsItself(data.v)
				pmd.NonFinite(data.v)
				pmd.NonStringKey(data.v)
			}
		})
		b.Run(data.name+"/one", func(b *testing.B) {
			for b.Loop() {
				pmd.Unwritable(data.v, "data")
			}
		})
	}
}

// WalkInner is a struct the structs of TestUnwritableStructPaths embed.
type WalkInner struct{ X, Y float64 }

type (
	walkTagged struct {
		WalkInner `msgpack:"inner"`
	} // inlined all the same
	walkPointer  struct{ *WalkInner }
	walkNoInline struct {
		WalkInner `msgpack:",noinline"`
	}
	walkShadowed struct { // X shadows WalkInner's X: WalkInner is not inlined
		X float64
		WalkInner
	}
	walkForced struct { // inlined but for its X, which X shadows
		X         float64
		WalkInner `msgpack:",inline"`
	}
	WalkTwice struct { // two fields msgpack writes under one name
		A float64
		B float64 `msgpack:"A"`
	}
	walkTwiceOuter struct{ WalkTwice } // inlined, both A fields written
)

// TestUnwritableStructPaths: the path to a flaw in a struct names the field as msgpack
// writes it, through the embedded structs it inlines (whatever their tag's name) and
// those it does not (one with a field shadowed, or tagged noinline); a field msgpack
// does not write is not looked at.
func TestUnwritableStructPaths(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		v    any
		path string // "" for nothing found
	}{
		{"tagged embedded struct", walkTagged{WalkInner{X: nan}}, ".X"},
		{"embedded pointer", walkPointer{&WalkInner{Y: nan}}, ".Y"},
		{"nil embedded pointer", walkPointer{}, ""},
		{"noinline", walkNoInline{WalkInner{X: nan}}, ".WalkInner.X"},
		{"shadowed field", walkShadowed{WalkInner: WalkInner{Y: nan}}, ".WalkInner.Y"},
		{"shadowing field", walkShadowed{X: nan}, ".X"},
		{"forced inline", walkForced{WalkInner: WalkInner{Y: nan}}, ".Y"},
		{"forced inline's shadowed field", walkForced{WalkInner: WalkInner{X: nan}}, ""},
		{"an inlined struct's second field of a name", walkTwiceOuter{WalkTwice{A: 1, B: nan}}, ".A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := map[string]any{"s": tt.v}
			path, reason, found := pmd.Unwritable(data, "data")
			want := ".s" + tt.path
			if tt.path == "" {
				want = ""
			}
			if path != want || found != (tt.path != "") {
				t.Errorf("Unwritable = %q, %q, %v; want the path %q", path, reason, found, want)
			}
			checkUnwritableOracle(t, data, 16)
		})
	}
}
