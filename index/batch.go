package index

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// A Batch collects the records of one or more log writes, in log order, and applies them
// to the index at once with Apply: readers see all of a batch or none of it. The writers
// record without checking the contract (the store does that before it writes the log);
// they fail only when the index cannot be read or the records come out of order.
//
// A Batch reads the index through what it holds itself, so a record may refer to an
// earlier one of the same batch. It is not safe for concurrent use; reuse it after Apply.
//
// A Batch keeps the states of the streams it wrote across Apply (up to maxKnownStreams):
// the index's only writer applies every batch through it, so they stay right, and the
// writer's next look at a busy stream costs a map lookup instead of a read of the index.
type Batch struct {
	x       *Index
	pos     uint64 // last position recorded; the index's at NewBatch or the last Apply
	streams map[string]*batchStream
	changed []string // the streams whose state the batch changed, in no order
	ids     map[uuid.UUID]uint64

	// The entries, which Apply adds to the index's active overlay (overlay.go).
	adds      []batchAdd
	gone      []goneID // the ids of the gone records added
	causes    []causation
	deadMarks []deadMark // in the order they were made: the last one of a position wins
	n         int        // entries

	// Origin returns the stream an event was appended to and its version there, read
	// from the log: Apply needs it to tell whether an event that left a stream it was
	// linked into is still in its own. Without it, such an event is taken to be alive.
	// An error matching ErrOriginGone (the record was scavenged or voided) or
	// ErrOriginUnknown (it is damaged) does not fail Apply; any other error does.
	Origin func(pos uint64) (stream string, version uint64, err error)

	// What Apply needs to find the events that die in the batch (see deaths.go).
	cuts   []cut             // version ranges of streams that stopped being visible
	puts   []pendingPut      // the versions the batch added; searched only when a cut comes
	linked []pendingLink     // the links the batch added
	erased map[string]uint64 // the erase marks the batch set

	// What the batch adds to Counts: events written, and streams that came to exist
	// less those deleted.
	addedEvents, addedStreams int64

	// applied, if set (tests), is called by Apply once readers see the batch's
	// position, before Apply returns.
	applied func()
}

type batchStream struct {
	streamRec
	name    string // the batch's own copy of the name
	changed bool
}

// batchAdd is a version a batch put into a stream: an event appended to it (id, typ and
// cat set) or linked into it by the link record at rec.
type batchAdd struct {
	stream       string
	version, pos uint64
	link         bool
	rec          uint64
	id           uuid.UUID
	typ, cat     string
}

type causation struct{ parent, child uint64 }

// goneID is the id of the dead event whose gone record is at pos.
type goneID struct {
	pos uint64
	id  uuid.UUID
}

type deadMark struct {
	pos  uint64
	dead bool // false: the mark is removed
}

// maxKnownStreams bounds the stream states a Batch keeps across Apply: past it they are
// forgotten at the next Apply and read again from the index when needed.
const maxKnownStreams = 1 << 16

// NewBatch returns an empty batch for records after Position.
func (x *Index) NewBatch() *Batch {
	return &Batch{
		x:       x,
		pos:     x.Position(),
		streams: make(map[string]*batchStream),
		ids:     make(map[uuid.UUID]uint64),
		erased:  make(map[string]uint64),
	}
}

// Len is the number of index entries the batch holds.
func (b *Batch) Len() int { return b.n }

// Position is the last position recorded in the batch (or applied before it).
func (b *Batch) Position() uint64 { return b.pos }

// Apply makes the records of b visible to readers, moves Position to b's last record and
// empties b for reuse. The records are in memory (the active overlay) until a Flush or a
// background hand-off writes them out; a crash before that loses them, and the log gives
// them back.
func (x *Index) Apply(b *Batch) error {
	if err := x.enter(); err != nil {
		return err
	}
	defer x.exit()
	if b.n == 0 && len(b.changed) == 0 && b.pos == x.Position() {
		return nil
	}
	if err := b.markDeaths(); err != nil {
		b.forget()
		return fmt.Errorf("index: apply up to position %d: %w", b.pos, err)
	}
	// The names of the erased streams go in before applyOverlay moves Position: a read
	// waits only until Position reaches an acknowledged write (the store answers the
	// writer before Apply), and one that found no name there served an event erased
	// by an EraseStream that had returned. Until the overlay holds the mark, a read
	// finds the name but no mark, as before the erasure.
	erasing := len(b.erased) > 0
	if erasing {
		x.addErased(b.erased)
	}
	x.cnt.mu.Lock()
	x.applyOverlay(b)
	x.cnt.events.Add(b.addedEvents)
	x.cnt.streams.Add(b.addedStreams)
	x.cnt.mu.Unlock()
	if erasing {
		// Counted once the marks are read: a count that has not moved since a read
		// says that no erasure came after it (Erasures).
		x.erasures.Add(1)
	}
	if b.applied != nil {
		b.applied()
	}
	b.addedEvents, b.addedStreams = 0, 0
	x.pos.Store(b.pos)
	b.clearPending()
	b.clearEntries()
	for _, name := range b.changed {
		b.streams[name].changed = false
	}
	b.changed = b.changed[:0]
	if len(b.streams) > maxKnownStreams {
		clear(b.streams)
	}
	clear(b.ids)
	return nil
}

