package index

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
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
	before = max(before, b.erased[stream], b.x.erasedBefore(stream))
	b.erased[strings.Clone(stream)] = before
	b.n++
	return nil
}

func (x *Index) erasedBefore(stream string) uint64 {
	before, _ := x.erased.get(stream)
	return before
}

// eraseMarks holds every E entry in memory: every event read asks whether its event was
// erased, and so do Store.Erased (which answers for a damaged record without reading it)
// and the scavenge, which rewrites the erased events without their data. A mark is needed
// for as long as the store is open: an event's record keeps its data until a scavenge
// rewrites it, and Store.Erased answers from the marks alone. Apply adds a batch's marks
// in place, under mu: copying the whole map for each batch made erasing n streams one at
// a time (a stream per user) cost O(n²).
type eraseMarks struct {
	mu sync.RWMutex
	m  map[string]uint64 // stream → the version below which its events are erased
	n  atomic.Int64      // len(m), read without mu: a store that never erased takes no lock
}

// get returns the mark of stream.
func (e *eraseMarks) get(stream string) (uint64, bool) {
	if e.n.Load() == 0 {
		return 0, false
	}
	e.mu.RLock()
	before, ok := e.m[stream]
	e.mu.RUnlock()
	return before, ok
}

// any reports whether there is a mark.
func (e *eraseMarks) any() bool { return e.n.Load() > 0 }

// reset replaces the marks with m, which is the marks' from then on.
func (e *eraseMarks) reset(m map[string]uint64) {
	e.mu.Lock()
	e.m = m
	e.n.Store(int64(len(m)))
	e.mu.Unlock()
}

// add adds marks, a batch's: a stream's mark only ever goes up. Readers see all of them
// at once.
func (e *eraseMarks) add(marks map[string]uint64) {
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]uint64, len(marks))
	}
	for name, before := range marks {
		e.m[name] = max(e.m[name], before)
	}
	e.n.Store(int64(len(e.m)))
	e.mu.Unlock()
}

// all returns a copy of the marks, for a walk that must not hold mu.
func (e *eraseMarks) all() map[string]uint64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return maps.Clone(e.m)
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
