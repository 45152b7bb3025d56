package index

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestDiffSubsetAcceptsOnlyInvisibleExtras: DiffSubset lets the live index x hold an entry
// the index y rebuilt from the log lacks only where no read looks, as a scavenge leaves
// them: a version or membership below its stream's first visible version, an entry of an
// event x marks dead, the dead mark of an event the log no longer holds, a link whose
// version its stream hides, the causation of a dead or erased event. Any other extra
// entry is a difference: it accepted every one, so that a membership of a visible
// version the log never wrote (Contains true, pm taking a fact for linked already) passed.
func TestDiffSubsetAcceptsOnlyInvisibleExtras(t *testing.T) {
	// build writes, into x and y alike:
	//
	//	1  S$1 v0, the event 1
	//	2  T$1 v0
	//	3  G$1 v0, caused by 1: dead at 5
	//	4  link of 2 into G$1 v1: hidden at 5, 2 lives on in T$1
	//	5  deletion of G$1
	//	6  R$1 v0: dead at 8
	//	7  R$1 v1, caused by 6
	//	8  retention of R$1, truncate before 1
	//	9  E$1 v0, caused by 1: erased at 10
	//	10 erasure of E$1 below 1
	//	11 S$1 v1, caused by 2
	//	12 link of 1 into U$1 v0
	build := func(t *testing.T, x *Index) {
		b := x.NewBatch()
		event := func(pos uint64, stream string, parent uint64) {
			t.Helper()
			if _, err := b.AddEvent(pos, testID(pos), stream, "E"); err != nil {
				t.Fatal(err)
			}
			if parent > 0 {
				if err := b.AddCausation(pos, parent); err != nil {
					t.Fatal(err)
				}
			}
		}
		link := func(pos uint64, stream string, event uint64) {
			t.Helper()
			if _, err := b.AddLink(pos, stream, event); err != nil {
				t.Fatal(err)
			}
		}
		event(1, "S$1", 0)
		event(2, "T$1", 0)
		event(3, "G$1", 1)
		link(4, "G$1", 2)
		if err := b.DeleteStream(5, "G$1"); err != nil {
			t.Fatal(err)
		}
		event(6, "R$1", 0)
		event(7, "R$1", 6)
		if err := b.SetRetention(8, "R$1", Retention{TruncateBefore: 1}, 0); err != nil {
			t.Fatal(err)
		}
		event(9, "E$1", 1)
		if err := b.Erase(10, "E$1", 1); err != nil {
			t.Fatal(err)
		}
		event(11, "S$1", 2)
		link(12, "U$1", 1)
		if err := x.Apply(b); err != nil {
			t.Fatal(err)
		}
		if err := x.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	version := func(stream string, v uint64) []byte { return namedKey(nil, spaceVersion, stream, v) }
	member := func(stream string, pos uint64) []byte { return namedKey(nil, spaceMember, stream, pos) }
	id := func(pos uint64) []byte { return idKey(nil, testID(pos)) }
	category := func(name string, pos uint64) []byte { return namedKey(nil, spaceCategory, name, pos) }
	typ := func(pos uint64) []byte { return namedKey(nil, spaceType, "E", pos) }
	linked := func(event, link uint64) []byte { return pairKey(nil, spaceLinked, event, link) }
	caused := func(parent, child uint64) []byte { return pairKey(nil, spaceCaused, parent, child) }
	dead := func(pos uint64) []byte { return deadKey(nil, pos) }
	// What a scavenge removes with the record of the dead event 3: y, rebuilt without it,
	// has none of them.
	event3 := [][]byte{version("G$1", 0), member("G$1", 3), id(3), category("G", 3), typ(3), caused(1, 3), dead(3)}

	type set struct{ k, v []byte }
	for _, tc := range []struct {
		name  string
		extra []set    // written into x only
		drop  [][]byte // removed from y
		want  bool     // a difference
	}{
		// The reviewer's case: a membership of a version S$1 shows.
		{name: "membership of a visible version", extra: []set{{member("S$1", 2), appendUvs(nil, 0)}}, want: true},
		{name: "membership of a visible link", drop: [][]byte{member("U$1", 1)}, want: true},
		{name: "membership below the first visible version", drop: [][]byte{member("G$1", 2)}},
		{name: "membership below a retention floor", drop: [][]byte{member("R$1", 6)}},
		{name: "visible version", drop: [][]byte{version("S$1", 1)}, want: true},
		{name: "version at the next version", extra: []set{{version("S$1", 2), appendUvs(nil, 2<<1)}}, want: true},
		{name: "version of a deleted stream", drop: [][]byte{version("G$1", 0)}},
		{name: "link version of a deleted stream", drop: [][]byte{version("G$1", 1)}},
		{name: "version below a retention floor", drop: [][]byte{version("R$1", 0)}},
		{name: "state of a stream", drop: [][]byte{stateKey(nil, "G$1")}, want: true},
		{name: "id of a live event", drop: [][]byte{id(2)}, want: true},
		{name: "id of a dead event", drop: [][]byte{id(6)}},
		{name: "category of a live event", drop: [][]byte{category("S", 11)}, want: true},
		{name: "category of a dead event", drop: [][]byte{category("G", 3)}},
		{name: "type of a live event", drop: [][]byte{typ(7)}, want: true},
		{name: "type of a dead event", drop: [][]byte{typ(3)}},
		{name: "visible link", drop: [][]byte{linked(1, 12)}, want: true},
		{name: "hidden link of a live event", drop: [][]byte{linked(2, 4)}},
		{name: "causation of a live event", drop: [][]byte{caused(2, 11)}, want: true},
		{name: "causation of a dead event", drop: [][]byte{caused(1, 3)}},
		{name: "causation by a dead event", drop: [][]byte{caused(6, 7)}},
		{name: "causation of an erased event", drop: [][]byte{caused(1, 9)}},
		{name: "dead mark of an event the log holds", drop: [][]byte{dead(3)}, want: true},
		{name: "dead mark of an event the log lacks", drop: event3},
		{name: "an event the log lacks", drop: event3[:len(event3)-1]},
		{name: "erasure", drop: [][]byte{nameKey(nil, spaceErased, "E$1")}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := openTest(t, t.TempDir()), openTest(t, t.TempDir())
			build(t, x)
			build(t, y)
			for _, e := range tc.extra {
				if err := x.db.Set(e.k, e.v, pebble.NoSync); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range tc.drop {
				if _, closer, err := y.db.Get(k); err != nil {
					t.Fatalf("y has no %s to drop: %v", describeKey(k), err)
				} else {
					closer.Close()
				}
				if err := y.db.Delete(k, pebble.NoSync); err != nil {
					t.Fatal(err)
				}
			}
			if err := x.Diff(y); err == nil {
				t.Fatalf("Diff = nil; want the difference the case makes")
			}
			err := x.DiffSubset(y)
			if got := err != nil; got != tc.want {
				t.Fatalf("DiffSubset = %v; want a difference: %v", err, tc.want)
			}
		})
	}
}
