package engine

import (
	"testing"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
)

// Metadata that earlier versions wrote with a map whose keys are not strings reads back
// now (DecodeMap), but names no cause to the causation index, as for every index built
// before: a rebuilt index (pmd verify compares one with the live index) and cluster nodes
// of both versions must agree.
func TestCausationOfMetadataWithKeysThatAreNotStrings(t *testing.T) {
	id := uuid.New()
	for _, tc := range []struct {
		meta map[string]any
		want uuid.UUID
	}{
		{map[string]any{"causation_id": id.String()}, id},
		{map[string]any{"causation_id": id.String(), "seen": map[int]bool{7: true}}, uuid.Nil},
	} {
		b, err := msgpack.Marshal(tc.meta)
		if err != nil {
			t.Fatal(err)
		}
		if got := CausationOf(b); got != tc.want {
			t.Errorf("CausationOf(%v) = %v, want %v", tc.meta, got, tc.want)
		}
		if m, err := DecodeMap(b); err != nil || m["causation_id"] != id.String() {
			t.Errorf("DecodeMap(%v) = %v, %v: the event's readers see its causation_id", tc.meta, m, err)
		}
	}
}
