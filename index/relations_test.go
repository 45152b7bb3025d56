package index

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// relationsLog is a log whose event 1 goes through every way a link can be shown or
// hidden:
//
//	1 event  A$1         5 link   2 → P$1        9 delete A$1 (hides 1 there)
//	2 event  B$1         6 delete P$1            10 link  1 → A$1, back into its own stream
//	3 link   1 → P$1     7 link   1 → R$1        11 delete Q$1
//	4 link   1 → Q$1     8 link   1 → P$1 again
func relationsLog() []func(x *Index) {
	return []func(x *Index){
		func(x *Index) { x.AddEvent(1, testID(1), "A$1", "T") },
		func(x *Index) { x.AddEvent(2, testID(2), "B$1", "T") },
		func(x *Index) { x.AddLink(3, "P$1", 1) },
		func(x *Index) { x.AddLink(4, "Q$1", 1) },
		func(x *Index) { x.AddLink(5, "P$1", 2) },
		func(x *Index) { x.DeleteStream(6, "P$1") },
		func(x *Index) { x.AddLink(7, "R$1", 1) },
		func(x *Index) { x.AddLink(8, "P$1", 1) },
		func(x *Index) { x.DeleteStream(9, "A$1") },
		func(x *Index) { x.AddLink(10, "A$1", 1) },
		func(x *Index) { x.DeleteStream(11, "Q$1") },
	}
}

func TestLinkedInto(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records int // of relationsLog
		event   uint64
		want    []string
	}{
		{"never linked", 2, 1, nil},
		{"linked once", 3, 1, []string{"P$1"}},
		{"in link order", 4, 1, []string{"P$1", "Q$1"}},
		{"another event's links are its own", 5, 2, []string{"P$1"}},
		{"a deletion hides the links into its stream", 6, 1, []string{"Q$1"}},
		{"of every event linked there", 6, 2, nil},
		{"later links come after", 7, 1, []string{"Q$1", "R$1"}},
		{"linked again after the deletion: once, at its last link", 8, 1, []string{"Q$1", "R$1", "P$1"}},
		{"the other event stays hidden", 8, 2, nil},
		{"deleting the own stream hides no link", 9, 1, []string{"Q$1", "R$1", "P$1"}},
		{"linked back into its own stream", 10, 1, []string{"Q$1", "R$1", "P$1", "A$1"}},
		{"a deletion of the first stream", 11, 1, []string{"R$1", "P$1", "A$1"}},
		{"a link record is not an event", 11, 3, nil},
		{"position 0", 11, 0, nil},
		{"beyond the log", 11, 12, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := New()
			for _, rec := range relationsLog()[:tc.records] {
				rec(x)
			}
			loaded := mustRead(t, encoded(t, x))
			for name, y := range map[string]*Index{"index": x, "loaded from its checkpoint": loaded} {
				if got := y.LinkedInto(nil, tc.event); !slices.Equal(got, tc.want) {
					t.Errorf("%s: LinkedInto(%d) = %q, want %q", name, tc.event, got, tc.want)
				}
			}
		})
	}
	t.Run("appends to dst", func(t *testing.T) {
		x := New()
		for _, rec := range relationsLog() {
			rec(x)
		}
		dst := []string{"R$1", "kept"}
		got := x.LinkedInto(dst[:1], 1)
		if want := []string{"R$1", "R$1", "P$1", "A$1"}; !slices.Equal(got, want) {
			t.Fatalf("LinkedInto(dst, 1) = %q, want %q: dst's own entries are not its concern", got, want)
		}
	})
}

func TestLinkedIntoLongStream(t *testing.T) {
	// Past setThreshold visibility comes from the stream's hash set.
	x := New()
	pos := uint64(0)
	for range setThreshold + 10 {
		pos++
		x.AddEvent(pos, testID(pos), "Order$1", "T")
		pos++
		x.AddLink(pos, "All$orders", pos-1)
	}
	if got := x.LinkedInto(nil, 3); !slices.Equal(got, []string{"All$orders"}) {
		t.Fatalf("LinkedInto(3) = %q, want [All$orders]", got)
	}
	x.DeleteStream(pos+1, "All$orders")
	if got := x.LinkedInto(nil, 3); len(got) != 0 {
		t.Fatalf("after the deletion LinkedInto(3) = %q, want none", got)
	}
}

// causationLog is a causation chain and a fan-out:
//
//	1 event (root)          4 event, caused by 1        7 event, caused by 1
//	2 event, caused by 1    5 link 2 → Q$1
//	3 event, caused by 2    6 event, no parent
func causationLog(x *Index) {
	x.AddEvent(1, testID(1), "Order$1", "Placed")
	x.AddEvent(2, testID(2), "Kitchen$1", "Cook")
	x.AddCausation(2, 1)
	x.AddEvent(3, testID(3), "Kitchen$1", "Cooked")
	x.AddCausation(3, 2)
	x.AddEvent(4, testID(4), "Order$1", "Paid")
	x.AddCausation(4, 1)
	x.AddLink(5, "Q$1", 2)
	x.AddEvent(6, testID(6), "Other$1", "T")
	x.AddEvent(7, testID(7), "Order$1", "Shipped")
	x.AddCausation(7, 1)
}

