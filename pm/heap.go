package pm

import (
	"container/heap"
	"time"
)

// timers is a set of keys, each due at a time, that yields the due ones in time order,
// keys due at the same time in the order of compare. Setting a key again moves it; old
// heap entries are dropped lazily when they surface.
type timers[K comparable] struct {
	due  map[K]time.Time
	heap timerHeap[K]
}

type timerEntry[K comparable] struct {
	at  time.Time
	key K
}

type timerHeap[K comparable] struct {
	entries []timerEntry[K]
	compare func(a, b K) int
}

func (h *timerHeap[K]) Len() int { return len(h.entries) }
func (h *timerHeap[K]) Less(i, j int) bool {
	a, b := h.entries[i], h.entries[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return h.compare(a.key, b.key) < 0
}
func (h *timerHeap[K]) Swap(i, j int) { h.entries[i], h.entries[j] = h.entries[j], h.entries[i] }
func (h *timerHeap[K]) Push(x any)    { h.entries = append(h.entries, x.(timerEntry[K])) }
func (h *timerHeap[K]) Pop() any {
	old := h.entries
	e := old[len(old)-1]
	h.entries = old[:len(old)-1]
	return e
}

// newTimers returns an empty set whose keys due at the same time come out in the order
// of compare.
func newTimers[K comparable](compare func(a, b K) int) *timers[K] {
	return &timers[K]{due: make(map[K]time.Time), heap: timerHeap[K]{compare: compare}}
}

// set makes key due at at, and reports whether at is now the earliest time in the set.
func (t *timers[K]) set(key K, at time.Time) bool {
	if cur, ok := t.due[key]; ok && cur.Equal(at) {
		return false
	}
	t.due[key] = at
	heap.Push(&t.heap, timerEntry[K]{at, key})
	if len(t.heap.entries) > 2*len(t.due)+64 {
		t.compact()
	}
	next, _ := t.next()
	return next.Equal(at)
}

// compact drops the entries of keys that moved or went, and all but one entry of a key
// set again at the time it had before a remove, so that a key moved or re-set often does
// not grow the heap.
func (t *timers[K]) compact() {
	kept := t.heap.entries[:0]
	seen := make(map[K]struct{}, len(t.due))
	for _, e := range t.heap.entries {
		if at, ok := t.due[e.key]; ok && at.Equal(e.at) {
			if _, dup := seen[e.key]; dup {
				continue
			}
			seen[e.key] = struct{}{}
			kept = append(kept, e)
		}
	}
	clear(t.heap.entries[len(kept):])
	t.heap.entries = kept
	heap.Init(&t.heap)
}

func (t *timers[K]) remove(key K) { delete(t.due, key) }

// next returns the earliest due time, dropping stale entries on the way.
func (t *timers[K]) next() (time.Time, bool) {
	for len(t.heap.entries) > 0 {
		top := t.heap.entries[0]
		if at, ok := t.due[top.key]; ok && at.Equal(top.at) {
			return top.at, true
		}
		heap.Pop(&t.heap)
	}
	return time.Time{}, false
}

// pop removes and returns a key due at or before now.
func (t *timers[K]) pop(now time.Time) (K, bool) {
	at, ok := t.next()
	if !ok || at.After(now) {
		var zero K
		return zero, false
	}
	e := heap.Pop(&t.heap).(timerEntry[K])
	delete(t.due, e.key)
	return e.key, true
}
