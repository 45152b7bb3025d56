package index

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// Positions of a small log used by the table tests:
//
//	1 event a  Order$1 v0    5 link  Order$1 v2 → 2      9 delete Order$1 (hides v0–v3)
//	2 event b  Cart$1  v0    6 event e  Order   v0      10 event i  Order$1 v4, caused by 4
//	3 event c  Order$2 v0    7 link  Order$1 v3 → 3     11 link  Order$1 v5 → 1
//	4 event d  Order$1 v1,   8 event h  Cart$1  v1      12 event l  Order$2 v1, caused by 1
//	  caused by 1
func smallIndex(t *testing.T) *Index {
	t.Helper()
	x := New()
	steps := []struct {
		want uint64
		got  func() uint64
	}{
		{0, func() uint64 { return x.AddEvent(1, testID(1), "Order$1", "Created") }},
		{0, func() uint64 { return x.AddEvent(2, testID(2), "Cart$1", "Added") }},
		{0, func() uint64 { return x.AddEvent(3, testID(3), "Order$2", "Created") }},
		{1, func() uint64 { v := x.AddEvent(4, testID(4), "Order$1", "Paid"); x.AddCausation(4, 1); return v }},
		{2, func() uint64 { return x.AddLink(5, "Order$1", 2) }},
		{0, func() uint64 { return x.AddEvent(6, testID(6), "Order", "Noted") }},
		{3, func() uint64 { return x.AddLink(7, "Order$1", 3) }},
		{1, func() uint64 { return x.AddEvent(8, testID(8), "Cart$1", "Added") }},
		{0, func() uint64 { x.DeleteStream(9, "Order$1"); return 0 }},
		{4, func() uint64 { v := x.AddEvent(10, testID(10), "Order$1", "Shipped"); x.AddCausation(10, 4); return v }},
		{5, func() uint64 { return x.AddLink(11, "Order$1", 1) }},
		{1, func() uint64 { v := x.AddEvent(12, testID(12), "Order$2", "Paid"); x.AddCausation(12, 1); return v }},
	}
	for i, s := range steps {
		if got := s.got(); got != s.want {
			t.Fatalf("step %d: version %d, want %d", i+1, got, s.want)
		}
	}
	return x
}

func TestVersions(t *testing.T) {
	x := New()
	x.AddEvent(1, testID(1), "Order$1", "Created")
	x.AddEvent(2, testID(2), "Cart$9", "Added")
	x.AddLink(3, "Order$1", 2)
	x.AddEvent(4, testID(4), "Order$1", "Paid")
	x.AddLink(5, "Order$1", 2) // the store forbids it; the index records it all the same
	all := []Entry{{0, 1, false}, {1, 2, true}, {2, 4, false}, {3, 2, true}}
	reversed := slices.Clone(all)
	slices.Reverse(reversed)

	for _, tc := range []struct {
		name     string
		stream   string
		from     uint64
		backward bool
		limit    int
		want     []Entry
	}{
		{"all forward", "Order$1", 0, false, 0, all},
		{"all backward from the end", "Order$1", math.MaxUint64, true, 0, reversed},
		{"forward from the middle", "Order$1", 2, false, 0, all[2:]},
		{"forward from the last", "Order$1", 3, false, 0, all[3:]},
		{"forward from beyond the end", "Order$1", 4, false, 0, nil},
		{"forward limit 1", "Order$1", 1, false, 1, all[1:2]},
		{"forward limit 2", "Order$1", 1, false, 2, all[1:3]},
		{"negative limit is no limit", "Order$1", 0, false, -1, all},
		{"backward from the middle", "Order$1", 2, true, 0, reversed[1:]},
		{"backward from version 0", "Order$1", 0, true, 0, all[:1]},
		{"backward from the last exactly", "Order$1", 3, true, 2, reversed[:2]},
		{"backward from beyond the end is clamped", "Order$1", 99, true, 1, reversed[:1]},
		{"backward limit 1", "Order$1", 1, true, 1, []Entry{all[1]}},
		{"unknown stream forward", "Order$2", 0, false, 0, nil},
		{"unknown stream backward", "Order$2", math.MaxUint64, true, 0, nil},
		{"other stream", "Cart$9", 0, false, 0, []Entry{{0, 2, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := x.Versions(nil, tc.stream, tc.from, tc.backward, tc.limit)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Versions(%q, %d, %v, %d) = %v, want %v", tc.stream, tc.from, tc.backward, tc.limit, got, tc.want)
			}
		})
	}

	t.Run("appends to dst", func(t *testing.T) {
		dst := []Entry{{Version: 42}}
		got := x.Versions(dst, "Order$1", 3, false, 0)
		if want := []Entry{{Version: 42}, all[3]}; !slices.Equal(got, want) {
			t.Fatalf("Versions(dst, …) = %v, want %v", got, want)
		}
	})
}

