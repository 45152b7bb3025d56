package index

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// An event is dead when no stream shows it any more: its own stream and every stream it
// was linked into have deleted it or moved their retention floor past it. A batch notes
// each range of versions that stops being visible (a cut) as it records deletions,
// retention settings and appends past a stream's maximum count, and Apply checks every
// event in those ranges against all the streams that held it, marking the dead ones
// (D keys) in the same batch. Visibility only ever shrinks (a deletion is final, and a
// retention floor never goes down), so an event found dead stays dead.

// What Batch.Origin returns, wrapped, for an event whose own stream cannot be read from the
// log. A scavenge replaced by a gone record only an event that no stream showed any more,
// and a repair voided only a damaged one: for ErrOriginGone the event's own stream is
// taken not to show it, and the streams it was linked into decide. A replay that meets the
// record again after a crash asks again, so the answer must not stop the replay. For
// ErrOriginUnknown (a damaged record, found and reported by whoever read it) the event is
// taken to be alive, as without Origin: an event is never marked dead on a guess.
var (
	ErrOriginGone    = errors.New("index: the event's record is gone")
	ErrOriginUnknown = errors.New("index: the event's record cannot be read")
)

// cut is a range of versions of a stream that stopped being visible.
type cut struct {
	stream   string
	from, to uint64
}

// pendingPut is a version a batch added, pendingLink a link: a cut in the same batch
// finds them here, as the index does not have them yet.
type pendingPut struct {
	stream string
	entry  Entry
}

type pendingLink struct {
	event, version uint64
	stream         string
}

func (b *Batch) cut(stream string, from, to uint64) {
	if from < to {
		b.cuts = append(b.cuts, cut{strings.Clone(stream), from, to})
	}
}

func (b *Batch) pend(stream string, e Entry) {
	b.puts = append(b.puts, pendingPut{stream, e})
}

func (b *Batch) clearPending() {
	b.cuts = b.cuts[:0]
	clear(b.puts)
	b.puts = b.puts[:0]
	clear(b.linked)
	b.linked = b.linked[:0]
	clear(b.erased)
}

// raiseFloor moves the retention floor of s, named name, up to floor, cutting what it hides.
func (b *Batch) raiseFloor(s *batchStream, name string, floor uint64) {
	if floor <= s.floor {
		return
	}
	b.cut(name, s.lo(), min(floor, s.next))
	s.floor = floor
	b.touch(s, name)
}

// SetRetention records the retention record at log position pos, which sets the
// retention of stream to r from now on. expired is the version below which the stream's
// events had expired by its maximum age when the record was written (0 if none): the
// floor moves up to it, to r.TruncateBefore and to the maximum count, never down.
func (b *Batch) SetRetention(pos uint64, stream string, r Retention, expired uint64) error {
	s, err := b.stream(stream)
	if err != nil {
		return err
	}
	if err := b.advance(pos); err != nil {
		return err
	}
	s.ret = r
	b.touch(s, stream)
	floor := max(r.TruncateBefore, expired)
	if r.MaxCount > 0 && s.next > r.MaxCount {
		floor = max(floor, s.next-r.MaxCount)
	}
	b.raiseFloor(s, stream, floor)
	return nil
}

// Erase records the erase record at log position pos: the events appended to stream
// below version before are erased.
func (b *Batch) Erase(pos uint64, stream string, before uint64) error {
	if strings.IndexByte(stream, 0) >= 0 {
		return fmt.Errorf("index: stream name %q holds a 0 byte", stream)
	}
	if err := b.advance(pos); err != nil {
		return err
	}
	old, _, err := b.x.erasedBefore(stream) // names the stream, and reports damage
	if err != nil {
		return err
	}
	before = max(before, b.erased[stream], old)
	b.erased[strings.Clone(stream)] = before
	b.n++
	return nil
}

// erasedBefore returns the erase mark of stream: the version below which its events are
// erased, and whether it has one. The marks not yet handed off are in the overlays, the
// others in pebble, where it looks only for a stream whose name's hash eraseMarks
// holds. A mark it cannot read is an error naming the stream, reported as damage
// (errorf) when it is.
func (x *Index) erasedBefore(stream string) (uint64, bool, error) {
	if !x.erased.maybe(stream) {
		return 0, false, nil
	}
	// The newest first: a mark only goes up, and an overlay's hand-off leaves the
	// overlays only once pebble holds its marks.
	var before uint64
	var found bool
	x.ov.mu.RLock()
	before, found = x.ov.active.erased[stream]
	for _, o := range x.ov.frozen {
		if b, ok := o.erased[stream]; ok {
			before, found = max(before, b), true
		}
	}
	x.ov.mu.RUnlock()
	if found {
		return before, true, nil
	}
	if err := x.enter(); err != nil {
		return 0, false, err
	}
	defer x.exit()
	v, err := x.get(nameKey(nil, spaceErased, stream))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return 0, false, nil // another stream of the same hash
	case err != nil:
		return 0, false, x.errorf("index: erase mark of %q: %w", stream, err)
	}
	if before, err = decodeUint(v); err != nil {
		return 0, false, x.errorf("index: erase mark of %q: %w", stream, err)
	}
	return before, true, nil
}

