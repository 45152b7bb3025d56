package index

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// linkBit marks a stream entry whose position is that of an event linked into the stream.
const linkBit = 1 << 63

// MaxPosition is the largest log position the index takes. Below it, every position fits
// beside linkBit, and every difference of two positions in a zigzag varint with a tag bit.
// A log that writes a million records a second reaches it in 146,000 years.
const MaxPosition = 1<<62 - 1

// setThreshold is the length from which a stream keeps a hash set of its entries, so
// Contains does not scan it. Below it a scan of at most this many words is as fast.
const setThreshold = 256

// Index maps streams, event ids, categories and event types to log positions. Build one with
// New or ReadFrom; the zero value is not usable.
//
// Index is not safe for concurrent use: the store guards it with its own RWMutex (many
// readers, one writer). Methods that only read never mutate, so a read lock is enough for
// them.
type Index struct {
	pos   uint64 // last position applied
	links int    // AddLink calls ever
	seed  maphash.Seed

	evPos []uint64    // the position of every event added, in log order (ascending)
	evID  []uuid.UUID // the id of every event added, parallel to evPos
	ids   refTable    // references into evID by id

	streams []stream
	byName  map[string]int32 // reference into streams by name
	names   nameList         // every stream, in name order

	cats  postingsTable // category → the events written to its streams
	types postingsTable // event type → its events

	linked lists // event position → the streams it was linked into (references), in link order
	caused lists // event position → the events (numbers) that name it as their cause, in log order
}

// stream holds the visible versions of one stream. Hidden versions are dropped: they are
// never read again and never reused.
type stream struct {
	name    string
	entries []uint64  // version base+i is entries[i]: an event position, |linkBit for a link
	base    uint64    // the first visible version: the next version when the stream was deleted
	set     *refTable // entries by event position, once len(entries) >= setThreshold
	cat     int32     // reference into Index.cats once the stream had its own event; else -1
}

// New returns an empty index at position 0.
func New() *Index {
	return &Index{
		seed:   maphash.MakeSeed(),
		byName: make(map[string]int32),
		cats:   newPostingsTable(0),
		types:  newPostingsTable(0),
	}
}

// Position is the last log position applied (0 for a new index).
func (x *Index) Position() uint64 { return x.pos }

// advance moves Position to pos, which must be above it and not above MaxPosition.
func (x *Index) advance(pos uint64) {
	switch {
	case pos <= x.pos:
		panic(fmt.Sprintf("index: position %d applied after position %d", pos, x.pos))
	case pos > MaxPosition:
		panic(fmt.Sprintf("index: position %d is above MaxPosition", pos))
	}
	x.pos = pos
}

// AddEvent records the event written at log position pos with id id and type typ as the next
// version of stream, and returns that version. Like every writer it records without checking
// the contract (the store does that before writing) and sets Position to pos.
//
// It panics if pos is not above Position or is above MaxPosition: the store feeds every
// record once, in log order, and anything else is a bug that would corrupt the index.
func (x *Index) AddEvent(pos uint64, id uuid.UUID, stream, typ string) (version uint64) {
	if len(x.evID) == maxRefs {
		panic("index: too many events")
	}
	x.advance(pos)
	ref := x.streamRef(stream)
	s := &x.streams[ref]
	if s.cat < 0 {
		s.cat = x.cats.ref(CategoryOf(s.name))
	}
	n := uint32(len(x.evID))
	x.cats.push(s.cat, n)
	x.types.push(x.types.ref(typ), n)
	x.evPos = append(x.evPos, pos)
	x.evID = append(x.evID, id)
	x.ids.add(x.hashID(id), n, x.hashIDRef)
	return x.appendEntry(s, pos)
}

// AddLink records the link record at log position pos, which links the event at position
// event into stream at its next version, and returns that version. LinkedInto(event) lists
// stream from then on, for as long as the link is visible. See AddEvent.
func (x *Index) AddLink(pos uint64, stream string, event uint64) (version uint64) {
	switch {
	case event > MaxPosition:
		panic(fmt.Sprintf("index: link to position %d, above MaxPosition", event))
	case len(x.linked.nodes) == maxRefs:
		panic("index: too many links")
	}
	x.advance(pos)
	x.links++
	ref := x.streamRef(stream)
	x.linked.add(x.hashPos, event, uint32(ref))
	return x.appendEntry(&x.streams[ref], event|linkBit)
}

