// Package jsonfloat keeps a float with no fraction a float through JSON. encoding/json
// writes float64(2) as 2, which every reader of the HTTP API (the daemon's body parser,
// the Go client) takes for the integer 2: an event whose data the embedded store gives
// as float64(2) would come back from the daemon as int64(2), and float64(2) appended
// through the Go client would be stored as int64(2). Mark rewrites such floats to be
// written 2.0, as JSON allows, which those readers take for a float.
package jsonfloat

import (
	"maps"
	"math"
	"slices"
	"strconv"
)

// Whole is a float that encoding/json would write without a fraction or an exponent.
// It is written with ".0": 2.0, -0.0, 100000000000000000000.0.
type Whole float64

// MarshalJSON implements json.Marshaler.
func (f Whole) MarshalJSON() ([]byte, error) {
	return append(strconv.AppendFloat(nil, float64(f), 'f', -1, 64), ".0"...), nil
}

// whole reports whether encoding/json writes f as an integer: f has no fraction and is
// below 1e21, from where it writes an exponent (1e+21), which reads as a float already.
func whole(f float64) bool {
	return f == math.Trunc(f) && math.Abs(f) < 1e21
}

// MarkMap is Mark for a map: m with its floats marked, or m itself (nil kept nil) when
// it holds none.
func MarkMap(m map[string]any) map[string]any {
	if v, ok := Mark(m); ok {
		return v.(map[string]any)
	}
	return m
}

// Mark returns v with every float64 and float32 that encoding/json would write as an
// integer replaced by a Whole, inside the maps (map[string]any) and slices ([]any) of v
// at any depth; changed says whether there was one. v itself is never modified: what
// holds a replaced float is copied, and v is returned as it is when nothing changed,
// without allocating. Values of other types are left as they are, floats inside them
// included ([]float64, structs).
func Mark(v any) (marked any, changed bool) {
	switch x := v.(type) {
	case float64:
		if whole(x) {
			return Whole(x), true
		}
	case float32:
		if whole(float64(x)) {
			return Whole(x), true
		}
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			if m, ok := Mark(e); ok {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = m
			}
		}
		if out != nil {
			return out, true
		}
	case []any:
		var out []any
		for i, e := range x {
			if m, ok := Mark(e); ok {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = m
			}
		}
		if out != nil {
			return out, true
		}
	}
	return v, false
}
