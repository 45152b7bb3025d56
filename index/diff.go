package index

import (
	"fmt"
	"slices"
	"strings"
)

// DiffError is the first difference Diff found between two indexes.
type DiffError struct {
	What string // "position", "counts", "stream", "event", "category", "type", "links of event", "caused by event"
	Key  string // the stream, event number, category, type or position that differs; empty for position and counts
	X, Y string // what each index holds there
}

// Error names the difference, e.g. `index: stream "Order$1" differs: version 3 at position 7 / version 3 at position 8`.
func (e *DiffError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("index: %s differs: %s / %s", e.What, e.X, e.Y)
	}
	return fmt.Sprintf("index: %s %s differs: %s / %s", e.What, e.Key, e.X, e.Y)
}

// Diff compares x with y on everything an index holds: position, counts, every stream's
// state and versions, every event's position and id and what looking its id up finds,
// the events of every category and event type, and the links and causations of every
// event (hidden links too). It returns nil when they are equal, and otherwise a
// *DiffError for the first difference, in that order, X from x and Y from y. It reads
// both without mutating them.
func (x *Index) Diff(y *Index) error {
	diff := func(what, key string, a, b any) error {
		return &DiffError{What: what, Key: key, X: fmt.Sprint(a), Y: fmt.Sprint(b)}
	}
	if x.pos != y.pos {
		return diff("position", "", x.pos, y.pos)
	}
	if a, b := x.Stats(), y.Stats(); a != b {
		return diff("counts", "", fmt.Sprintf("%+v", a), fmt.Sprintf("%+v", b))
	}
	if err := x.diffStreams(y); err != nil {
		return err
	}
	for i := range x.evPos {
		key := fmt.Sprintf("number %d", i)
		if x.evPos[i] != y.evPos[i] || x.evID[i] != y.evID[i] {
			return diff("event", key, fmt.Sprintf("%s at position %d", x.evID[i], x.evPos[i]), fmt.Sprintf("%s at position %d", y.evID[i], y.evPos[i]))
		}
		a, aok := x.Lookup(x.evID[i])
		b, bok := y.Lookup(x.evID[i])
		if a != b || aok != bok {
			return diff("event", key, lookupString(x.evID[i].String(), a, aok), lookupString(x.evID[i].String(), b, bok))
		}
	}
	if err := x.diffPostings(y, "category", &x.cats, &y.cats); err != nil {
		return err
	}
	if err := x.diffPostings(y, "type", &x.types, &y.types); err != nil {
		return err
	}
	streamName := func(ix *Index) func(uint32) string {
		return func(ref uint32) string { return ix.streams[ref].name }
	}
	if err := diffLists(x, y, "links of event", &x.linked, &y.linked, streamName(x), streamName(y)); err != nil {
		return err
	}
	eventPos := func(ix *Index) func(uint32) uint64 {
		return func(ev uint32) uint64 { return ix.evPos[ev] }
	}
	return diffLists(x, y, "caused by event", &x.caused, &y.caused, eventPos(x), eventPos(y))
}

func lookupString(id string, pos uint64, ok bool) string {
	if !ok {
		return "lookup of " + id + " finds nothing"
	}
	return fmt.Sprintf("lookup of %s finds position %d", id, pos)
}

// diffStreams compares the streams of x and y in name order.
func (x *Index) diffStreams(y *Index) error {
	a, b := x.StreamNames("", "", 0), y.StreamNames("", "", 0)
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(b) || i < len(a) && a[i].Name < b[i].Name:
			return &DiffError{What: "stream", Key: fmt.Sprintf("%q", a[i].Name), X: "present", Y: "absent"}
		case i >= len(a) || b[i].Name < a[i].Name:
			return &DiffError{What: "stream", Key: fmt.Sprintf("%q", b[i].Name), X: "absent", Y: "present"}
		case a[i].StreamState != b[i].StreamState:
			return &DiffError{What: "stream", Key: fmt.Sprintf("%q", a[i].Name), X: fmt.Sprintf("%+v", a[i].StreamState), Y: fmt.Sprintf("%+v", b[i].StreamState)}
		}
		va := x.Versions(nil, a[i].Name, 0, false, 0)
		vb := y.Versions(nil, a[i].Name, 0, false, 0)
		if j, ok := firstDiff(va, vb); ok {
			return &DiffError{What: "stream", Key: fmt.Sprintf("%q", a[i].Name), X: entryAt(va, j), Y: entryAt(vb, j)}
		}
	}
	return nil
}

func entryAt(es []Entry, i int) string {
	if i >= len(es) {
		return fmt.Sprintf("%d visible versions", len(es))
	}
	e := es[i]
	if e.Link {
		return fmt.Sprintf("version %d links position %d", e.Version, e.Position)
	}
	return fmt.Sprintf("version %d at position %d", e.Version, e.Position)
}

// diffPostings compares the postings tables a of x and b of y, in name order.
func (x *Index) diffPostings(y *Index, what string, a, b *postingsTable) error {
	an, bn := a.sorted(), b.sorted()
	for i := range max(len(an), len(bn)) {
		switch {
		case i >= len(bn) || i < len(an) && a.lists[an[i]].name < b.lists[bn[i]].name:
			return &DiffError{What: what, Key: fmt.Sprintf("%q", a.lists[an[i]].name), X: "present", Y: "absent"}
		case i >= len(an) || b.lists[bn[i]].name < a.lists[an[i]].name:
			return &DiffError{What: what, Key: fmt.Sprintf("%q", b.lists[bn[i]].name), X: "absent", Y: "present"}
		}
		pa := x.page(nil, a.lists[an[i]].evs, 0, false, 0)
		pb := y.page(nil, b.lists[bn[i]].evs, 0, false, 0)
		if j, ok := firstDiff(pa, pb); ok {
			return &DiffError{What: what, Key: fmt.Sprintf("%q", a.lists[an[i]].name), X: positionAt(pa, j), Y: positionAt(pb, j)}
		}
	}
	return nil
}

func positionAt(ps []uint64, i int) string {
	if i >= len(ps) {
		return fmt.Sprintf("%d events", len(ps))
	}
	return fmt.Sprintf("event %d at position %d", i, ps[i])
}

// diffLists compares the relation a of x with b of y, key by key in position order, the
// values of each turned into what they name by va and vb.
func diffLists[V comparable](x, y *Index, what string, a, b *lists, va, vb func(uint32) V) error {
	keys := append(a.keys(), b.keys()...)
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		la, lb := values(x, a, k, va), values(y, b, k, vb)
		if _, ok := firstDiff(la, lb); ok {
			return &DiffError{What: what, Key: fmt.Sprint(k), X: listString(la), Y: listString(lb)}
		}
	}
	return nil
}

func values[V any](x *Index, l *lists, key uint64, v func(uint32) V) []V {
	var out []V
	l.each(x.hashPos, key, func(val uint32) bool {
		out = append(out, v(val))
		return true
	})
	return out
}

func listString[V any](vs []V) string {
	if len(vs) == 0 {
		return "none"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("%v", v)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// firstDiff returns the first index at which a and b differ, ok false if they are equal.
func firstDiff[V comparable](a, b []V) (i int, ok bool) {
	for i = range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i, true
		}
	}
	return min(len(a), len(b)), len(a) != len(b)
}