// Discard drops what b holds, leaving the index as it was.
func (b *Batch) Discard() {
	b.forget()
	b.pos = b.x.Position()
}

// forget drops the batch's entries and everything it knows.
func (b *Batch) forget() {
	b.clearEntries()
	b.addedEvents, b.addedStreams = 0, 0
	clear(b.streams)
	b.changed = b.changed[:0]
	clear(b.ids)
	b.clearPending()
}

// touch marks the state of stream s, named name, as changed by the batch.
func (b *Batch) touch(s *batchStream, name string) {
	if !s.changed {
		s.changed = true
		b.changed = append(b.changed, name)
	}
}

// clearEntries drops the batch's entries.
func (b *Batch) clearEntries() {
	clear(b.adds)
	b.adds = b.adds[:0]
	b.gone = b.gone[:0]
	b.causes = b.causes[:0]
	b.deadMarks = b.deadMarks[:0]
	b.n = 0
}

// advance moves the batch's position to pos, which must be above it.
func (b *Batch) advance(pos uint64) error {
	switch {
	case pos <= b.pos:
		return fmt.Errorf("index: position %d recorded after position %d", pos, b.pos)
	case pos > MaxPosition:
		return fmt.Errorf("index: position %d is above MaxPosition", pos)
	}
	b.pos = pos
	return nil
}

// stream returns the state of stream as of the batch.
func (b *Batch) stream(name string) (*batchStream, error) {
	if s, ok := b.streams[name]; ok {
		return s, nil
	}
	if err := b.x.enter(); err != nil {
		return nil, err
	}
	defer b.x.exit()
	return b.load(name)
}

// load reads the state of stream name into the batch; the caller has entered the index.
func (b *Batch) load(name string) (*batchStream, error) {
	if s, ok := b.streams[name]; ok {
		return s, nil
	}
	if strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("index: stream name %q holds a 0 byte", name)
	}
	r, err := b.x.streamRec(name)
	if err != nil {
		return nil, err
	}
	s := &batchStream{streamRec: r, name: strings.Clone(name)}
	b.streams[s.name] = s
	return s, nil
}

// Loaded is the state of a stream as Index.Load read it, in the form a Batch keeps, for
// Batch.Know.
type Loaded struct{ rec streamRec }

// Load returns the state of stream as Stream does, and the same state for Batch.Know: a
// writer that plans a record against the index hands the batch that indexes it what it
// read, instead of the batch reading the stream's state again.
func (x *Index) Load(stream string) (StreamState, Loaded, error) {
	if err := x.enter(); err != nil {
		return StreamState{}, Loaded{}, err
	}
	defer x.exit()
	r, err := x.streamRec(stream)
	if err != nil {
		return StreamState{}, Loaded{}, err
	}
	return r.state(), Loaded{r}, nil
}

// Know gives b the state of stream that Load returned, unless b holds one of its own. The
// caller vouches that the state is still the index's: no batch applied since the Load
// changed the stream. A name b refuses (one with a 0 byte) is left for b to refuse when read.
func (b *Batch) Know(stream string, l Loaded) {
	if _, ok := b.streams[stream]; ok || strings.IndexByte(stream, 0) >= 0 {
		return
	}
	s := &batchStream{streamRec: l.rec, name: strings.Clone(stream)}
	b.streams[s.name] = s
}

// Stream returns the state of stream as of the batch.
func (b *Batch) Stream(name string) (StreamState, error) {
	s, err := b.stream(name)
	if err != nil {
		return StreamState{}, err
	}
	return s.state(), nil
}

// Lookup returns the position of the event with id id, in the batch or the index.
func (b *Batch) Lookup(id uuid.UUID) (uint64, bool, error) {
	if pos, ok := b.ids[id]; ok {
		return pos, true, nil
	}
	return b.x.LookupAny(id)
}

// put adds the event at position event as the next version of s, named name, for the
// record at rec; it returns the version and the batch's entry of it.
func (b *Batch) put(s *batchStream, name string, event uint64, link bool, rec uint64) (uint64, *batchAdd) {
	v := s.next
	if s.base == v {
		b.addedStreams++ // the stream did not exist: new, or deleted before
	}
	s.next++
	b.touch(s, name)
	b.adds = append(b.adds, batchAdd{stream: s.name, version: v, pos: event, link: link, rec: rec})
	b.n += 2
	b.pend(name, Entry{Version: v, Position: event, Link: link}) // it may be cut in this batch
	if s.lo() > v {
		b.cut(name, v, v+1) // below the stream's retention floor: never visible
	} else if s.ret.MaxCount > 0 && s.next > s.ret.MaxCount {
		b.raiseFloor(s, name, s.next-s.ret.MaxCount)
	}
	return v, &b.adds[len(b.adds)-1]
}