// eraseMarks says which streams may have an erase mark (E entry): every event read asks
// whether its event was erased, and so do Store.Erased (which answers for a damaged record
// without reading it) and the scavenge, which rewrites the erased events without their
// data. The marks themselves are in the overlays until their hand-off, then in pebble
// alone: eraseMarks keeps only a hash of each erased stream's name, so that a read of a
// stream never erased costs a map lookup, and a million erased streams (a stream per
// user) cost 8 MB or so instead of their names. Apply adds a batch's hashes in place:
// copying a map of every mark for each batch made erasing n streams one at a time O(n²).
type eraseMarks struct {
	seed maphash.Seed
	mu   sync.RWMutex
	m    map[uint64]struct{} // the hashes of the names of the streams with a mark
	n    atomic.Int64        // len(m), read without mu: a store that never erased takes no lock
}

func (e *eraseMarks) hash(stream string) uint64 { return maphash.String(e.seed, stream) }

// maybe reports whether stream may have a mark.
func (e *eraseMarks) maybe(stream string) bool {
	if e.n.Load() == 0 {
		return false
	}
	e.mu.RLock()
	_, ok := e.m[e.hash(stream)]
	e.mu.RUnlock()
	return ok
}

// any reports whether a stream has a mark.
func (e *eraseMarks) any() bool { return e.n.Load() > 0 }

// reset makes streams, and none else, the streams with a mark.
func (e *eraseMarks) reset(streams []string) {
	e.load(func(add func(name []byte)) error {
		for _, s := range streams {
			add([]byte(s))
		}
		return nil
	})
}

// load makes the streams each passes to add, and none else, the streams with a mark,
// unless each fails. A name is hashed as add gets it (maphash.Bytes and maphash.String
// agree), and not kept.
func (e *eraseMarks) load(each func(add func(name []byte)) error) error {
	seed := maphash.MakeSeed()
	m := make(map[uint64]struct{})
	if err := each(func(name []byte) { m[maphash.Bytes(seed, name)] = struct{}{} }); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seed, e.m = seed, m
	e.n.Store(int64(len(m)))
	return nil
}

// add adds the streams of marks, a batch's: readers see all of them at once.
func (e *eraseMarks) add(marks map[string]uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.seed, e.m = maphash.MakeSeed(), make(map[uint64]struct{}, len(marks))
	}
	for name := range marks {
		e.m[e.hash(name)] = struct{}{}
	}
	e.n.Store(int64(len(e.m)))
}

// markDeaths finds the events in the batch's cuts that no stream shows any more and marks
// them dead. Apply calls it, having entered the index.
func (b *Batch) markDeaths() error {
	if len(b.cuts) == 0 {
		return nil
	}
	seen := make(map[uint64]bool)
	for _, c := range b.cuts {
		entries, err := b.entries(c)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if seen[e.Position] {
				continue
			}
			seen[e.Position] = true
			alive, err := b.alive(e, c.stream)
			if err != nil {
				return err
			}
			if !alive {
				b.deadMarks = append(b.deadMarks, deadMark{e.Position, true})
				b.n++
			}
		}
	}
	return nil
}

// entries returns the versions of c, from the index and the batch.
func (b *Batch) entries(c cut) ([]Entry, error) {
	// Pebble's versions below the overlays' lowest, then the overlays'.
	_, _, segs, low := b.x.ovVersions(c.stream)
	var out []Entry
	if hi := min(c.to, low); c.from < hi {
		var err error
		if out, err = b.x.pebbleVersions(out, c.stream, c.from, hi, false, unlimited(0)); err != nil {
			return nil, err
		}
	}
	for _, vs := range segs {
		for _, e := range vs {
			if e.version >= c.from && e.version < c.to {
				out = append(out, Entry{Version: e.version, Position: e.pos, Link: e.link})
			}
		}
	}
	for _, p := range b.puts {
		if p.stream == c.stream && p.entry.Version >= c.from && p.entry.Version < c.to {
			out = append(out, p.entry)
		}
	}
	return out, nil
}

// alive reports whether a stream still shows the event of entry e, a version of stream.
func (b *Batch) alive(e Entry, stream string) (bool, error) {
	origin, version, gone := stream, e.Version, false
	if e.Link {
		if b.Origin == nil {
			return true, nil
		}
		var err error
		origin, version, err = b.Origin(e.Position)
		switch {
		case errors.Is(err, ErrOriginUnknown):
			return true, nil
		case errors.Is(err, ErrOriginGone):
			gone = true // its own stream does not show it
		case err != nil:
			return false, fmt.Errorf("index: origin of the event at %d: %w", e.Position, err)
		}
	}
	if !gone {
		if ok, err := b.visible(origin, version); err != nil || ok {
			return ok, err
		}
	}
	for _, l := range b.linked {
		if l.event != e.Position {
			continue
		}
		if ok, err := b.visible(l.stream, l.version); err != nil || ok {
			return ok, err
		}
	}
	links, err := b.x.links(e.Position)
	if err != nil {
		return false, err
	}
	for _, l := range links {
		if ok, err := b.visible(l.stream, l.version); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// visible reports whether version of stream is visible as of the batch.
func (b *Batch) visible(stream string, version uint64) (bool, error) {
	s, err := b.load(stream)
	if err != nil {
		return false, err
	}
	return version >= s.lo() && version < s.next, nil
}