func TestDeleteHidesVersions(t *testing.T) {
	x := smallIndex(t)
	for _, tc := range []struct {
		stream string
		want   StreamState
	}{
		{"Order$1", StreamState{Exists: true, Last: 5, Next: 6, First: 4}},
		{"Order$2", StreamState{Exists: true, Last: 1, Next: 2, First: 0}},
		{"Cart$1", StreamState{Exists: true, Last: 1, Next: 2, First: 0}},
		{"Nope", StreamState{Exists: false, Last: -1, Next: 0, First: 0}},
	} {
		if got := x.Stream(tc.stream); got != tc.want {
			t.Errorf("Stream(%q) = %+v, want %+v", tc.stream, got, tc.want)
		}
	}
	want := []Entry{{4, 10, false}, {5, 1, true}}
	for _, from := range []uint64{0, 3, 4} {
		if got := x.Versions(nil, "Order$1", from, false, 0); !slices.Equal(got, want) {
			t.Errorf("Versions(Order$1, from %d) = %v, want %v", from, got, want)
		}
	}
	if got := x.Versions(nil, "Order$1", 3, true, 0); len(got) != 0 {
		t.Errorf("Versions(Order$1, from 3, backward) = %v, want only hidden versions, so none", got)
	}

	x.DeleteStream(13, "Order$1")
	if got, want := x.Stream("Order$1"), (StreamState{Exists: false, Last: 5, Next: 6, First: 6}); got != want {
		t.Fatalf("after a second delete Stream = %+v, want %+v", got, want)
	}
	for _, backward := range []bool{false, true} {
		if got := x.Versions(nil, "Order$1", 0, backward, 0); len(got) != 0 {
			t.Fatalf("a deleted stream has versions %v", got)
		}
	}
	if v := x.AddLink(14, "Order$1", 10); v != 6 {
		t.Fatalf("link after delete got version %d, want 6: versions are never reused", v)
	}
	if got, want := x.Versions(nil, "Order$1", 0, false, 0), []Entry{{6, 10, true}}; !slices.Equal(got, want) {
		t.Fatalf("after relinking Versions = %v, want %v", got, want)
	}
	x.DeleteStream(15, "Never$written")
	if got := x.Stream("Never$written"); got != (StreamState{Last: -1}) {
		t.Fatalf("deleting an unknown stream made it %+v", got)
	}
	if x.Position() != 15 {
		t.Fatalf("Position() = %d, want 15", x.Position())
	}
}

func TestContains(t *testing.T) {
	x := smallIndex(t)
	for _, tc := range []struct {
		stream string
		event  uint64
		want   bool
	}{
		{"Order$1", 10, true},  // own, after the delete
		{"Order$1", 1, true},   // hidden as own event, visible again through a link
		{"Order$1", 4, false},  // own, hidden
		{"Order$1", 2, false},  // linked, hidden
		{"Order$1", 11, false}, // the link record, not an event
		{"Order$2", 3, true},
		{"Order$2", 12, true},
		{"Cart$1", 2, true},
		{"Cart$1", 1, false},
		{"Nope", 1, false},
		{"Order$1", math.MaxUint64, false},
	} {
		if got := x.Contains(tc.stream, tc.event); got != tc.want {
			t.Errorf("Contains(%q, %d) = %v, want %v", tc.stream, tc.event, got, tc.want)
		}
	}
}

