package pmd

import (
	"encoding/json"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Before Append refused them, data could hold maps whose keys are not strings (a
// map[int]int from Go, a config's groupBy over numbers), and msgpack wrote them as they
// were. Such a record must still read, its keys as strings, as JSON would name them:
// failing it as damaged stopped every reader of $all and of its stream at it, and a
// process manager at every start.
func TestDecodeMapKeysThatAreNotStrings(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string]any
		want string
	}{
		{"int keys", map[string]any{"by_size": map[int]int{1: 2}}, `{"by_size":{"1":2}}`},
		{"in a list", map[string]any{"l": []any{map[int8]string{-3: "x"}}}, `{"l":[{"-3":"x"}]}`},
		{"nested", map[string]any{"a": map[string]any{"b": map[uint64]bool{7: true}}}, `{"a":{"b":{"7":true}}}`},
		{"bool and float keys", map[string]any{"m": map[any]int{true: 1, 1.5: 2}}, `{"m":{"1.5":2,"true":1}}`},
		{"string keys as before", map[string]any{"s": map[string]int{"k": 1}}, `{"s":{"k":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := msgpack.Marshal(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeMap(b)
			if err != nil {
				t.Fatalf("decodeMap: %v", err)
			}
			got, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("decoded %s, want %s", got, tc.want)
			}
		})
	}
}

// Bytes that are not a msgpack map still fail: a damaged record stays damaged.
func TestDecodeMapDamaged(t *testing.T) {
	b, err := msgpack.Marshal(map[string]any{"by_size": map[int]int{1: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], {0xc1}, {0x81, 0xa1, 'k'}} {
		if m, err := decodeMap(bad); err == nil {
			t.Errorf("decodeMap(% x) = %v, want an error", bad, m)
		}
	}
}
