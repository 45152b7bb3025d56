package index

// refTable is an open-addressing hash table (linear probing) of references into a dense
// array that its owner keeps: the ids of events, the entries of a long stream. A slot holds
// only the reference, 4 bytes, so the keys are stored once, in the owner's array, and the
// table costs 5–11 bytes per reference at its load factor of 3/8–3/4. The owner supplies the
// hash of each key and decides equality by looking its array up. References are never
// removed, so there are no tombstones.
type refTable struct {
	slots []uint32 // reference+1; 0 marks an empty slot
	n     int      // references stored
}

// maxRefs bounds the references a table can hold: a slot stores reference+1 in a uint32.
const maxRefs = 1<<32 - 2

// reserve sizes an empty table for n references without growing while they are added.
func (t *refTable) reserve(n int) {
	size := 16
	for size*3 < n*4 {
		size *= 2
	}
	t.slots = make([]uint32, size)
}

// add stores ref under hash h. hashOf gives the hash of any stored reference, for
// rehashing when the table grows.
func (t *refTable) add(h uint64, ref uint32, hashOf func(ref uint32) uint64) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow(hashOf)
	}
	t.place(h, ref)
	t.n++
}

func (t *refTable) place(h uint64, ref uint32) {
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if t.slots[i] == 0 {
			t.slots[i] = ref + 1
			return
		}
	}
}

func (t *refTable) grow(hashOf func(ref uint32) uint64) {
	old := t.slots
	t.slots = make([]uint32, max(16, 2*len(old)))
	for _, s := range old {
		if s != 0 {
			t.place(hashOf(s-1), s-1)
		}
	}
}

// find returns a reference stored under hash h for which match is true. When several
// match, which one it returns depends on the table's history.
func (t *refTable) find(h uint64, match func(ref uint32) bool) (uint32, bool) {
	i, ok := t.slot(h, match)
	if !ok {
		return 0, false
	}
	return t.slots[i] - 1, true
}

// slot returns the index in slots of a reference stored under hash h for which match is
// true, so that the owner can replace it by another reference with the same key.
func (t *refTable) slot(h uint64, match func(ref uint32) bool) (int, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if match(s - 1) {
			return int(i), true
		}
	}
}