func TestContainsLongStream(t *testing.T) {
	// Past setThreshold a stream answers from its hash set; check both sides of it, and
	// that a delete empties the set too.
	for _, n := range []int{setThreshold - 1, setThreshold, 3*setThreshold + 7} {
		t.Run(fmt.Sprint(n, " versions"), func(t *testing.T) {
			x := New()
			pos := uint64(0)
			var own, linked []uint64
			for i := range n {
				pos++
				if i%3 == 0 {
					x.AddEvent(pos, testID(pos), "Long", "T")
					own = append(own, pos)
				} else {
					x.AddEvent(pos, testID(pos), "Other", "T")
					pos++
					x.AddLink(pos, "Long", pos-1)
					linked = append(linked, pos-1)
				}
			}
			// A loaded index builds the set from the checkpoint.
			var buf bytes.Buffer
			if _, err := x.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			loaded, err := ReadFrom(&buf)
			if err != nil {
				t.Fatal(err)
			}
			for _, y := range []*Index{x, loaded} {
				for _, p := range append(own, linked...) {
					if !y.Contains("Long", p) {
						t.Fatalf("Contains(Long, %d) = false, want true", p)
					}
				}
				for p := uint64(0); p <= pos+1; p++ {
					if !slices.Contains(own, p) && !slices.Contains(linked, p) && y.Contains("Long", p) {
						t.Fatalf("Contains(Long, %d) = true for an event not in it", p)
					}
				}
			}
			pos++
			x.DeleteStream(pos, "Long")
			for _, p := range append(own, linked...) {
				if x.Contains("Long", p) {
					t.Fatalf("after delete Contains(Long, %d) = true", p)
				}
			}
			pos++
			x.AddLink(pos, "Long", linked[0])
			if !x.Contains("Long", linked[0]) || x.Contains("Long", linked[1]) {
				t.Fatalf("after delete and relink Contains is wrong")
			}
		})
	}
}

func TestLookup(t *testing.T) {
	x := smallIndex(t)
	for _, p := range []uint64{1, 2, 3, 4, 6, 8, 10, 12} {
		if got, ok := x.Lookup(testID(p)); !ok || got != p {
			t.Errorf("Lookup(id of %d) = %d, %v", p, got, ok)
		}
	}
	for _, p := range []uint64{0, 5, 7, 13} {
		if got, ok := x.Lookup(testID(p)); ok {
			t.Errorf("Lookup(unknown id %d) = %d, true", p, got)
		}
	}
	if _, ok := New().Lookup(testID(1)); ok {
		t.Errorf("Lookup in an empty index found something")
	}
}

func TestCategory(t *testing.T) {
	x := smallIndex(t)
	for _, tc := range []struct {
		category string
		from     uint64
		backward bool
		limit    int
		want     []uint64
	}{
		// Order$1, Order$2 and Order (no '$') are all of category Order; links are not in
		// it, deleted events stay.
		{"Order", 0, false, 0, []uint64{1, 3, 4, 6, 10, 12}},
		{"Order", 4, false, 2, []uint64{4, 6}},
		{"Order", 5, false, 0, []uint64{6, 10, 12}},
		{"Order", 13, false, 0, nil},
		{"Order", math.MaxUint64, true, 0, []uint64{12, 10, 6, 4, 3, 1}},
		{"Order", 9, true, 2, []uint64{6, 4}},
		{"Order", 6, true, 1, []uint64{6}},
		{"Order", 0, true, 0, nil},
		{"Cart", 0, false, 0, []uint64{2, 8}},
		{"Order$1", 0, false, 0, nil},
		{"", 0, false, 0, nil},
	} {
		got := x.Category(nil, tc.category, tc.from, tc.backward, tc.limit)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Category(%q, %d, %v, %d) = %v, want %v", tc.category, tc.from, tc.backward, tc.limit, got, tc.want)
		}
	}
}

