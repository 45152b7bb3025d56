package pm

import "sort"

// window tracks the handled events in flight, in log order, so that the runtime knows the
// lowest position below which every event it took is done: where a restart may resume.
type window struct {
	pos  []uint64
	done []bool
	head int
}

// add records that the event at p was taken; p is above every position added before.
func (w *window) add(p uint64) {
	w.pos = append(w.pos, p)
	w.done = append(w.done, false)
}

// finish records that the event at p is done.
func (w *window) finish(p uint64) {
	live := w.pos[w.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i] >= p })
	if i == len(live) || live[i] != p {
		return
	}
	w.done[w.head+i] = true
	for w.head < len(w.pos) && w.done[w.head] {
		w.head++
	}
	if w.head == len(w.pos) {
		w.pos, w.done, w.head = w.pos[:0], w.done[:0], 0
	} else if w.head > 1024 && w.head > len(w.pos)/2 {
		n := copy(w.pos, w.pos[w.head:])
		copy(w.done, w.done[w.head:])
		w.pos, w.done, w.head = w.pos[:n], w.done[:n], 0
	}
}

// empty reports whether no event is in flight.
func (w *window) empty() bool { return w.head == len(w.pos) }

// first is the lowest position in flight; only valid when !empty().
func (w *window) first() uint64 { return w.pos[w.head] }
