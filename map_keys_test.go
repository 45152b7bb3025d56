package pmd_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestMapKeysThatAreNotStringsAreRefused: data and metadata decode into maps with string
// keys, so an event holding a map keyed otherwise (a map[int]int in Go data) could never
// be read again: msgpack wrote it, and every read of the event failed as a damaged
// record. Append refuses it, naming the field and the key, and writes nothing; a map
// whose keys are strings, whatever its Go type, is kept.
func TestMapKeysThatAreNotStringsAreRefused(t *testing.T) {
	type counted struct {
		ByDay map[int]int
		Skip  map[int]int `msgpack:"-"`
	}
	type inlined struct{ counted } // msgpack writes the embedded struct's fields as its own
	refused := []struct {
		name     string
		data     map[string]any
		metadata map[string]any
		arg      string
		reason   string
	}{
		{"typed map", map[string]any{"counts": map[int]int{1: 2}}, nil, "events[1].data.counts", "the key 1 is not a string"},
		{"any keys", map[string]any{"groups": map[any][]any{"a": {1}, true: {2}}}, nil, "events[1].data.groups", "the key true is not a string"},
		{"in a list", map[string]any{"lines": []any{map[string]any{}, map[float64]string{1.5: "x"}}}, nil, "events[1].data.lines[1]", "the key 1.5"},
		{"in a struct field", map[string]any{"stats": &counted{ByDay: map[int]int{3: 1}}}, nil, "events[1].data.stats.ByDay", "the key 3"},
		{"in an unexported embedded struct", map[string]any{"stats": inlined{counted{ByDay: map[int]int{4: 1}}}}, nil, "events[1].data.stats.ByDay", "the key 4"},
		{"in the metadata", nil, map[string]any{"seen": map[int64]bool{7: true}}, "events[1].metadata.seen", "the key 7"},
		// msgpack writes a key with a MarshalBinary method as bytes, even with a MarshalText
		// too: it would read back as the raw bytes, not as the text JSON names it by.
		{"uuid keys", map[string]any{"lines": map[uuid.UUID]int{uuid.MustParse("0192f0c1-0000-7000-8000-000000000001"): 1}}, nil,
			"events[1].data.lines", "the key 0192f0c1-0000-7000-8000-000000000001 is not a string"},
		{"byte array keys", map[string]any{"raw": map[[2]byte]int{{'a', 'b'}: 1}}, nil, "events[1].data.raw", "the key [97 98] is not a string"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			checkAppendRefused(t, "Stats$1",
				pmd.EventData{Type: "Fine", Data: map[string]any{"n": 1}},
				pmd.EventData{Type: "Counted", Data: tt.data, Metadata: tt.metadata}, tt.arg, tt.reason)
		})
	}

	type label string
	kept := map[string]any{
		"any keys holding strings": map[any]any{"a": 1},
		"a named string type":      map[label]int{"b": 2},
		"a skipped field":          counted{Skip: map[int]int{1: 1}},
		"keys written as text":     map[textKey]int{{1, 2}: 3},
	}
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Append(ctx, "Stats$2", pmd.Any, pmd.EventData{Type: "Counted", Data: kept}); err != nil {
		t.Fatalf("append: %v", err)
	}
	for e, err := range s.ReadStream(ctx, "Stats$2", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		want := map[string]any{
			"any keys holding strings": map[string]any{"a": int8(1)},
			"a named string type":      map[string]any{"b": int8(2)},
			"a skipped field":          map[string]any{"ByDay": nil},
			"keys written as text":     map[string]any{"1,2": int8(3)},
		}
		if !reflect.DeepEqual(e.Data, want) {
			t.Errorf("read back %#v, want %#v", e.Data, want)
		}
	}
}

// textKey is a map key msgpack writes as a string, by its MarshalText, as encoding/json
// does: such a map reads back, so Append keeps it.
type textKey struct{ X, Y int }

func (k textKey) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%d,%d", k.X, k.Y), nil }
