package index

import (
	"testing"

	"github.com/google/uuid"
)

// TestAddGoneKeepsTheIDTaken: the gone record of a scavenged event gives an index built
// from the scavenged log what the index that saw the event die holds of it: LookupAny
// finds its id, Lookup does not, it is dead, and Counts counts it; from the overlay and
// from the disk after a flush and a reopen alike.
func TestAddGoneKeepsTheIDTaken(t *testing.T) {
	dir := t.TempDir()
	x := openTest(t, dir)
	applyEvents(t, x, 1, 2)
	b := x.NewBatch()
	if err := b.AddGone(3, testID(3)); err != nil {
		t.Fatal(err)
	}
	if err := b.Advance(4); err != nil { // a link's gone record, no id
		t.Fatal(err)
	}
	if pos, ok, err := b.Lookup(testID(3)); err != nil || !ok || pos != 3 {
		t.Fatalf("the batch's Lookup = %d, %t, %v; want 3 before Apply", pos, ok, err)
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if pos, ok, err := x.LookupAny(testID(3)); err != nil || !ok || pos != 3 {
			t.Errorf("%s: LookupAny = %d, %t, %v; want 3", when, pos, ok, err)
		}
		if _, ok, err := x.Lookup(testID(3)); err != nil || ok {
			t.Errorf("%s: Lookup = %t, %v; want not found (dead)", when, ok, err)
		}
		if dead, err := x.Dead(3); err != nil || !dead {
			t.Errorf("%s: Dead(3) = %t, %v; want dead", when, dead, err)
		}
		if st, err := x.Stream("S$1"); err != nil || st.Next != 2 {
			t.Errorf("%s: S$1 = %+v, %v; want next version 2, the gone record touching no stream", when, st, err)
		}
		if x.Position() != 4 {
			t.Errorf("%s: Position = %d, want 4", when, x.Position())
		}
	}
	check("applied")
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openTest(t, dir)
	check("reopened")
}

func TestAddGoneRefuses(t *testing.T) {
	x := openTest(t, t.TempDir())
	applyEvents(t, x, 1, 2)
	for _, tc := range []struct {
		name string
		pos  uint64
		id   uuid.UUID
	}{
		{"no id", 3, uuid.Nil},
		{"a position already recorded", 2, testID(9)},
		{"above MaxPosition", MaxPosition + 1, testID(9)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := x.NewBatch()
			if err := b.AddGone(tc.pos, tc.id); err == nil {
				t.Fatalf("AddGone(%d, %s) accepted", tc.pos, tc.id)
			}
			b.Discard()
		})
	}
}
