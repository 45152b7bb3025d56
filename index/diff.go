package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// DiffError is the first difference Diff found between two indexes.
type DiffError struct {
	Key  string // the entry that differs, described (`version 3 of stream "Order$1"`)
	X, Y string // what each index holds there; "none" when it has no such entry
}

// Error names the difference, e.g. `index: version 3 of stream "Order$1" differs: position 7 / position 8`.
func (e *DiffError) Error() string {
	return fmt.Sprintf("index: %s differs: %s / %s", e.Key, e.X, e.Y)
}

// Diff compares x with y entry by entry, in key order, and returns a *DiffError for the
// first difference, or nil when they hold the same. The key layout is canonical (a log
// gives exactly one index), so an index can be checked against one rebuilt from the log.
func (x *Index) Diff(y *Index) error { return x.diff(y, false) }

// DiffSubset is Diff that lets x hold entries y lacks where no read looks (leftBehind):
// those a scavenge leaves in a live index for the records it removed from the log, which
// an index rebuilt from the scavenged log does not have. Any other entry y lacks is a
// difference. It also lets the values of an entry differ where no read looks
// (sameVisible), as a scavenge leaves them too.
func (x *Index) DiffSubset(y *Index) error { return x.diff(y, true) }

func (x *Index) diff(y *Index, extra bool) error {
	if err := x.enter(); err != nil {
		return err
	}
	defer x.exit()
	if err := y.enter(); err != nil {
		return err
	}
	defer y.exit()
	// The tables are compared: both indexes' overlays go to pebble first.
	for _, z := range []*Index{x, y} {
		if !z.readOnly {
			z.freeze()
			if err := z.handOff(); err != nil {
				return fmt.Errorf("index: diff: %w", err)
			}
		}
	}
	a, err := x.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("index: diff: %w", err)
	}
	defer a.Close()
	b, err := y.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("index: diff: %w", err)
	}
	defer b.Close()
	// The format version is Open's to check: an index it opens holds this version's,
	// or none when it was never flushed (a crash before the first flush), which Open
	// writes when it may write. Either way it is the same index.
	skipFormat := func(it *pebble.Iterator, ok bool) bool {
		if ok && bytes.Equal(it.Key(), keyFormat) {
			return it.Next()
		}
		return ok
	}
	left := leftBehind{x: x}
	okA, okB := skipFormat(a, a.First()), skipFormat(b, b.First())
	for okA || okB {
		c := 0
		switch {
		case !okA:
			c = 1
		case !okB:
			c = -1
		default:
			c = bytes.Compare(a.Key(), b.Key())
		}
		if c < 0 && extra {
			ok, err := left.accepts(a.Key(), a.Value())
			if err != nil {
				return fmt.Errorf("index: diff: %s: %w", describeKey(a.Key()), err)
			}
			if ok {
				okA = skipFormat(a, a.Next())
				continue
			}
		}
		switch {
		case c < 0:
			return &DiffError{Key: describeKey(a.Key()), X: describeValue(a.Key(), a.Value()), Y: "none"}
		case c > 0:
			return &DiffError{Key: describeKey(b.Key()), X: "none", Y: describeValue(b.Key(), b.Value())}
		case !bytes.Equal(a.Value(), b.Value()) && !(extra && x.sameVisible(y, a.Key(), a.Value(), b.Value())):
			return &DiffError{Key: describeKey(a.Key()), X: describeValue(a.Key(), a.Value()), Y: describeValue(b.Key(), b.Value())}
		}
		okA, okB = skipFormat(a, a.Next()), skipFormat(b, b.Next())
	}
	if err := a.Error(); err != nil {
		return fmt.Errorf("index: diff: %w", err)
	}
	if err := b.Error(); err != nil {
		return fmt.Errorf("index: diff: %w", err)
	}
	return nil
}

// leftBehind decides which entries of the live index x that the index rebuilt from the
// scavenged log lacks are what a scavenge leaves: the entries of the records it removed,
// where no read looks. A scavenge removes the record of an event only when x marks it
// dead (the record of a stream's newest version stays, erased), and a link record only
// when its version is below its stream's first visible version; it removes the data and
// metadata of the dead and erased events it keeps, their causation id with them. So an
// extra entry passes when it is
//
//   - a version (V) or membership (P) below the stream's first visible version in x (of a
//     removed event or link); a stream's state never passes;
//   - an id (I), category (C) or type (T) entry of an event x marks dead;
//   - a link (L) whose version is below its stream's first visible version;
//   - a causation (K) of a dead or erased child, or by a dead parent (the rebuilt index
//     finds no parent for a causation id that names a removed event);
//   - the dead mark (D) of an event the rebuilt index has no category entry of: its record
//     is gone. A dead mark of an event the log still holds is a difference.
//
// Any other extra entry is a difference: a read sees it. The category entries sort before
// the dead marks, so the positions whose dead marks may pass are known when those come.
type leftBehind struct {
	x    *Index
	gone []uint64 // the positions of the category entries passed, sorted when the dead marks come
	n    int      // how many of gone are sorted
}

