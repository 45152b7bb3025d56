package engine

import (
	"testing"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
)

func TestCausationOf(t *testing.T) {
	parent := uuid.MustParse("0b7f3c52-2a5e-4c1f-9d3a-6f0e8b1c2d4e")
	enc := func(m map[string]any) []byte {
		b, err := msgpack.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		meta []byte
		want uuid.UUID
	}{
		{"no metadata", nil, uuid.Nil},
		{"no causation", enc(map[string]any{"user": "ann"}), uuid.Nil},
		{"causation", enc(map[string]any{"causation_id": parent.String(), "user": "ann"}), parent},
		{"braced form", enc(map[string]any{"causation_id": "{" + parent.String() + "}"}), parent},
		{"not a UUID", enc(map[string]any{"causation_id": "order-1"}), uuid.Nil},
		{"not a string", enc(map[string]any{"causation_id": 42}), uuid.Nil},
		{"nested", enc(map[string]any{"trace": map[string]any{"causation_id": parent.String()}}), uuid.Nil},
		{"not msgpack", []byte("causation_id" + parent.String()), uuid.Nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CausationOf(tc.meta); got != tc.want {
				t.Fatalf("CausationOf = %v, want %v", got, tc.want)
			}
		})
	}
}
