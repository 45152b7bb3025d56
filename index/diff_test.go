package index

import (
	"errors"
	"testing"
)

func TestDiffEqual(t *testing.T) {
	x := smallIndex(t)
	for name, y := range map[string]*Index{
		"itself":         x,
		"built the same": smallIndex(t),
		"reloaded":       mustRead(t, encoded(t, x)),
	} {
		if err := x.Diff(y); err != nil {
			t.Errorf("%s: Diff = %v, want nil", name, err)
		}
		if err := y.Diff(x); err != nil {
			t.Errorf("%s, reversed: Diff = %v, want nil", name, err)
		}
	}
}

// TestDiff: every kind of difference is found on its own, the indexes agreeing on
// everything Diff checks before it.
func TestDiff(t *testing.T) {
	type log = []func(x *Index)
	ev := func(pos uint64, stream, typ string) func(*Index) {
		return func(x *Index) { x.AddEvent(pos, testID(pos), stream, typ) }
	}
	link := func(pos uint64, stream string, event uint64) func(*Index) {
		return func(x *Index) { x.AddLink(pos, stream, event) }
	}
	del := func(pos uint64, stream string) func(*Index) {
		return func(x *Index) { x.DeleteStream(pos, stream) }
	}
	cause := func(child, parent uint64) func(*Index) {
		return func(x *Index) { x.AddCausation(child, parent) }
	}
	for _, tc := range []struct {
		name string
		x, y log
		want DiffError
	}{
		{"position", log{ev(1, "A", "T"), func(x *Index) { x.Advance(2) }}, log{ev(1, "A", "T")},
			DiffError{"position", "", "2", "1"}},
		{"counts", log{ev(1, "A", "T"), ev(2, "A", "T")}, log{ev(1, "A", "T"), func(x *Index) { x.Advance(2) }},
			DiffError{"counts", "", "{Streams:1 Events:2 Links:0 Categories:1 Types:1}", "{Streams:1 Events:1 Links:0 Categories:1 Types:1}"}},
		{"stream only in x", log{ev(1, "A", "T")}, log{ev(1, "B", "T")},
			DiffError{"stream", `"A"`, "present", "absent"}},
		{"stream only in y", log{ev(1, "B", "T")}, log{ev(1, "A", "T")},
			DiffError{"stream", `"A"`, "absent", "present"}},
		{"stream state", log{ev(1, "A", "T"), del(2, "A")}, log{ev(1, "A", "T"), func(x *Index) { x.Advance(2) }},
			DiffError{"stream", `"A"`, "{Exists:false Last:0 Next:1 First:1}", "{Exists:true Last:0 Next:1 First:0}"}},
		{"stream versions", log{ev(1, "A", "T"), ev(2, "A", "T"), link(3, "A", 1)}, log{ev(1, "A", "T"), ev(2, "A", "T"), link(3, "A", 2)},
			DiffError{"stream", `"A"`, "version 2 links position 1", "version 2 links position 2"}},
		{"event id", log{ev(1, "A", "T")}, log{func(x *Index) { x.AddEvent(1, testID(9), "A", "T") }},
			DiffError{"event", "number 0", testID(1).String() + " at position 1", testID(9).String() + " at position 1"}},
		{"category", log{ev(1, "A$1", "T"), ev(2, "B$1", "T"), del(3, "A$1"), del(4, "B$1")},
			log{ev(1, "B$1", "T"), ev(2, "A$1", "T"), del(3, "A$1"), del(4, "B$1")},
			DiffError{"category", `"A"`, "event 0 at position 1", "event 0 at position 2"}},
		{"type", log{ev(1, "A", "T"), ev(2, "A", "U")}, log{ev(1, "A", "U"), ev(2, "A", "T")},
			DiffError{"type", `"T"`, "event 0 at position 1", "event 0 at position 2"}},
		{"links", log{ev(1, "A", "T"), ev(2, "A", "T"), link(3, "P", 1), link(4, "Q", 2), del(5, "P"), del(6, "Q")},
			log{ev(1, "A", "T"), ev(2, "A", "T"), link(3, "P", 2), link(4, "Q", 1), del(5, "P"), del(6, "Q")},
			DiffError{"links of event", "1", "[P]", "[Q]"}},
		{"causation", log{ev(1, "A", "T"), ev(2, "A", "T"), cause(2, 1), ev(3, "A", "T")},
			log{ev(1, "A", "T"), ev(2, "A", "T"), ev(3, "A", "T"), cause(3, 1)},
			DiffError{"caused by event", "1", "[2]", "[3]"}},
		{"causation only in x", log{ev(1, "A", "T"), ev(2, "A", "T"), cause(2, 1)}, log{ev(1, "A", "T"), ev(2, "A", "T")},
			DiffError{"caused by event", "1", "[2]", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := New(), New()
			for _, r := range tc.x {
				r(x)
			}
			for _, r := range tc.y {
				r(y)
			}
			err := x.Diff(y)
			var de *DiffError
			if !errors.As(err, &de) {
				t.Fatalf("Diff = %v, want a *DiffError", err)
			}
			if *de != tc.want {
				t.Fatalf("Diff = %#v, want %#v", *de, tc.want)
			}
			// The reloaded indexes differ the same way: Diff reads what a checkpoint keeps.
			if err := mustRead(t, encoded(t, x)).Diff(mustRead(t, encoded(t, y))); err == nil || err.Error() != de.Error() {
				t.Fatalf("reloaded: Diff = %v, want %v", err, de)
			}
		})
	}
}

func TestDiffErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  DiffError
		want string
	}{
		{DiffError{"position", "", "2", "1"}, "index: position differs: 2 / 1"},
		{DiffError{"stream", `"A"`, "present", "absent"}, `index: stream "A" differs: present / absent`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
