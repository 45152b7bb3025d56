package index

import (
	"slices"
	"strings"
)

// postingsTable maps names (categories, event types) to their events. A list holds event
// numbers (indexes into Index.evPos, in log order) rather than positions: half the memory,
// and the same order. A name is added with its first event, so no list is ever empty.
type postingsTable struct {
	byName map[string]int32
	lists  []postings
}

type postings struct {
	name string
	evs  []uint32 // ascending event numbers
}

func newPostingsTable(n int) postingsTable {
	return postingsTable{byName: make(map[string]int32, n), lists: make([]postings, 0, n)}
}

// ref returns the reference of the list of name, creating it.
func (t *postingsTable) ref(name string) int32 {
	if ref, ok := t.byName[name]; ok {
		return ref
	}
	return t.create(strings.Clone(name)) // not to pin the caller's buffer
}

// push appends event number ev, above every one in the list, to list ref.
func (t *postingsTable) push(ref int32, ev uint32) {
	t.lists[ref].evs = append(t.lists[ref].evs, ev)
}

func (t *postingsTable) create(name string) int32 {
	ref := int32(len(t.lists))
	t.lists = append(t.lists, postings{name: name})
	t.byName[name] = ref
	return ref
}

// sorted returns the references of the lists in byte order of their names.
func (t *postingsTable) sorted() []int32 {
	refs := make([]int32, len(t.lists))
	for i := range refs {
		refs[i] = int32(i)
	}
	slices.SortFunc(refs, func(a, b int32) int { return strings.Compare(t.lists[a].name, t.lists[b].name) })
	return refs
}

// unlimited turns the "limit <= 0 means no limit" convention into a count.
func unlimited(limit int) int {
	if limit <= 0 {
		return int(^uint(0) >> 1)
	}
	return limit
}

// window returns the part of the list evs that a read from position from (inclusive) can
// return: the events at or after it forward, at or before it backward.
func (x *Index) window(evs []uint32, from uint64, backward bool) []uint32 {
	// Event numbers ascend with positions: find the first event past the bound in the
	// log, then in the list.
	ev, found := slices.BinarySearch(x.evPos, from)
	if backward && found {
		ev++
	}
	i, _ := slices.BinarySearch(evs, uint32(ev))
	if backward {
		return evs[:i]
	}
	return evs[i:]
}

// page appends to dst the positions of up to limit events of the list evs, from position
// from (inclusive), forward or backward.
func (x *Index) page(dst []uint64, evs []uint32, from uint64, backward bool, limit int) []uint64 {
	w := x.window(evs, from, backward)
	n := min(len(w), unlimited(limit))
	if backward {
		for i := len(w) - 1; i >= len(w)-n; i-- {
			dst = append(dst, x.evPos[w[i]])
		}
		return dst
	}
	for _, ev := range w[:n] {
		dst = append(dst, x.evPos[ev])
	}
	return dst
}

// merger yields the union of disjoint ascending lists of event numbers in ascending (or,
// backward, descending) order: a k-way merge over a binary heap of the lists' heads.
type merger struct {
	heads    []cursor // a heap: heads[0] holds the next event
	backward bool
}

// cursor is what a list has left to yield: forward from rest[0], backward from its end.
type cursor struct {
	rest []uint32
}

func (c *cursor) head(backward bool) uint32 {
	if backward {
		return c.rest[len(c.rest)-1]
	}
	return c.rest[0]
}

// newMerger merges the non-empty cursors of heads, which it takes over.
func newMerger(heads []cursor, backward bool) *merger {
	m := &merger{heads: heads[:0], backward: backward}
	for _, c := range heads {
		if len(c.rest) > 0 {
			m.heads = append(m.heads, c)
		}
	}
	for i := len(m.heads)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return m
}

// next returns the next event number; ok is false when all lists are done.
func (m *merger) next() (ev uint32, ok bool) {
	if len(m.heads) == 0 {
		return 0, false
	}
	top := &m.heads[0]
	ev = top.head(m.backward)
	if m.backward {
		top.rest = top.rest[:len(top.rest)-1]
	} else {
		top.rest = top.rest[1:]
	}
	if len(top.rest) == 0 {
		last := len(m.heads) - 1
		m.heads[0] = m.heads[last]
		m.heads = m.heads[:last]
	}
	m.down(0)
	return ev, true
}

func (m *merger) before(i, j int) bool {
	a, b := m.heads[i].head(m.backward), m.heads[j].head(m.backward)
	if m.backward {
		return a > b
	}
	return a < b
}

func (m *merger) down(i int) {
	for {
		least := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(m.heads) && m.before(c, least) {
				least = c
			}
		}
		if least == i {
			return
		}
		m.heads[i], m.heads[least] = m.heads[least], m.heads[i]
		i = least
	}
}
