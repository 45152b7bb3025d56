package index

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"math"

	"github.com/google/uuid"
)

// checkHeader checks the header at the start of b and returns the body length it states.
func checkHeader(b []byte) (uint64, error) {
	if len(b) < headerSize {
		return 0, &CheckpointError{Offset: int64(len(b)), Reason: "truncated header"}
	}
	if string(b[:8]) != checkpointMagic {
		return 0, &CheckpointError{Reason: fmt.Sprintf("magic %q is not %q", b[:8], checkpointMagic)}
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != checkpointVersion {
		return 0, &CheckpointError{Offset: 8, Reason: fmt.Sprintf("version %d is not supported (want %d)", v, checkpointVersion)}
	}
	body := binary.LittleEndian.Uint64(b[12:])
	if body > math.MaxInt64-headerSize-trailerSize {
		return 0, &CheckpointError{Offset: 12, Reason: fmt.Sprintf("body length %d is impossible", body)}
	}
	return body, nil
}

// decode checks the checkpoint b, which must be exactly one, and builds its index.
func decode(b []byte) (*Index, error) {
	body, err := checkHeader(b)
	if err != nil {
		return nil, err
	}
	end := uint64(headerSize) + body
	switch {
	case uint64(len(b)) < end+trailerSize:
		return nil, &CheckpointError{Offset: int64(len(b)), Reason: fmt.Sprintf("truncated: body of %d bytes needs %d bytes in all", body, end+trailerSize)}
	case uint64(len(b)) > end+trailerSize:
		return nil, &CheckpointError{Offset: int64(end + trailerSize), Reason: fmt.Sprintf("%d bytes after the checkpoint", uint64(len(b))-end-trailerSize)}
	}
	if stored, sum := binary.LittleEndian.Uint32(b[end:]), crc32.Checksum(b[:end], castagnoli); stored != sum {
		return nil, &CheckpointError{Offset: int64(end), Reason: fmt.Sprintf("checksum %08x does not match the content's %08x", stored, sum)}
	}
	d := decoder{b: b[:end], off: headerSize}
	x := d.index()
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d bytes left over at the end of the body", len(d.b)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return x, nil
}

// decoder reads the body of a checkpoint. The first problem sticks in err, with its offset;
// after it every read returns zero values, so loops end at once.
type decoder struct {
	b   []byte
	off int
	err *CheckpointError
	// The item being read, named in errors: event number event (when not -1), or stream
	// stream (when inStream).
	event    int
	stream   string
	inStream bool
}

func (d *decoder) fail(format string, args ...any) {
	if d.err != nil {
		return
	}
	reason := fmt.Sprintf(format, args...)
	switch {
	case d.inStream:
		reason = fmt.Sprintf("stream %q: %s", d.stream, reason)
	case d.event >= 0:
		reason = fmt.Sprintf("event %d: %s", d.event, reason)
	}
	d.err = &CheckpointError{Offset: int64(d.off), Reason: reason}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("%s: truncated or overlong number", what)
		return 0
	}
	if n > 1 && d.b[d.off+n-1] == 0 {
		// Accepting it would decode to an index that encodes to other bytes.
		d.fail("%s: number not in its shortest form", what)
		return 0
	}
	d.off += n
	return v
}

