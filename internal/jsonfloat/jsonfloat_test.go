package jsonfloat

import (
	"encoding/json"
	"math"
	"testing"
)

func TestMark(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    string
		changed bool
	}{
		{"whole", float64(2), "2.0", true},
		{"negative zero", math.Copysign(0, -1), "-0.0", true},
		{"beyond uint64", 1e20, "100000000000000000000.0", true},
		{"written with an exponent", 1e21, "1e+21", false},
		{"small", 1e-7, "1e-7", false},
		{"fraction", 2.5, "2.5", false},
		{"float32", float32(3), "3.0", true},
		{"integer", int64(2), "2", false},
		{"string", "2", `"2"`, false},
		{"nested", map[string]any{"a": []any{1.5, map[string]any{"b": float64(7)}}, "c": true}, `{"a":[1.5,{"b":7.0}],"c":true}`, true},
		{"nothing to mark", map[string]any{"a": []any{1.5, "x"}, "n": nil}, `{"a":[1.5,"x"],"n":null}`, false},
		{"typed slice left as it is", []float64{2}, "[2]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, changed := Mark(tt.in)
			if changed != tt.changed {
				t.Errorf("changed %v, want %v", changed, tt.changed)
			}
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("written %s, want %s", out, tt.want)
			}
			if after, _ := json.Marshal(tt.in); string(after) != string(before) {
				t.Errorf("the value given was changed: %s, was %s", after, before)
			}
		})
	}
}

// Data with no float to mark, as most events are, is walked without allocating.
func TestMarkAllocatesNothingWhenNothingChanges(t *testing.T) {
	data := map[string]any{"order": "42", "guests": int64(12), "items": []any{map[string]any{"price": 9.5}}}
	if n := testing.AllocsPerRun(100, func() { Mark(data) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
