package index

import (
	"bytes"
	"encoding/binary"
	"fmt"

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

// DiffSubset is Diff that lets x hold entries y lacks: those a scavenge leaves in a live
// index for the records it removed from the log, which an index rebuilt from the
// scavenged log does not have. Nothing reads them: they are of dead events and of
// versions no stream shows. It also lets the values of an entry differ where no read
// looks (sameVisible), as a scavenge leaves them too.
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
		switch {
		case c < 0 && extra:
			okA = skipFormat(a, a.Next())
			continue
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