// count reads a number of items that take at least size bytes each, so it cannot exceed
// what the body has left: no allocation is ever larger than the input.
func (d *decoder) count(what string, size int) int {
	n := d.uvarint(what)
	if left := uint64(len(d.b)-d.off) / uint64(size); n > left {
		d.fail("%s: %d do not fit in the %d bytes left", what, n, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

// ref reads a reference to one of n names.
func (d *decoder) ref(what string, n int) int32 {
	v := d.uvarint(what)
	if d.err == nil && v >= uint64(n) {
		d.fail("%s %d is not one of the %d", what, v, n)
	}
	if d.err != nil {
		return -1
	}
	return int32(v)
}

// names reads a count and as many length-prefixed names, which must be in strictly
// ascending byte order. They share one string: names are never dropped, so it pins nothing
// for nothing.
func (d *decoder) names(what string) []string {
	n := d.count(what+" count", 1)
	start := d.off
	spans := make([][2]int, n)
	lengthOf := what + " length"
	for i := range spans {
		l := d.count(lengthOf, 1)
		spans[i] = [2]int{d.off - start, d.off + l - start}
		d.off += l
	}
	if d.err != nil {
		return nil
	}
	all := string(d.b[start:d.off])
	out := make([]string, n)
	for i, sp := range spans {
		out[i] = all[sp[0]:sp[1]]
		if i > 0 && out[i] <= out[i-1] {
			d.off = start + sp[0]
			d.fail("%s %q does not sort after %q", what, out[i], out[i-1])
			return nil
		}
	}
	return out
}

// index decodes the body into an index.
func (d *decoder) index() *Index {
	d.event = -1
	pos := d.uvarint("position")
	if pos > MaxPosition {
		d.fail("position %d is beyond the largest log position", pos)
	}
	links := d.uvarint("links")
	if links > pos {
		d.fail("%d links do not fit below position %d", links, pos)
	}
	catNames := d.names("category")
	typeNames := d.names("type")
	streamNames := d.names("stream")
	n := d.count("event count", minEventSize)
	if uint64(n) > pos-links {
		d.fail("%d events and %d links do not fit below position %d", n, links, pos)
	}
	if n > maxRefs {
		d.fail("%d events are more than an index holds", n)
	}
	if d.err != nil {
		return nil
	}

	x := &Index{pos: pos, links: int(links), seed: maphash.MakeSeed(), evPos: make([]uint64, n), evID: make([]uuid.UUID, n)}
	// The category and type of every event, to build the lists and check own versions.
	evCat, evType := make([]int32, n), make([]int32, n)
	catLen, typeLen := make([]int, len(catNames)), make([]int, len(typeNames))
	prev := uint64(0)
	for i := 0; i < n && d.err == nil; i++ {
		d.event = i
		delta := d.uvarint("position")
		if d.err == nil && (delta == 0 || delta > pos-prev) {
			d.fail("position %d+%d does not ascend or is beyond position %d", prev, delta, pos)
		}
		if d.err == nil && len(d.b)-d.off < len(uuid.UUID{}) {
			d.fail("truncated id")
		}
		if d.err != nil {
			break
		}
		prev += delta
		x.evPos[i] = prev
		d.off += copy(x.evID[i][:], d.b[d.off:])
		evCat[i] = d.ref("category", len(catNames))
		evType[i] = d.ref("type", len(typeNames))
		if d.err == nil {
			catLen[evCat[i]]++
			typeLen[evType[i]]++
		}
	}
	d.event = -1
	x.cats = d.postings("category", catNames, catLen, n, func(ev int) int32 { return evCat[ev] })
	x.types = d.postings("type", typeNames, typeLen, n, func(ev int) int32 { return evType[ev] })
	d.streams(x, streamNames, evCat) // after the category lists: it marks evCat
	d.linked(x)
	d.caused(x)
	if d.err != nil {
		return nil
	}

	x.ids.reserve(n)
	for i := range x.evID {
		x.ids.place(x.hashID(x.evID[i]), uint32(i))
	}
	x.ids.n = n
	return x
}

// postings builds the table of names where each of n events, ev, is in list list(ev), and
// list j holds size[j] events. Every list must have one.
func (d *decoder) postings(what string, names []string, size []int, n int, list func(ev int) int32) postingsTable {
	t := newPostingsTable(len(names))
	if d.err != nil {
		return t
	}
	for i, name := range names {
		if size[i] == 0 {
			d.fail("%s %q has no event", what, name)
			return t
		}
		t.create(name)
		t.lists[i].evs = make([]uint32, 0, size[i])
	}
	for ev := range n {
		l := &t.lists[list(ev)]
		l.evs = append(l.evs, uint32(ev))
	}
	return t
}

// ownedMark replaces the category of an event in evCat once a stream has it as its own.
const ownedMark = -1

// streams reads the versions of every stream, whose names are in hand. evCat holds the
// category of every event; each event a stream owns gets ownedMark, so no other can.
func (d *decoder) streams(x *Index, names []string, evCat []int32) {
	if d.err != nil {
		return
	}
	x.streams = make([]stream, len(names))
	x.byName = make(map[string]int32, len(names))
	visibleLinks := uint64(0)
	d.inStream = true
	for ref, name := range names {
		d.stream = name
		s := &x.streams[ref]
		*s = stream{name: name, cat: -1}
		if cat, ok := x.cats.byName[CategoryOf(name)]; ok {
			s.cat = cat
		}
		x.byName[name] = int32(ref)
		s.base = d.uvarint("base")
		count := d.count("version count", 1)
		switch {
		case d.err != nil:
		case s.base > x.pos || uint64(count) > x.pos-s.base:
			d.fail("versions %d to %d+%d do not fit below position %d", s.base, s.base, count, x.pos)
		case s.base+uint64(count) == 0:
			d.fail("never had a version")
		}
		if d.err != nil {
			return
		}
		s.entries = make([]uint64, count)
		ord, prevPos := -1, uint64(0)
		for i := range s.entries {
			v := d.uvarint("version")
			if d.err != nil {
				return
			}
			version := s.base + uint64(i)
			if v&1 == 1 {
				visibleLinks++
				e := prevPos + unzigzag(v>>1)
				if e > MaxPosition {
					d.fail("version %d links position %d, beyond the largest log position", version, e)
					return
				}
				s.entries[i], prevPos = e|linkBit, e
				continue
			}
			step := v >> 1
			o := ord + int(min(step, uint64(len(evCat))+1)) // clamped: o stays past the end
			if step == 0 || o >= len(evCat) {
				d.fail("version %d: event %d+%d is not an event after the previous one", version, ord, step)
				return
			}
			switch c := evCat[o]; {
			case c == ownedMark:
				d.fail("version %d: event %d is in another stream", version, o)
			case c != s.cat:
				d.fail("version %d: event %d is not of category %q", version, o, CategoryOf(name))
			default:
				ord, evCat[o] = o, ownedMark
				s.entries[i], prevPos = x.evPos[o], x.evPos[o]
			}
			if d.err != nil {
				return
			}
		}
		if len(s.entries) >= setThreshold {
			x.buildSet(s)
		}
	}
	d.inStream = false
	if visibleLinks > uint64(x.links) {
		d.fail("%d visible links are more than the %d links recorded", visibleLinks, x.links)
	}
	x.names.fill(len(names))
}

// linked reads the streams each linked event was linked into. Every link ever added is
// listed, hidden ones too, so they must number x.links, and each visible link of a
// stream must be among them.
func (d *decoder) linked(x *Index) {
	n := d.count("linked event count", minLinkedSize)
	if d.err != nil {
		return
	}
	x.linked.nodes = make([]listNode, 0, min(uint64(x.links), uint64(len(d.b)-d.off)))
	x.linked.tails.reserve(n)
	listed := uint64(0)
	lowest := uint64(0) // the least position the next linked event can have
	for i := 0; i < n; i++ {
		delta := d.uvarint("linked position")
		switch {
		case d.err != nil:
			return
		case delta == 0:
			d.fail("linked event %d: position delta 0 does not ascend", i)
		case delta > MaxPosition+1-lowest:
			d.fail("linked event %d: position delta %d goes beyond the largest log position", i, delta)
		}
		count := d.count("link count", 1)
		switch {
		case d.err != nil:
			return
		case count == 0:
			d.fail("linked event %d: linked into no stream", i)
		case uint64(count) > uint64(x.links)-listed:
			d.fail("linked event %d: more links listed than the %d links recorded", i, x.links)
		}
		if d.err != nil {
			return
		}
		pos := lowest + delta - 1
		listed += uint64(count)
		for range count {
			ref := d.ref("linked stream", len(x.streams))
			if d.err != nil {
				return
			}
			x.linked.add(x.hashPos, pos, uint32(ref))
		}
		lowest = pos + 1
	}
	if listed != uint64(x.links) {
		d.fail("%d links listed, %d recorded", listed, x.links)
		return
	}
	for ref := range x.streams {
		s := &x.streams[ref]
		for i, e := range s.entries {
			if e&linkBit == 0 {
				continue
			}
			found := false
			x.linked.each(x.hashPos, e&^linkBit, func(r uint32) bool {
				found = r == uint32(ref)
				return !found
			})
			if !found {
				d.fail("stream %q: version %d links position %d, which is not listed as linked into it", s.name, s.base+uint64(i), e&^linkBit)
				return
			}
		}
	}
}

// caused reads the events that have a causation parent, in log order, with their parents.
func (d *decoder) caused(x *Index) {
	n := d.count("caused count", minCausedSize)
	if d.err == nil && n > len(x.evPos) {
		d.fail("%d caused events are more than the %d events", n, len(x.evPos))
	}
	if d.err != nil {
		return
	}
	x.caused.nodes = make([]listNode, 0, n)
	ord := -1
	for i := 0; i < n; i++ {
		step := d.uvarint("caused event")
		o := ord + int(min(step, uint64(len(x.evPos))+1)) // clamped: o stays past the end
		if d.err == nil && (step == 0 || o >= len(x.evPos)) {
			d.fail("caused event %d: event %d+%d is not an event after the previous one", i, ord, step)
		}
		dist := d.uvarint("causation parent")
		if d.err == nil && (dist == 0 || dist > x.evPos[o]) {
			d.fail("caused event %d: the event at %d cannot have a parent %d positions before it", i, x.evPos[o], dist)
		}
		if d.err != nil {
			return
		}
		x.caused.add(x.hashPos, x.evPos[o]-dist, uint32(o))
		ord = o
	}
}
