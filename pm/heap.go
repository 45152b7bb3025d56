package pm

import (
	"container/heap"
	"time"
)

// timers is a set of keys, each due at a time, that yields the due ones in time order.
// Setting a key again moves it; old heap entries are dropped lazily when they surface.
type timers struct {
	due  map[string]time.Time
	heap timerHeap
}

type timerEntry struct {
	at  time.Time
	key string
}

type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].key < h[j].key
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newTimers() *timers { return &timers{due: make(map[string]time.Time)} }

// set makes key due at at, and reports whether at is now the earliest time in the set.
func (t *timers) set(key string, at time.Time) bool {
	if cur, ok := t.due[key]; ok && cur.Equal(at) {
		return false
	}
	t.due[key] = at
	heap.Push(&t.heap, timerEntry{at, key})
	if len(t.heap) > 2*len(t.due)+64 {
		t.compact()
	}
	next, _ := t.next()
	return next.Equal(at)
}

// compact drops the entries of keys that moved or went, and all but one entry of a key
// set again at the time it had before a remove, so that a key moved or re-set often does
// not grow the heap.
func (t *timers) compact() {
	kept := t.heap[:0]
	seen := make(map[string]struct{}, len(t.due))
	for _, e := range t.heap {
		if at, ok := t.due[e.key]; ok && at.Equal(e.at) {
			if _, dup := seen[e.key]; dup {
				continue
			}
			seen[e.key] = struct{}{}
			kept = append(kept, e)
		}
	}
	clear(t.heap[len(kept):])
	t.heap = kept
	heap.Init(&t.heap)
}

func (t *timers) remove(key string) { delete(t.due, key) }

// next returns the earliest due time, dropping stale entries on the way.
func (t *timers) next() (time.Time, bool) {
	for len(t.heap) > 0 {
		top := t.heap[0]
		if at, ok := t.due[top.key]; ok && at.Equal(top.at) {
			return top.at, true
		}
		heap.Pop(&t.heap)
	}
	return time.Time{}, false
}

// pop removes and returns a key due at or before now.
func (t *timers) pop(now time.Time) (string, bool) {
	at, ok := t.next()
	if !ok || at.After(now) {
		return "", false
	}
	e := heap.Pop(&t.heap).(timerEntry)
	delete(t.due, e.key)
	return e.key, true
}
