package index

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Retention is what a stream's retention settings keep visible. A zero field is not set.
type Retention struct {
	MaxAge         int64  // nanoseconds; applied by readers, and by Expire
	MaxCount       uint64 // only the newest MaxCount versions are visible
	TruncateBefore uint64 // versions below it are not visible
}

// deadKey returns the key that marks the event at pos dead.
func deadKey(dst []byte, pos uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, spaceDead), pos)
}

// Dead reports whether the event at pos is dead: in no stream any more.
func (x *Index) Dead(pos uint64) (bool, error) {
	if err := x.enter(); err != nil {
		return false, err
	}
	defer x.exit()
	return x.dead(pos)
}

func (x *Index) dead(pos uint64) (bool, error) {
	if dead, found := x.ovDead(pos); found {
		return dead, nil
	}
	var kb [9]byte
	_, closer, err := x.db.Get(deadKey(kb[:0], pos))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, x.errorf("index: dead %d: %w", pos, err)
	}
	closer.Close()
	return true, nil
}

// DeadIn appends to dst the positions of the dead events in [from, to], ascending.
func (x *Index) DeadIn(dst []uint64, from, to uint64) ([]uint64, error) {
	if err := x.enter(); err != nil {
		return dst, err
	}
	defer x.exit()
	if from > to {
		return dst, nil
	}
	// The overlays' marks and removed marks, newer than pebble's. They are taken
	// before pebble is read: an overlay dropped meanwhile is in pebble then.
	marks := x.ovDeadIn(from, to)
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: deadKey(nil, from), UpperBound: upper(deadKey(nil, to))})
	if err != nil {
		return dst, x.errorf("index: dead events: %w", err)
	}
	if len(marks) == 0 {
		for ok := it.First(); ok; ok = it.Next() {
			dst = append(dst, suffix64(it.Key()))
		}
	} else {
		for ok := it.First(); ok; ok = it.Next() {
			if p := suffix64(it.Key()); !marks.has(p) {
				marks[p] = true
			}
		}
		start := len(dst)
		for p, dead := range marks {
			if dead {
				dst = append(dst, p)
			}
		}
		slices.Sort(dst[start:])
	}
	if err := it.Close(); err != nil {
		return dst, x.errorf("index: dead events: %w", err)
	}
	return dst, nil
}

// deadSkipper answers "is pos dead?" for positions asked in one direction, with one
// iterator over the dead marks, so that a list read pays a seek per live entry at most.
type deadSkipper struct {
	x        *Index
	ovs      []*overlay // the overlays as of the iterator, newest first
	it       *pebble.Iterator
	backward bool
	kb       []byte
}

func (x *Index) newDeadSkipper(backward bool) (*deadSkipper, error) {
	// The overlays first, then pebble: an overlay dropped meanwhile is in pebble then.
	var ovs []*overlay
	x.ov.mu.RLock()
	x.ov.newest(func(o *overlay) bool {
		ovs = append(ovs, o)
		return true
	})
	x.ov.mu.RUnlock()
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceDead}, UpperBound: []byte{spaceDead + 1}})
	if err != nil {
		return nil, err
	}
	return &deadSkipper{x: x, ovs: ovs, it: it, backward: backward}, nil
}

func (d *deadSkipper) dead(pos uint64) bool {
	// The active overlay takes marks meanwhile: its map is read under the lock.
	d.x.ov.mu.RLock()
	var dead, found bool
	for _, o := range d.ovs {
		if dead, found = o.dead[pos]; found {
			break
		}
	}
	d.x.ov.mu.RUnlock()
	if found {
		return dead
	}
	d.kb = deadKey(d.kb[:0], pos)
	var ok bool
	if d.backward {
		ok = d.it.SeekLT(upper(d.kb))
	} else {
		ok = d.it.SeekGE(d.kb)
	}
	return ok && suffix64(d.it.Key()) == pos
}

func (d *deadSkipper) close() error { return d.it.Close() }

// Erased reports whether the event appended to stream at version is erased: its data
// and metadata must not be served. An erase mark it cannot read (a closed index, a
// damaged one) counts as erasing everything: erased data is never served on a guess.
func (x *Index) Erased(stream string, version uint64) bool {
	erased, err := x.ErasedErr(stream, version)
	return err != nil || erased
}

// ErasedErr is Erased with the error of an erase mark it cannot read, for a caller that
// must not act on a guess: a scavenge strips an erased event's data from the disk for
// good, so on an error it keeps the record as it is.
func (x *Index) ErasedErr(stream string, version uint64) (bool, error) {
	before, ok, err := x.erasedBefore(stream)
	if err != nil {
		return false, err
	}
	return ok && version < before, nil
}

// AnyErased reports whether any stream was ever erased.
func (x *Index) AnyErased() bool { return x.erased.any() }

// Erasures counts the batches with an erase record applied since the index was opened,
// whichever way their records came (a store's own write, a cluster's replicated or
// copied ones). A batch is counted once its marks are read: when the count read before
// a read is the same after it, nothing was erased since the read began.
func (x *Index) Erasures() uint64 { return x.erasures.Load() }

// loadErased reads into memory (eraseMarks) a hash of the name of each stream with an
// erase mark, hashing each name as pebble gives it: no name is kept, or even made.
func (x *Index) loadErased() error {
	return x.erased.load(func(add func(name []byte)) error {
		return x.eachErasedKey(func(name []byte, _ uint64) error {
			add(name)
			return nil
		})
	})
}

// eachErased calls f with each erase mark in pebble, in the order of the streams' names.
func (x *Index) eachErased(f func(stream string, before uint64) error) error {
	return x.eachErasedKey(func(name []byte, before uint64) error { return f(string(name), before) })
}

// eachErasedKey is eachErased with the stream's name as pebble holds it, valid only
// during the call of f.
func (x *Index) eachErasedKey(f func(name []byte, before uint64) error) error {
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceErased}, UpperBound: []byte{spaceErased + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := decodeUint(it.Value())
		if err == nil {
			err = f(it.Key()[1:], v)
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// addErased makes the erase marks of a batch just applied visible to readers.
func (x *Index) addErased(marks map[string]uint64) { x.erased.add(marks) }