func TestTypes(t *testing.T) {
	x := smallIndex(t)
	for _, tc := range []struct {
		types    []string
		from     uint64
		backward bool
		limit    int
		want     []uint64
	}{
		{[]string{"Created"}, 0, false, 0, []uint64{1, 3}},
		{[]string{"Created", "Paid"}, 0, false, 0, []uint64{1, 3, 4, 12}},
		{[]string{"Paid", "Created", "Paid", "Nope"}, 0, false, 0, []uint64{1, 3, 4, 12}},
		{[]string{"Created", "Paid", "Added", "Noted", "Shipped"}, 0, false, 0, []uint64{1, 2, 3, 4, 6, 8, 10, 12}},
		{[]string{"Created", "Paid", "Added"}, 3, false, 3, []uint64{3, 4, 8}},
		{[]string{"Created", "Paid", "Added"}, math.MaxUint64, true, 0, []uint64{12, 8, 4, 3, 2, 1}},
		{[]string{"Created", "Paid", "Added"}, 7, true, 2, []uint64{4, 3}},
		{[]string{"Created", "Paid", "Added"}, 0, true, 0, nil},
		{[]string{"Created", "Paid", "Added"}, 13, false, 0, nil},
		{[]string{"Nope"}, 0, false, 0, nil},
		{nil, 0, false, 0, nil},
	} {
		got := x.Types(nil, tc.types, tc.from, tc.backward, tc.limit)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Types(%q, %d, %v, %d) = %v, want %v", tc.types, tc.from, tc.backward, tc.limit, got, tc.want)
		}
	}
}

func TestStreamNames(t *testing.T) {
	// Enough names, added in random order, for the name list to split its chunks many times.
	n := 6 * nameChunk
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("%s$%d", []string{"Order", "Cart", "Orders"}[i%3], i))
	}
	names = append(names, "Order", "", "$sys")
	rng := rand.New(rand.NewPCG(7, 7))
	x := New()
	for i, p := range rng.Perm(len(names)) {
		x.AddEvent(uint64(i+1), testID(uint64(i+1)), names[p], "T")
	}
	x.DeleteStream(uint64(len(names)+1), "Order$3")
	slices.Sort(names)
	for _, tc := range []struct {
		prefix, after string
		limit         int
	}{
		{"", "", 0},
		{"", "", 10},
		{"Order$", "", 0},
		{"Order$", "", 3},
		{"Order$", "Order$2", 5},
		{"Order$", "Order$3", 1},
		{"Order", "", 0},
		{"Order", "Order", 2},
		{"Order$1", "", 0},
		{"Cart$", "Order$", 0},
		{"Order$", "Cart$", 4},
		{"Order$", "Order$999999", 0},
		{"Order$", "Z", 0},
		{"Nope", "", 0},
		{"$", "", 0},
		{"", "Orders$99", 7},
	} {
		var want []StreamInfo
		for _, name := range names {
			if len(want) == tc.limit && tc.limit > 0 {
				break
			}
			if len(name) >= len(tc.prefix) && name[:len(tc.prefix)] == tc.prefix && name > tc.after {
				want = append(want, StreamInfo{Name: name, StreamState: x.Stream(name)})
			}
		}
		if got := x.StreamNames(tc.prefix, tc.after, tc.limit); !slices.Equal(got, want) {
			t.Errorf("StreamNames(%q, %q, %d) = %d names %v…, want %d", tc.prefix, tc.after, tc.limit, len(got), got[:min(3, len(got))], len(want))
		}
	}
	got := x.StreamNames("Order$3", "", 1)
	if len(got) != 1 || got[0].Name != "Order$3" || got[0].Exists || got[0].Last != 0 {
		t.Errorf("a deleted stream is listed as %+v, want Order$3 with Exists false, Last 0", got)
	}
	if got := New().StreamNames("", "", 0); len(got) != 0 {
		t.Errorf("an empty index lists %v", got)
	}
}

