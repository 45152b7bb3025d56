package pm

import (
	"slices"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestRecordFilter: the filter a subscription record carries is read back canonical;
// one that is not a map of exactly one of stream, category or a list of types is
// malformed (the record is then not the subscription's own); none is a record of an
// earlier version.
func TestRecordFilter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		filter  any // absent when nil
		want    Filter
		present bool
		ok      bool
	}{
		{name: "none", ok: true},
		{name: "stream", filter: map[string]any{"stream": "Order"}, want: Filter{Stream: "Order"}, present: true, ok: true},
		{name: "category", filter: map[string]any{"category": "Order"}, want: Filter{Category: "Order"}, present: true, ok: true},
		{name: "types", filter: map[string]any{"types": []any{"B", "A", "B"}}, want: Filter{Types: []string{"A", "B"}}, present: true, ok: true},
		{name: "a string", filter: "stream Order", present: true},
		{name: "two keys", filter: map[string]any{"stream": "Order", "category": "Order"}, present: true},
		{name: "an unknown key", filter: map[string]any{"streams": "Order"}, present: true},
		{name: "an empty stream", filter: map[string]any{"stream": ""}, present: true},
		{name: "a stream that is no string", filter: map[string]any{"stream": 7}, present: true},
		{name: "no types", filter: map[string]any{"types": []any{}}, present: true},
		{name: "a type that is no string", filter: map[string]any{"types": []any{"A", 1}}, present: true},
		{name: "an empty type", filter: map[string]any{"types": []any{""}}, present: true},
		{name: "types that are no list", filter: map[string]any{"types": "A"}, present: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := pmd.Event{Type: subscriptionPositionType, Data: map[string]any{"position": 1}}
			if tc.filter != nil {
				e.Data["filter"] = tc.filter
			}
			f, present, ok := recordFilter(&e)
			if present != tc.present || ok != tc.ok || ok && !f.equal(tc.want) {
				t.Fatalf("recordFilter = %+v, %v, %v; want %+v, %v, %v", f, present, ok, tc.want, tc.present, tc.ok)
			}
		})
	}
}

// TestFilterRecordRoundTrip: what a record carries reads back as the filter, canonical.
func TestFilterRecordRoundTrip(t *testing.T) {
	for _, f := range []Filter{{Stream: "Order$1"}, {Category: "Order"}, {Types: []string{"B", "A", "A"}}} {
		m := f.record()
		if types, ok := m["types"].([]string); ok {
			list := make([]any, len(types)) // as msgpack hands a list back
			for i, typ := range types {
				list[i] = typ
			}
			m["types"] = list
		}
		e := pmd.Event{Data: map[string]any{"filter": m}}
		got, present, ok := recordFilter(&e)
		if !present || !ok || !got.equal(f.canonical()) {
			t.Errorf("%s read back as %+v, %v, %v", f.describe(), got, present, ok)
		}
	}
}

// TestFilterNarrows: only a types filter that kept a subset of the types narrows.
func TestFilterNarrows(t *testing.T) {
	types := func(ts ...string) Filter { return Filter{Types: ts}.canonical() }
	for _, tc := range []struct {
		now, was Filter
		want     bool
	}{
		{types("A"), types("A", "B"), true},
		{types("A", "B"), types("A", "B"), true},
		{types("A", "C"), types("A", "B"), false},
		{types("A"), Filter{Stream: "A"}, false},
		{Filter{Stream: "A"}, Filter{Stream: "B"}, false},
		{Filter{Category: "A"}, types("A"), false},
	} {
		if got := tc.now.narrows(tc.was); got != tc.want {
			t.Errorf("%s narrows %s: %v, want %v", tc.now.describe(), tc.was.describe(), got, tc.want)
		}
	}
}

// TestCheckpointTypes: a checkpoint's types are a list of strings, or absent (an
// earlier version's checkpoint); anything else makes the record no checkpoint.
func TestCheckpointTypes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		types any // absent when nil
		want  []string
		ok    bool
	}{
		{name: "none", ok: true},
		{name: "a list", types: []any{"Paid", "Packed"}, want: []string{"Paid", "Packed"}, ok: true},
		{name: "an empty list", types: []any{}, want: []string{}, ok: true},
		{name: "a string", types: "Paid"},
		{name: "a list with a number", types: []any{"Paid", 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := map[string]any{"position": 3}
			if tc.types != nil {
				data["types"] = tc.types
			}
			got, ok := checkpointTypes(data)
			if ok != tc.ok || !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("checkpointTypes = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
