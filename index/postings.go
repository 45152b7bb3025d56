package index

import (
	"slices"
	"strings"
)

// postingsTable maps names (categories, event types) to the ascending log positions of
// their events. A name is added with its first event, so no list is ever empty.
type postingsTable struct {
	byName map[string]int32
	lists  []postings
}

type postings struct {
	name string
	pos  []uint64 // ascending
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

// push appends pos, above every position in the list, to list ref.
func (t *postingsTable) push(ref int32, pos uint64) {
	t.lists[ref].pos = append(t.lists[ref].pos, pos)
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

// window returns the part of the ascending list p that a read from position from
// (inclusive) can return: p[i:] forward, p[:i] backward.
func window(p []uint64, from uint64, backward bool) []uint64 {
	i, found := slices.BinarySearch(p, from)
	if !backward {
		return p[i:]
	}
	if found {
		i++
	}
	return p[:i]
}

// page appends up to limit positions of the ascending list p to dst, from position from
// (inclusive), forward or backward.
func page(dst, p []uint64, from uint64, backward bool, limit int) []uint64 {
	w := window(p, from, backward)
	n := min(len(w), unlimited(limit))
	if !backward {
		return append(dst, w[:n]...)
	}
	for i := len(w) - 1; i >= len(w)-n; i-- {
		dst = append(dst, w[i])
	}
	return dst
}

// merger yields the union of disjoint ascending position lists in ascending (or, backward,
// descending) order: a k-way merge over a binary heap of the lists' heads.
type merger struct {
	heads    []cursor // a heap: heads[0] holds the next position
	backward bool
}

// cursor is what a list has left to yield: forward from rest[0], backward from its end.
type cursor struct {
	rest  []uint64
	label int32 // tells the caller which list a position came from
}

func (c *cursor) head(backward bool) uint64 {
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

// next returns the next position and the label of its list; ok is false when all are done.
func (m *merger) next() (pos uint64, label int32, ok bool) {
	if len(m.heads) == 0 {
		return 0, 0, false
	}
	top := &m.heads[0]
	pos, label = top.head(m.backward), top.label
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
	return pos, label, true
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