// DeleteStream records the deletion at log position pos of stream: every version it has is
// hidden; its next version stays. Deleting a stream the index does not know changes nothing
// but Position. See AddEvent.
func (x *Index) DeleteStream(pos uint64, stream string) {
	x.advance(pos)
	ref, ok := x.byName[stream]
	if !ok {
		return
	}
	s := &x.streams[ref]
	s.base += uint64(len(s.entries))
	s.entries, s.set = nil, nil
}

// Advance sets Position to pos for a record that touches no stream, id, category or type.
// See AddEvent.
func (x *Index) Advance(pos uint64) { x.advance(pos) }

// streamRef returns the reference of stream, creating it.
func (x *Index) streamRef(name string) int32 {
	if ref, ok := x.byName[name]; ok {
		return ref
	}
	name = strings.Clone(name) // not to pin the caller's buffer
	ref := int32(len(x.streams))
	x.streams = append(x.streams, stream{name: name, cat: -1})
	x.byName[name] = ref
	x.names.insert(x.streams, ref)
	return ref
}

// appendEntry adds e as the next version of s and returns that version.
func (x *Index) appendEntry(s *stream, e uint64) uint64 {
	s.entries = append(s.entries, e)
	switch {
	case s.set != nil:
		s.set.add(x.hashPos(e&^linkBit), uint32(len(s.entries)-1), s.entryHash(x))
	case len(s.entries) >= setThreshold:
		x.buildSet(s)
	}
	return s.base + uint64(len(s.entries)) - 1
}

// buildSet indexes the entries of s by event position.
func (x *Index) buildSet(s *stream) {
	s.set = new(refTable)
	s.set.reserve(len(s.entries))
	for i, e := range s.entries {
		s.set.place(x.hashPos(e&^linkBit), uint32(i))
	}
	s.set.n = len(s.entries)
}

func (s *stream) entryHash(x *Index) func(ref uint32) uint64 {
	return func(ref uint32) uint64 { return x.hashPos(s.entries[ref] &^ linkBit) }
}

func (x *Index) hashID(id uuid.UUID) uint64 { return maphash.Bytes(x.seed, id[:]) }

func (x *Index) hashIDRef(ref uint32) uint64 { return x.hashID(x.evID[ref]) }

func (x *Index) hashPos(pos uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], pos)
	return maphash.Bytes(x.seed, b[:])
}

// StreamState is what the index knows of a stream.
type StreamState struct {
	Exists bool   // has at least one visible version
	Last   int64  // last version ever assigned (-1 if none), including hidden ones
	Next   uint64 // version the next append or link gets (= Last+1)
	First  uint64 // first visible version (the deletion point); == Next when nothing is visible
}

func (s *stream) state() StreamState {
	next := s.base + uint64(len(s.entries))
	return StreamState{Exists: len(s.entries) > 0, Last: int64(next) - 1, Next: next, First: s.base}
}

// Stream returns the state of stream; a stream never written is at Last -1, Next 0.
func (x *Index) Stream(stream string) StreamState {
	ref, ok := x.byName[stream]
	if !ok {
		return StreamState{Last: -1}
	}
	return x.streams[ref].state()
}

// Entry is one visible version of a stream.
type Entry struct {
	Version  uint64
	Position uint64 // the position of the event, also when it is linked
	Link     bool   // the event is in the stream through a link
}

// Versions appends to dst up to limit visible versions of stream, starting at version from
// (inclusive), ascending, or with backward descending from min(from, last version).
// limit <= 0 means no limit.
func (x *Index) Versions(dst []Entry, stream string, from uint64, backward bool, limit int) []Entry {
	ref, ok := x.byName[stream]
	if !ok {
		return dst
	}
	s := &x.streams[ref]
	n := unlimited(limit)
	entry := func(i uint64) Entry {
		e := s.entries[i]
		return Entry{Version: s.base + i, Position: e &^ linkBit, Link: e&linkBit != 0}
	}
	if !backward {
		for i := max(from, s.base) - s.base; i < uint64(len(s.entries)) && n > 0; i, n = i+1, n-1 {
			dst = append(dst, entry(i))
		}
		return dst
	}
	if from < s.base || len(s.entries) == 0 {
		return dst
	}
	for i := min(from-s.base, uint64(len(s.entries))-1); n > 0; i, n = i-1, n-1 {
		dst = append(dst, entry(i))
		if i == 0 {
			break
		}
	}
	return dst
}

