package engine

import (
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestScavengeKeepsWhatAnUnreadableEraseMarkMayNotCover: a scavenge that cannot read a
// stream's erase mark (here a closed index; a damaged mark or an I/O error alike) keeps
// the stream's records as they are and stops the segment's rewrite with the error. It
// took the mark for an erasure of everything, as reads do so that erased data is never
// served, and stripped for good the data of events appended after the erasure.
func TestScavengeKeepsWhatAnUnreadableEraseMarkMayNotCover(t *testing.T) {
	x, err := index.Open(t.TempDir(), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := x.NewBatch()
	if err := b.Erase(b.Position()+1, "a", 1); err != nil { // a@0 erased, a@1 not
		t.Fatal(err)
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	if err := x.Flush(); err != nil { // the mark leaves the overlay: Erased reads pebble
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	sc := &scavenger{x: x, states: map[string]index.StreamState{}}
	r := &pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true, Position: 3,
		Event: pmdlog.Event{ID: uuid.New(), Stream: "a", Version: 1, Type: "T", Data: []byte{0x80}}}
	if c := sc.change(r); c != nil {
		t.Fatalf("the scavenge rewrote a@1 (erased %t, data %v) on an erase mark it could not read", c.Erased, c.Event.Data)
	}
	if sc.err == nil {
		t.Fatal("the scavenge went on past an erase mark it could not read")
	}
}