// accepts reports whether x's entry k, with value v, which y lacks, is one a scavenge
// leaves where no read looks. x is entered.
func (l *leftBehind) accepts(k, v []byte) (bool, error) {
	x := l.x
	if len(k) == 0 {
		return false, nil
	}
	switch k[0] {
	case spaceVersion, spaceMember:
		if k[0] == spaceVersion && isStateKey(k) {
			return false, nil
		}
		name, n, ok := splitNamed(k)
		if !ok {
			return false, nil
		}
		version := n
		if k[0] == spaceMember {
			var err error
			if version, err = decodeUint(v); err != nil {
				return false, nil
			}
		}
		r, err := x.streamRec(name)
		if err != nil {
			return false, err
		}
		return version < r.lo(), nil
	case spaceID:
		pos, err := decodeUint(v)
		if err != nil {
			return false, nil
		}
		return x.dead(pos)
	case spaceCategory, spaceType:
		_, pos, ok := splitNamed(k)
		if !ok {
			return false, nil
		}
		dead, err := x.dead(pos)
		if dead && k[0] == spaceCategory {
			l.gone = append(l.gone, pos)
		}
		return dead, err
	case spaceLinked:
		if len(k) != 17 {
			return false, nil
		}
		version, stream, err := decodeLinked(v)
		if err != nil {
			return false, nil
		}
		r, err := x.streamRec(stream)
		if err != nil {
			return false, err
		}
		return version < r.lo(), nil
	case spaceCaused:
		if len(k) != 17 {
			return false, nil
		}
		parent, child := binary.BigEndian.Uint64(k[1:9]), suffix64(k)
		for _, pos := range []uint64{child, parent} {
			if dead, err := x.dead(pos); err != nil || dead {
				return dead, err
			}
		}
		return x.erasedEvent(child)
	case spaceDead:
		if len(k) != 9 {
			return false, nil
		}
		if l.n < len(l.gone) {
			slices.Sort(l.gone)
			l.n = len(l.gone)
		}
		_, found := slices.BinarySearch(l.gone, suffix64(k))
		return found, nil
	}
	return false, nil
}

// erasedEvent reports whether the event at pos is erased: appended to a stream below the
// version its erasure names. The event's membership of each erased stream gives its
// version there, its own unless it was linked into its own stream again since, when the
// erased versions are searched for it. x is entered, its overlays handed to pebble, which
// holds every erase mark.
func (x *Index) erasedEvent(pos uint64) (bool, error) {
	errErased := errors.New("erased")
	err := x.eachErased(func(stream string, before uint64) error {
		v, closer, err := x.db.Get(namedKey(nil, spaceMember, stream, pos))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		version, err := decodeUint(v)
		closer.Close()
		if err != nil {
			return err
		}
		entries, err := x.pebbleVersions(nil, stream, version, version+1, false, 1)
		if err != nil {
			return err
		}
		if len(entries) == 1 && entries[0].Position == pos && !entries[0].Link {
			if version < before {
				return errErased
			}
			return nil
		}
		// Linked into its own stream again: its own version is an earlier one.
		if entries, err = x.pebbleVersions(nil, stream, 0, min(version, before), false, unlimited(0)); err != nil {
			return err
		}
		for _, e := range entries {
			if e.Position == pos && !e.Link {
				return errErased
			}
		}
		return nil
	})
	if errors.Is(err, errErased) {
		return true, nil
	}
	return false, err
}