// Contains reports whether the event at position event is a visible version of stream, as
// its own event or through a link. It is a hash lookup for long streams.
func (x *Index) Contains(stream string, event uint64) bool {
	ref, ok := x.byName[stream]
	return ok && x.holds(&x.streams[ref], event)
}

// holds reports whether the event at position event is a visible version of s.
func (x *Index) holds(s *stream, event uint64) bool {
	if event > MaxPosition {
		return false
	}
	if s.set == nil {
		for _, e := range s.entries {
			if e&^linkBit == event {
				return true
			}
		}
		return false
	}
	_, found := s.set.find(x.hashPos(event), func(ref uint32) bool { return s.entries[ref]&^linkBit == event })
	return found
}

// Lookup returns the position of the event with id id. If the id was added more than once
// (the store never does that), it returns one of them.
func (x *Index) Lookup(id uuid.UUID) (pos uint64, ok bool) {
	ref, ok := x.ids.find(x.hashID(id), func(ref uint32) bool { return x.evID[ref] == id })
	if !ok {
		return 0, false
	}
	return x.evPos[ref], true
}

// Category appends to dst up to limit positions of the events written to streams of
// category, from position from (inclusive), ascending, or with backward descending from the
// last position not above from. limit <= 0 means no limit.
func (x *Index) Category(dst []uint64, category string, from uint64, backward bool, limit int) []uint64 {
	ref, ok := x.cats.byName[category]
	if !ok {
		return dst
	}
	return x.page(dst, x.cats.lists[ref].evs, from, backward, limit)
}

// Types appends to dst up to limit positions of the events of any of types, merged in
// position order without duplicates, from position from (inclusive), ascending, or with
// backward descending from the last position not above from. Unknown types match nothing,
// and so do no types. limit <= 0 means no limit.
func (x *Index) Types(dst []uint64, types []string, from uint64, backward bool, limit int) []uint64 {
	refs := make([]int32, 0, len(types))
	for _, t := range types {
		if ref, ok := x.types.byName[t]; ok {
			refs = append(refs, ref)
		}
	}
	slices.Sort(refs)
	refs = slices.Compact(refs)
	switch len(refs) {
	case 0:
		return dst
	case 1:
		return x.page(dst, x.types.lists[refs[0]].evs, from, backward, limit)
	}
	heads := make([]cursor, len(refs))
	for i, ref := range refs {
		heads[i].rest = x.window(x.types.lists[ref].evs, from, backward)
	}
	m := newMerger(heads, backward)
	for n := unlimited(limit); n > 0; n-- {
		ev, ok := m.next()
		if !ok {
			break
		}
		dst = append(dst, x.evPos[ev])
	}
	return dst
}

// StreamInfo names a stream and gives its state.
type StreamInfo struct {
	Name string
	StreamState
}

// StreamNames returns up to limit streams whose name starts with prefix and is above after,
// in byte order of their names, with their state. Deleted streams are listed too, with
// Exists false. limit <= 0 means no limit.
func (x *Index) StreamNames(prefix, after string, limit int) []StreamInfo {
	var out []StreamInfo
	n := unlimited(limit)
	c, i := x.names.seek(x.streams, max(prefix, after), prefix > after)
	for ; c < len(x.names.chunks); c, i = c+1, 0 {
		for _, ref := range x.names.chunks[c][i:] {
			s := &x.streams[ref]
			if n == 0 || !strings.HasPrefix(s.name, prefix) {
				return out
			}
			out = append(out, StreamInfo{Name: s.name, StreamState: s.state()})
			n--
		}
	}
	return out
}

// Stats counts what the index holds.
type Stats struct {
	Streams    int // streams ever written to, deleted ones included
	Events     int // events added
	Links      int // links added, hidden ones included
	Categories int // categories with at least one event
	Types      int // event types
}

// Stats returns the counts of what the index holds.
func (x *Index) Stats() Stats {
	return Stats{
		Streams:    len(x.streams),
		Events:     len(x.evPos),
		Links:      x.links,
		Categories: len(x.cats.lists),
		Types:      len(x.types.lists),
	}
}

// CategoryOf returns the category of stream: the part of its name before the first '$', or
// the whole name if it has none.
func CategoryOf(stream string) string {
	if i := strings.IndexByte(stream, '$'); i >= 0 {
		return stream[:i]
	}
	return stream
}