func TestStats(t *testing.T) {
	got := smallIndex(t).Stats()
	want := Stats{Streams: 4, Events: 8, Links: 3, Categories: 2, Types: 5}
	if got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
	if got := New().Stats(); got != (Stats{}) {
		t.Fatalf("Stats() of a new index = %+v", got)
	}
}

func TestLinkOnlyStreamHasNoCategory(t *testing.T) {
	x := New()
	x.AddEvent(1, testID(1), "Order$1", "Created")
	x.AddLink(2, "Process$1", 1)
	if got := x.Stats().Categories; got != 1 {
		t.Fatalf("Stats().Categories = %d, want 1: links add no event to a category", got)
	}
	if got := x.Category(nil, "Process", 0, false, 0); len(got) != 0 {
		t.Fatalf("Category(Process) = %v, want none", got)
	}
	x.AddEvent(3, testID(3), "Process$1", "Issued")
	if got := x.Category(nil, "Process", 0, false, 0); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("Category(Process) = %v, want [3]", got)
	}
}

func TestCategoryOf(t *testing.T) {
	for _, tc := range []struct{ stream, want string }{
		{"Order$42", "Order"},
		{"Order$42$x", "Order"},
		{"Order", "Order"},
		{"$all", ""},
		{"Order$", "Order"},
		{"", ""},
	} {
		if got := CategoryOf(tc.stream); got != tc.want {
			t.Errorf("CategoryOf(%q) = %q, want %q", tc.stream, got, tc.want)
		}
	}
}

func TestWritersRefusePositionsOutOfOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(x *Index)
	}{
		{"AddEvent at the same position", func(x *Index) { x.AddEvent(5, testID(99), "s", "T") }},
		{"AddLink below", func(x *Index) { x.AddLink(4, "s", 1) }},
		{"DeleteStream at the same position", func(x *Index) { x.DeleteStream(5, "s") }},
		{"Advance below", func(x *Index) { x.Advance(1) }},
		{"AddEvent above MaxPosition", func(x *Index) { x.AddEvent(MaxPosition+1, testID(99), "s", "T") }},
		{"AddLink to above MaxPosition", func(x *Index) { x.AddLink(6, "s", MaxPosition+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := New()
			x.AddEvent(1, testID(1), "s", "T")
			x.Advance(5)
			before := x.Stats()
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
				if x.Position() != 5 || x.Stats() != before {
					t.Fatalf("the refused record changed the index: position %d, %+v", x.Position(), x.Stats())
				}
			}()
			tc.write(x)
		})
	}
}

func TestReadersDoNotMutate(t *testing.T) {
	// Readers share the store's read lock: with the race detector on, any write they made
	// to shared state would fail this test.
	rng := rand.New(rand.NewPCG(3, 3))
	x, m := New(), newModel()
	workload(t, rng, m, 1500, x)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				e := m.events[(g*200+i)%len(m.events)]
				x.Stream(e.stream)
				x.Versions(nil, e.stream, 0, i%2 == 0, 5)
				x.Contains("Long$1", e.pos)
				x.Contains(e.stream, e.pos)
				x.Lookup(e.id)
				x.Category(nil, CategoryOf(e.stream), e.pos, i%2 == 1, 5)
				x.Types(nil, []string{e.kind, "Paid", "Noted"}, e.pos, i%2 == 0, 5)
				x.StreamNames("Order$", e.stream, 5)
				x.LinkedInto(nil, e.pos)
				x.Caused(nil, e.pos, i%3)
				x.Stats()
				x.Position()
			}
		}()
	}
	wg.Wait()
}