// AddEvent records the event written at log position pos with id id and type typ as the
// next version of stream, and returns that version.
func (b *Batch) AddEvent(pos uint64, id uuid.UUID, stream, typ string) (version uint64, err error) {
	s, err := b.stream(stream)
	if err != nil {
		return 0, err
	}
	if strings.IndexByte(typ, 0) >= 0 {
		return 0, fmt.Errorf("index: event type %q holds a 0 byte", typ)
	}
	if err := b.advance(pos); err != nil {
		return 0, err
	}
	b.ids[id] = pos
	b.addedEvents++
	v, add := b.put(s, stream, pos, false, pos)
	add.id, add.typ, add.cat = id, typ, CategoryOf(s.name)
	b.n += 3
	return v, nil
}

// AddCausation records that the event just added at position child was caused by the
// event at position parent, so that Caused(parent) lists child. It does not move Position.
func (b *Batch) AddCausation(child, parent uint64) error {
	if child != b.pos || parent >= child {
		return fmt.Errorf("index: causation of position %d by %d: the child must be the last event added, the parent before it", child, parent)
	}
	b.causes = append(b.causes, causation{parent, child})
	b.n++
	return nil
}

// AddLink records the link record at log position pos, which links the event at position
// event into stream at its next version, and returns that version.
func (b *Batch) AddLink(pos uint64, stream string, event uint64) (version uint64, err error) {
	if event > MaxPosition {
		return 0, fmt.Errorf("index: link to position %d, above MaxPosition", event)
	}
	s, err := b.stream(stream)
	if err != nil {
		return 0, err
	}
	if err := b.advance(pos); err != nil {
		return 0, err
	}
	if dead, err := b.x.Dead(event); err != nil {
		return 0, err
	} else if dead && s.next >= s.lo() {
		// Linked while it was dying (the link was planned before the deletion that
		// killed it was indexed): the link shows it again.
		b.deadMarks = append(b.deadMarks, deadMark{event, false})
		b.n++
	}
	v, _ := b.put(s, stream, event, true, pos)
	b.n++ // the link entry
	// The names are the records' own, which outlive the batch's Apply.
	b.linked = append(b.linked, pendingLink{event: event, version: v, stream: stream})
	return v, nil
}

// DeleteStream records the deletion at log position pos of stream: every version it has
// is hidden; its next version stays. The hidden entries stay on disk, below the stream's
// first visible version, where no read looks.
func (b *Batch) DeleteStream(pos uint64, stream string) error {
	s, err := b.stream(stream)
	if err != nil {
		return err
	}
	if err := b.advance(pos); err != nil {
		return err
	}
	if s.base < s.next {
		b.addedStreams--
		b.cut(stream, s.lo(), s.next)
		s.base = s.next
		b.touch(s, stream)
	}
	return nil
}

// SkipVersions moves the next version of stream up to next, leaving the versions between
// empty: a replay that skipped a damaged record of the stream catches up with the
// versions the later records carry. A next at or below the stream's changes nothing.
func (b *Batch) SkipVersions(stream string, next uint64) error {
	s, err := b.stream(stream)
	if err != nil {
		return err
	}
	if next > s.next {
		if s.base == s.next {
			b.addedStreams++ // only skipped versions, but versions all the same
		}
		s.next = next
		b.touch(s, stream)
	}
	return nil
}

// AddGone records the gone record at log position pos, which a scavenge wrote in place
// of a dead event with id id. It adds what a write decides by of that event in the index
// that saw it die, its id and its dead mark (its versions, category and type, where no
// read looks, are not in the record), so that an index built from the scavenged log
// decides as that one: the id stays taken (LookupAny finds it, Lookup does not). It
// touches no stream: the versions the event held are skipped, as for any record
// replaced since.
func (b *Batch) AddGone(pos uint64, id uuid.UUID) error {
	if id == uuid.Nil {
		return fmt.Errorf("index: gone record at position %d without an id", pos)
	}
	if err := b.advance(pos); err != nil {
		return err
	}
	b.ids[id] = pos
	b.addedEvents++ // Counts counts the id entries, a dead event's too
	b.gone = append(b.gone, goneID{pos, id})
	b.deadMarks = append(b.deadMarks, deadMark{pos, true})
	b.n += 2
	return nil
}

// Advance records a record at pos that touches no stream, id, category or type.
func (b *Batch) Advance(pos uint64) error { return b.advance(pos) }
