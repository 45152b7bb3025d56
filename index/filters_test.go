package index

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// The bottom level's tables are written without bloom filters: pebble never reads them
// (a Get, and an iterator without UseL6Filters, skip L6's filter blocks), so building
// them was CPU on every compaction into L6 and bytes on disk for nothing. The tables
// above it keep theirs: lookups of ids and of streams that are not there skip them
// (bench/README.md, session 24).
func TestBottomLevelHasNoFilters(t *testing.T) {
	x := openTest(t, t.TempDir())
	ids := make([]uuid.UUID, 0, 600)
	pos := uint64(0)
	// Three hand-offs of the same streams: their tables overlap, so the compaction
	// below merges them into new tables of L6 (a lone table would only be moved there).
	handOff := func() {
		t.Helper()
		b := x.NewBatch()
		for i := range 200 {
			pos++
			id := uuid.New()
			ids = append(ids, id)
			if _, err := b.AddEvent(pos, id, fmt.Sprintf("Order-%d", i%20), "OrderPlaced"); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.Apply(b); err != nil {
			t.Fatal(err)
		}
		if err := x.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	handOff()
	handOff()
	if err := x.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	handOff()

	tables, err := x.db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	bottom := len(tables) - 1
	if len(tables[bottom]) == 0 || len(tables[0]) == 0 {
		t.Fatalf("want tables in L0 and L%d, got %d and %d", bottom, len(tables[0]), len(tables[bottom]))
	}
	for _, tb := range tables[bottom] {
		if tb.Properties.FilterPolicyName != "" || tb.Properties.FilterSize != 0 {
			t.Errorf("table %s of L%d has a filter %q of %d bytes, want none", tb.FileNum, bottom, tb.Properties.FilterPolicyName, tb.Properties.FilterSize)
		}
	}
	for _, tb := range tables[0] {
		if tb.Properties.FilterPolicyName == "" {
			t.Errorf("table %s of L0 has no filter, want a bloom filter", tb.FileNum)
		}
	}

	// Lookups go on through both levels, for what is there and what is not.
	for i, id := range ids {
		got, ok, err := x.Lookup(id)
		if err != nil || !ok || got != uint64(i+1) {
			t.Fatalf("Lookup(%s) = %d, %v, %v, want %d", id, got, ok, err, i+1)
		}
	}
	if _, ok, err := x.Lookup(uuid.New()); err != nil || ok {
		t.Fatalf("Lookup of an id never added = %v, %v, want not found", ok, err)
	}
	st, err := x.Stream("Order-3")
	if err != nil || st.Next != 30 {
		t.Fatalf("Stream(Order-3) = %+v, %v, want Next 30", st, err)
	}
	if st, err := x.Stream("Order-never"); err != nil || st.Exists {
		t.Fatalf("Stream(Order-never) = %+v, %v, want none", st, err)
	}
}
