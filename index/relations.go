package index

import (
	"fmt"
	"slices"
)

// lists maps keys (log positions) to lists of values in the order they were added. Every
// list lives in one array of nodes, as a circular singly linked list: the table finds the
// newest node of a key, whose next is the oldest. So appending and reading from the oldest
// on need no pointer but next, and a key costs one table slot: no slice header or heap
// object per key, and nothing at all for the keys that have no list. Both relations are
// sparse (only linked events, only events with a causation parent), which is what makes
// this cheaper than a slice per key.
type lists struct {
	nodes []listNode
	tails refTable // references into nodes: the newest node of each key
}

type listNode struct {
	key  uint64 // the position whose list the node is in
	val  uint32
	next uint32 // the next node of the same key; the newest points to the oldest
}

// add appends val to the list of key. hash is Index.hashPos. The caller keeps the nodes
// below maxRefs.
func (l *lists) add(hash func(uint64) uint64, key uint64, val uint32) {
	n := uint32(len(l.nodes))
	l.nodes = append(l.nodes, listNode{key: key, val: val, next: n})
	h := hash(key)
	if i, ok := l.tails.slot(h, l.matchKey(key)); ok {
		tail := &l.nodes[l.tails.slots[i]-1]
		l.nodes[n].next, tail.next = tail.next, n
		l.tails.slots[i] = n + 1
		return
	}
	l.tails.add(h, n, func(ref uint32) uint64 { return hash(l.nodes[ref].key) })
}

func (l *lists) matchKey(key uint64) func(ref uint32) bool {
	return func(ref uint32) bool { return l.nodes[ref].key == key }
}

// each calls fn with the values of the list of key, oldest first, until fn returns false.
func (l *lists) each(hash func(uint64) uint64, key uint64, fn func(val uint32) bool) {
	tail, ok := l.tails.find(hash(key), l.matchKey(key))
	if !ok {
		return
	}
	for i := l.nodes[tail].next; ; i = l.nodes[i].next {
		if !fn(l.nodes[i].val) || i == tail {
			return
		}
	}
}

// keys returns every key that has a list, ascending.
func (l *lists) keys() []uint64 {
	out := make([]uint64, 0, l.tails.n)
	for _, s := range l.tails.slots {
		if s != 0 {
			out = append(out, l.nodes[s-1].key)
		}
	}
	slices.Sort(out)
	return out
}

// AddCausation records that the event just added at position child was caused by the
// event at position parent (its metadata names parent's id as causation_id), so that
// Caused(parent) lists child. The store calls it right after the AddEvent of child, for
// the events whose causation parent is stored. It does not move Position.
//
// It panics if child is not the position of the last event added, if that event already
// has a parent, or if parent is not below child: the store resolves a parent among the
// events written before the child, once.
func (x *Index) AddCausation(child, parent uint64) {
	last := len(x.evPos) - 1
	switch n := len(x.caused.nodes); {
	case last < 0 || x.evPos[last] != child:
		panic(fmt.Sprintf("index: causation of position %d, which is not the last event added", child))
	case parent >= child:
		panic(fmt.Sprintf("index: event at %d caused by position %d, which is not before it", child, parent))
	case n > 0 && x.caused.nodes[n-1].val == uint32(last):
		panic(fmt.Sprintf("index: event at %d given a second causation parent", child))
	}
	x.caused.add(x.hashPos, parent, uint32(last))
}

// Caused appends to dst the positions of up to limit events caused by the event at
// position event (see AddCausation), in log order. limit <= 0 means no limit. It costs a
// hash lookup and one step per event returned.
func (x *Index) Caused(dst []uint64, event uint64, limit int) []uint64 {
	n := unlimited(limit)
	x.caused.each(x.hashPos, event, func(ev uint32) bool {
		dst = append(dst, x.evPos[ev])
		n--
		return n > 0
	})
	return dst
}

// LinkedInto appends to dst the names of the streams that the event at position event
// was linked into (AddLink) and that still hold it as a visible version: a link hidden
// by a deletion of its stream is left out. They come in the order of their links; a
// stream the event was linked into more than once (deleted in between) comes once, at
// its last link, which is the visible one. The stream the event was written to is not
// among them, unless the event was linked back into it after a deletion.
//
// It costs a hash lookup and, per link of the event, a Contains (and a scan of the
// streams appended so far).
func (x *Index) LinkedInto(dst []string, event uint64) []string {
	start := len(dst)
	x.linked.each(x.hashPos, event, func(ref uint32) bool {
		s := &x.streams[ref]
		if !x.holds(s, event) {
			return true
		}
		if i := slices.Index(dst[start:], s.name); i >= 0 {
			dst = slices.Delete(dst, start+i, start+i+1)
		}
		dst = append(dst, s.name)
		return true
	})
	return dst
}