func TestCaused(t *testing.T) {
	x := New()
	causationLog(x)
	x.DeleteStream(8, "Kitchen$1") // a deletion changes no causation
	loaded := mustRead(t, encoded(t, x))
	for _, tc := range []struct {
		name  string
		event uint64
		limit int
		want  []uint64
	}{
		{"fan-out, in log order", 1, 0, []uint64{2, 4, 7}},
		{"limit", 1, 2, []uint64{2, 4}},
		{"limit 1", 1, 1, []uint64{2}},
		{"negative limit is no limit", 1, -1, []uint64{2, 4, 7}},
		{"limit above the count", 1, 10, []uint64{2, 4, 7}},
		{"a link in the chain", 2, 0, []uint64{3}},
		{"a deleted stream's event", 3, 0, nil},
		{"caused nothing", 6, 0, nil},
		{"a link record", 5, 0, nil},
		{"position 0", 0, 0, nil},
		{"beyond the log", 9, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, y := range map[string]*Index{"index": x, "loaded from its checkpoint": loaded} {
				if got := y.Caused(nil, tc.event, tc.limit); !slices.Equal(got, tc.want) {
					t.Errorf("%s: Caused(%d, %d) = %v, want %v", name, tc.event, tc.limit, got, tc.want)
				}
			}
		})
	}
	if got := x.Caused([]uint64{42}, 1, 2); !slices.Equal(got, []uint64{42, 2, 4}) {
		t.Fatalf("Caused(dst, 1, 2) = %v, want [42 2 4]", got)
	}
}

func TestAddCausationRefuses(t *testing.T) {
	two := func(x *Index) {
		x.AddEvent(1, testID(1), "s", "T")
		x.AddEvent(2, testID(2), "s", "T")
	}
	for _, tc := range []struct {
		name    string
		setup   func(x *Index)
		refused func(x *Index)
	}{
		{"an empty index", func(*Index) {}, func(x *Index) { x.AddCausation(1, 0) }},
		{"of a position that is no event", two, func(x *Index) { x.AddCausation(5, 1) }},
		{"of an event not the last", two, func(x *Index) { x.AddCausation(1, 0) }},
		{"of a link record", func(x *Index) { two(x); x.AddLink(3, "L", 1) }, func(x *Index) { x.AddCausation(3, 1) }},
		{"by a later position", two, func(x *Index) { x.AddCausation(2, 3) }},
		{"by itself", two, func(x *Index) { x.AddCausation(2, 2) }},
		{"a second parent", func(x *Index) { two(x); x.AddCausation(2, 1) }, func(x *Index) { x.AddCausation(2, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := New()
			tc.setup(x)
			before := encoded(t, x)
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
				if !bytes.Equal(encoded(t, x), before) {
					t.Fatal("the refused causation changed the index")
				}
			}()
			tc.refused(x)
		})
	}
}

func TestRelationsAfterReload(t *testing.T) {
	// A loaded index takes more relations like the one it was saved from: lists go on
	// where they stopped.
	x := New()
	causationLog(x)
	x.AddLink(8, "R$1", 2)
	y := mustRead(t, encoded(t, x))
	for _, z := range []*Index{x, y} {
		z.AddEvent(9, testID(9), "Order$1", "Closed")
		z.AddCausation(9, 1)
		z.AddLink(10, "S$1", 2)
	}
	if !bytes.Equal(encoded(t, x), encoded(t, y)) {
		t.Fatal("after the same records the loaded index encodes to other bytes")
	}
	for _, z := range []*Index{x, y} {
		if got, want := z.Caused(nil, 1, 0), []uint64{2, 4, 7, 9}; !slices.Equal(got, want) {
			t.Fatalf("Caused(1) = %v, want %v", got, want)
		}
		if got, want := z.LinkedInto(nil, 2), []string{"Q$1", "R$1", "S$1"}; !slices.Equal(got, want) {
			t.Fatalf("LinkedInto(2) = %q, want %q", got, want)
		}
	}
}

func TestManyRelations(t *testing.T) {
	// Enough keys and values to grow the tables several times, for one key and for many.
	x, m := New(), newModel()
	const n = 3000
	for pos := uint64(1); pos <= n; pos++ {
		x.AddEvent(pos, testID(pos), fmt.Sprint("s$", pos%7), "T")
		m.addEvent(pos, testID(pos), fmt.Sprint("s$", pos%7), "T")
		if pos > 1 {
			parent := 1 + (pos-1)%(1+pos/100) // early events cause many, later ones a few
			x.AddCausation(pos, parent)
			m.addCausation(pos, parent)
		}
	}
	for i := uint64(0); i < n; i++ {
		event := 1 + i*i%n
		stream := fmt.Sprint("l$", i%13)
		if !m.contains(stream, event) {
			x.AddLink(n+1+i, stream, event)
			m.addLink(n+1+i, stream, event)
		} else {
			x.Advance(n + 1 + i)
			m.pos = n + 1 + i
		}
	}
	checkRelations(t, x, m)
	y := mustRead(t, encoded(t, x))
	checkRelations(t, y, m)
	if !bytes.Equal(encoded(t, y), encoded(t, x)) {
		t.Fatal("the loaded index re-encodes to other bytes")
	}
}
