package engine

import (
	"testing"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
)

// The causation index sees an event's causation_id as its readers do, also in metadata
// that an earlier version wrote with a map whose keys are not strings (DecodeMap reads
// those): else such an event, readable, would be missing from caused-by lookups.
func TestCausationOfMetadataWithKeysThatAreNotStrings(t *testing.T) {
	id := uuid.New()
	for _, meta := range []map[string]any{
		{"causation_id": id.String()},
		{"causation_id": id.String(), "seen": map[int]bool{7: true}},
	} {
		b, err := msgpack.Marshal(meta)
		if err != nil {
			t.Fatal(err)
		}
		if got := CausationOf(b); got != id {
			t.Errorf("CausationOf(%v) = %v, want %v", meta, got, id)
		}
	}
}