// sameVisible reports whether v, x's value of key k, and w, y's, differ only where no read
// and no later record looks, as a scavenge leaves them: the live index x keeps what the
// records it removed made of them, and y, rebuilt from the scavenged log, does not.
//
//   - A stream's states may differ in a retention floor at or below its last deletion
//     (streamRec.lo). The index raised the floor from the stream's next version when a
//     retention record (or an append past its max count) came; a replay of the scavenged
//     log, without the records of the versions the deletion removed, finds that next
//     version lower then, and raises the floor less.
//   - An event's membership of a stream may name other versions below the stream's first
//     visible one: the live index has the version of the last link of it into the
//     stream, the rebuilt one an earlier version when the scavenge removed that link.
//
// x and y are entered.
func (x *Index) sameVisible(y *Index, k, v, w []byte) bool {
	switch {
	case len(k) == 0:
		return false
	case k[0] == spaceVersion && isStateKey(k):
		r, err := decodeStream(v)
		if err != nil {
			return false
		}
		s, err := decodeStream(w)
		return err == nil && r.base == s.base && r.next == s.next && r.ret == s.ret && r.lo() == s.lo()
	case k[0] == spaceMember:
		name, _, ok := splitNamed(k)
		if !ok {
			return false
		}
		a, err := decodeUint(v)
		if err != nil {
			return false
		}
		b, err := decodeUint(w)
		if err != nil {
			return false
		}
		r, err := x.streamRec(name)
		if err != nil {
			return false
		}
		s, err := y.streamRec(name)
		return err == nil && r.lo() == s.lo() && a < r.lo() && b < r.lo()
	}
	return false
}

// splitNamed splits a namedKey into its name and number.
func splitNamed(k []byte) (string, uint64, bool) {
	if len(k) < 10 || k[len(k)-9] != 0 {
		return "", 0, false
	}
	return string(k[1 : len(k)-9]), suffix64(k), true
}

// describeKey says in words which entry k is.
func describeKey(k []byte) string {
	if len(k) == 0 {
		return "empty key"
	}
	name, n, named := splitNamed(k)
	switch k[0] {
	case spaceMeta:
		return fmt.Sprintf("%s of the index", k[1:])
	case spaceVersion:
		if isStateKey(k) {
			return fmt.Sprintf("state of stream %q", k[1:len(k)-1])
		}
		if named {
			return fmt.Sprintf("version %d of stream %q", n, name)
		}
	case spaceMember:
		if named {
			return fmt.Sprintf("membership of position %d in stream %q", n, name)
		}
	case spaceCategory:
		if named {
			return fmt.Sprintf("position %d in category %q", n, name)
		}
	case spaceType:
		if named {
			return fmt.Sprintf("position %d in event type %q", n, name)
		}
	case spaceID:
		if id, err := uuid.FromBytes(k[1:]); err == nil {
			return fmt.Sprintf("event id %s", id)
		}
	case spaceLinked:
		if len(k) == 17 {
			return fmt.Sprintf("link of position %d by record %d", binary.BigEndian.Uint64(k[1:9]), suffix64(k))
		}
	case spaceCaused:
		if len(k) == 17 {
			return fmt.Sprintf("causation of position %d by position %d", suffix64(k), binary.BigEndian.Uint64(k[1:9]))
		}
	case spaceDead:
		if len(k) == 9 {
			return fmt.Sprintf("dead event at position %d", suffix64(k))
		}
	case spaceErased:
		return fmt.Sprintf("erasure of stream %q", k[1:])
	}
	return fmt.Sprintf("key %q", k)
}

// describeValue says in words what the value v of key k holds.
func describeValue(k, v []byte) string {
	if len(k) == 0 {
		return fmt.Sprintf("%x", v)
	}
	if k[0] == spaceVersion && isStateKey(k) {
		if r, err := decodeStream(v); err == nil {
			if r.floor == 0 && r.ret == (Retention{}) {
				return fmt.Sprintf("first visible version %d, next version %d", r.base, r.next)
			}
			return fmt.Sprintf("deleted below version %d, next version %d, retention floor %d, max age %dns, max count %d, truncate before %d",
				r.base, r.next, r.floor, r.ret.MaxAge, r.ret.MaxCount, r.ret.TruncateBefore)
		}
		return fmt.Sprintf("%x", v)
	}
	switch k[0] {
	case spaceVersion:
		if pos, link, err := decodeEntry(v); err == nil {
			if link {
				return fmt.Sprintf("linked event at position %d", pos)
			}
			return fmt.Sprintf("event at position %d", pos)
		}
	case spaceMember:
		if n, err := decodeUint(v); err == nil {
			return fmt.Sprintf("version %d", n)
		}
	case spaceID, spaceMeta, spaceErased:
		if n, err := decodeUint(v); err == nil {
			return fmt.Sprint(n)
		}
	case spaceLinked:
		if version, stream, err := decodeLinked(v); err == nil {
			return fmt.Sprintf("version %d of stream %q", version, stream)
		}
	case spaceCategory, spaceType, spaceCaused, spaceDead:
		if len(v) == 0 {
			return "present"
		}
	}
	return fmt.Sprintf("%x", v)
}
