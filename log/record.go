package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/google/uuid"
)

// Kind says what a record holds.
type Kind uint8

// The record kinds.
const (
	KindEvent  Kind = 1 // an event, stored once in full
	KindLink   Kind = 2 // a link of an earlier event into a stream
	KindDelete Kind = 3 // a stream deletion
	// KindVoid fills the position of a record that was lost to damage: written only by
	// an offline repair (PlanRepair), never by Write. It has a header and no body, and
	// is no event, link or deletion: a reader just goes past its position.
	KindVoid Kind = 4
	// KindRetention sets a stream's retention: which of its versions reads still show.
	KindRetention Kind = 5
	// KindErase erases the data and metadata of the events appended to a stream before a
	// version: reads show them without, and a scavenge removes the bytes.
	KindErase Kind = 6
	// KindGone fills the position of an event or link that no stream shows any more,
	// whose bytes a scavenge removed: written only by Rewrite. Like KindVoid it is no
	// event, link or deletion; unlike it, it is no damage. The gone record of an event
	// keeps the event's id (Gone.ID), so that the id stays taken for an index built from
	// the scavenged log; that of a link, and one written before gone records kept ids,
	// has a header and no body.
	KindGone Kind = 7

	// lastKind is the highest kind the format defines: a new kind goes after it and
	// becomes lastKind, or DecodeRecord refuses it (as does resync, which finds records
	// past damage by the same header check).
	lastKind = KindGone
)

// known reports whether k is a kind the format defines.
func (k Kind) known() bool { return KindEvent <= k && k <= lastKind }

// String returns the kind's name ("event", "link", …, "gone"), or "kind(N)" for a kind
// the format does not define.
func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindLink:
		return "link"
	case KindDelete:
		return "delete"
	case KindVoid:
		return "void"
	case KindRetention:
		return "retention"
	case KindErase:
		return "erase"
	case KindGone:
		return "gone"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is the body of an event record.
type Event struct {
	ID        uuid.UUID
	Stream    string // the stream it was appended to
	Version   uint64 // its version in Stream
	Type      string
	Timestamp int64  // unix nanoseconds, UTC, set by the store
	Data      []byte // msgpack-encoded map, stored as given (may be nil; empty is stored as nil)
	Metadata  []byte // msgpack-encoded map, stored as given (may be nil; empty is stored as nil)
}

// Link is the body of a link record: the event at position Event (with id ID) is linked
// into Stream at Version.
type Link struct {
	Stream  string
	Version uint64
	Event   uint64
	ID      uuid.UUID
}

// Delete is the body of a stream-deletion record: versions of Stream below Before are
// hidden.
type Delete struct {
	Stream string
	Before uint64
}

// Retention is the body of a retention record: the retention settings of Stream from
// then on, replacing those before. A zero field is not set.
type Retention struct {
	Stream         string
	MaxAge         int64  // nanoseconds: events older than this are not read
	MaxCount       uint64 // only the newest MaxCount versions are read
	TruncateBefore uint64 // versions below it are not read
	// ExpiredBefore is the version below which the stream's events had passed MaxAge
	// when the record was written: a scavenge writes it, so that expiry is in the log.
	ExpiredBefore uint64
}

// Erase is the body of an erase record: the events appended to Stream at versions below
// Before lose their data and metadata.
type Erase struct {
	Stream string
	Before uint64
}

// Gone is the body of a gone record: the id of the dead event a scavenge removed, which
// stays taken. uuid.Nil for the gone record of a link (a link has no id of its own: the
// event's record, or its gone record, holds it) and for one written before gone records
// kept ids; such a record has no body.
type Gone struct {
	ID uuid.UUID
}

// Record is one log record. Exactly one of Event, Link, Delete, Retention, Erase and
// Gone is meaningful, chosen by Kind (none for KindVoid); the others are ignored when
// encoding and zero when decoded.
type Record struct {
	Position uint64 // set by Write; checked by reads
	Kind     Kind
	Commit   bool // true on the last record of an atomic batch
	// WriteStart is the position of the first record written by the same Write call;
	// set by Write. Crash repair uses it to tell a torn, never acknowledged write from
	// damage to an earlier one (see FORMAT.md). 0 means unknown.
	WriteStart uint64
	// Erased marks an event record whose data and metadata a scavenge removed after an
	// erase record named it: Data and Metadata are nil.
	Erased bool
	// Applied is the index of the Raft log entry whose write this record ends, for a
	// store replicated by package cluster: set on the commit record of each replicated
	// write, 0 elsewhere. A store's last applied Raft entry is thus durable with its
	// records (flag bit 2; FORMAT.md).
	Applied uint64
	// Slot is the place, from 0, of the write this record ends among the writes of its
	// Raft entry (Applied), for an entry that carries several: set with Applied on the
	// commit record of each write after an entry's first, 0 elsewhere and in records
	// written before entries carried several writes. (Applied, Slot) orders a replica's
	// writes, so a restart after a crash that kept part of an entry's writes skips
	// exactly those (flag bit 4; FORMAT.md).
	Slot      uint32
	Event     Event
	Link      Link
	Delete    Delete
	Retention Retention
	Erase     Erase
	Gone      Gone
}

// Record header layout; FORMAT.md describes it byte by byte.
const (
	recordVersion = 1
	headerSize    = 24
	flagCommit    = 1 << 0
	flagErased    = 1 << 1
	flagApplied   = 1 << 2 // the record ends with the 8-byte Raft index of Applied
	// flagUnsynced marks a record whose Write began while records before it had been
	// written without an fsync since (WriteNoSync): it does not show that they are
	// durable. The Log sets it from its own state, not from a field of Record: the
	// decoder accepts it and Record does not carry it.
	flagUnsynced = 1 << 3
	flagSlot     = 1 << 4 // the record ends with the 4-byte Slot, then the Raft index of Applied
	// knownFlags are the flag bits the format defines: AppendRecord sets each but
	// flagUnsynced from a field of Record, and a new one goes here too, or DecodeRecord
	// (and resync) refuse the records that carry it.
	knownFlags = flagCommit | flagErased | flagApplied | flagUnsynced | flagSlot
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendRecord encodes r (header + checksum + msgpack body) and appends it to dst.
// It does not check r: Write refuses the records that DecodeRecord would reject.
func AppendRecord(dst []byte, r *Record) []byte { return appendRecord(dst, r, 0) }

// appendRecord is AppendRecord with the flag bits in extra (flagUnsynced) set too.
func appendRecord(dst []byte, r *Record, extra byte) []byte {
	start := len(dst)
	flags := extra
	if r.Commit {
		flags |= flagCommit
	}
	if r.Erased {
		flags |= flagErased
	}
	if r.Applied != 0 {
		flags |= flagApplied
	}
	if r.Slot != 0 {
		flags |= flagSlot
	}
	dst = append(dst, 0, 0, 0, 0, recordVersion, byte(r.Kind), flags, 0)
	dst = binary.LittleEndian.AppendUint64(dst, r.Position)
	dst = binary.LittleEndian.AppendUint64(dst, r.WriteStart)
	switch r.Kind {
	case KindEvent:
		e := &r.Event
		dst = append(dst, 0x90|7)
		dst = appendUUID(dst, e.ID)
		dst = appendStr(dst, e.Stream)
		dst = appendUint(dst, e.Version)
		dst = appendStr(dst, e.Type)
		dst = appendInt(dst, e.Timestamp)
		dst = appendBin(dst, e.Data)
		dst = appendBin(dst, e.Metadata)
	case KindLink:
		k := &r.Link
		dst = append(dst, 0x90|4)
		dst = appendStr(dst, k.Stream)
		dst = appendUint(dst, k.Version)
		dst = appendUint(dst, k.Event)
		dst = appendUUID(dst, k.ID)
	case KindDelete:
		d := &r.Delete
		dst = append(dst, 0x90|2)
		dst = appendStr(dst, d.Stream)
		dst = appendUint(dst, d.Before)
	case KindRetention:
		x := &r.Retention
		dst = append(dst, 0x90|5)
		dst = appendStr(dst, x.Stream)
		dst = appendInt(dst, x.MaxAge)
		dst = appendUint(dst, x.MaxCount)
		dst = appendUint(dst, x.TruncateBefore)
		dst = appendUint(dst, x.ExpiredBefore)
	case KindErase:
		x := &r.Erase
		dst = append(dst, 0x90|2)
		dst = appendStr(dst, x.Stream)
		dst = appendUint(dst, x.Before)
	case KindGone:
		if r.Gone.ID != uuid.Nil {
			dst = append(dst, 0x90|1)
			dst = appendUUID(dst, r.Gone.ID)
		}
	case KindVoid:
		// no body
	}
	if r.Slot != 0 {
		dst = binary.LittleEndian.AppendUint32(dst, r.Slot)
	}
	if r.Applied != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, r.Applied)
	}
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// DecodeRecord decodes one encoded record, verifying version, kind, checksum and body.
// It never panics, and rejects garbage (including an empty or all-zero input) with a
// *CorruptError whose Reason says what is wrong. The returned record does not alias b.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < headerSize {
		return r, corrupt(0, "short record: %d bytes, header is %d", len(b), headerSize)
	}
	if sum, want := crc32.Checksum(b[4:], castagnoli), binary.LittleEndian.Uint32(b); sum != want {
		return r, corrupt(0, "checksum mismatch: stored %#08x, computed %#08x", want, sum)
	}
	return decodeUnchecked(b)
}

// decodeUnchecked is DecodeRecord without the checksum, for b of at least headerSize
// bytes: whether bytes that fail it still read as a whole record of some position.
func decodeUnchecked(b []byte) (Record, error) {
	var r Record
	if msg := headerError(b); msg != "" {
		return r, corrupt(0, "%s", msg)
	}
	r.Kind = Kind(b[5])
	r.Commit = b[6]&flagCommit != 0
	r.Erased = b[6]&flagErased != 0
	body := b[headerSize:]
	if b[6]&flagApplied != 0 {
		if len(body) < 8 {
			return r, corrupt(binary.LittleEndian.Uint64(b[8:]), "applied flag without a Raft index")
		}
		r.Applied = binary.LittleEndian.Uint64(body[len(body)-8:])
		body = body[:len(body)-8]
		if r.Applied == 0 {
			return r, corrupt(binary.LittleEndian.Uint64(b[8:]), "applied flag with Raft index 0")
		}
	}
	if b[6]&flagSlot != 0 {
		if b[6]&flagApplied == 0 {
			return r, corrupt(binary.LittleEndian.Uint64(b[8:]), "slot flag without the applied flag")
		}
		if len(body) < 4 {
			return r, corrupt(binary.LittleEndian.Uint64(b[8:]), "slot flag without a slot")
		}
		r.Slot = binary.LittleEndian.Uint32(body[len(body)-4:])
		body = body[:len(body)-4]
		if r.Slot == 0 {
			return r, corrupt(binary.LittleEndian.Uint64(b[8:]), "slot flag with slot 0")
		}
	}
	r.Position = binary.LittleEndian.Uint64(b[8:])
	r.WriteStart = binary.LittleEndian.Uint64(b[16:])
	if r.Position == 0 {
		return r, corrupt(0, "position 0")
	}
	if r.WriteStart > r.Position {
		return r, corrupt(r.Position, "write start %d after the record", r.WriteStart)
	}
	d := decoder{b: body}
	switch r.Kind {
	case KindEvent:
		e := &r.Event
		d.array(7)
		e.ID = d.uuid()
		e.Stream = d.str()
		e.Version = d.uint()
		e.Type = d.str()
		e.Timestamp = d.int()
		e.Data = d.bin()
		e.Metadata = d.bin()
	case KindLink:
		k := &r.Link
		d.array(4)
		k.Stream = d.str()
		k.Version = d.uint()
		k.Event = d.uint()
		k.ID = d.uuid()
	case KindDelete:
		x := &r.Delete
		d.array(2)
		x.Stream = d.str()
		x.Before = d.uint()
	case KindRetention:
		x := &r.Retention
		d.array(5)
		x.Stream = d.str()
		x.MaxAge = d.int()
		x.MaxCount = d.uint()
		x.TruncateBefore = d.uint()
		x.ExpiredBefore = d.uint()
	case KindErase:
		x := &r.Erase
		d.array(2)
		x.Stream = d.str()
		x.Before = d.uint()
	case KindGone:
		// No body without an id (a link's, or one written before gone records kept ids):
		// so the nil id has no body, and a body with it is refused as another encoding.
		if len(d.b) > 0 {
			d.array(1)
			if r.Gone.ID = d.uuid(); d.err == "" && r.Gone.ID == uuid.Nil {
				d.fail("the nil id, which is stored as no body")
			}
		}
	case KindVoid:
		// no body: any byte is a trailing byte
	}
	if d.err != "" {
		return Record{}, corrupt(r.Position, "%s body: %s", r.Kind, d.err)
	}
	if len(d.b) != 0 {
		return Record{}, corrupt(r.Position, "%s body: %d trailing bytes", r.Kind, len(d.b))
	}
	if msg := r.check(r.Position); msg != "" {
		return Record{}, corrupt(r.Position, "%s", msg)
	}
	return r, nil
}

// headerError returns what makes the header of b (at least headerSize bytes) no
// record header, or "": a version, kind or flag the format does not define, or a
// reserved byte that is not 0. DecodeRecord checks it after the checksum; resync checks
// it first, to skip the checksum at the offsets that cannot start a record. As both
// use it, resync finds every record DecodeRecord accepts, of every kind and flags.
func headerError(b []byte) string {
	switch {
	case b[4] != recordVersion:
		return fmt.Sprintf("unknown record version %d", b[4])
	case !Kind(b[5]).known():
		return fmt.Sprintf("unknown record kind %d", b[5])
	case b[6]&^knownFlags != 0:
		return fmt.Sprintf("unknown flags %#02x", b[6])
	case b[7] != 0:
		return fmt.Sprintf("reserved byte is %#02x, want 0", b[7])
	}
	return ""
}

// check returns what is wrong with the body of r, to be stored at pos, or "".
func (r *Record) check(pos uint64) string {
	if r.Applied != 0 && !r.Commit {
		return "a Raft index on a record that does not end a write"
	}
	if r.Slot != 0 && r.Applied == 0 {
		return "a slot on a record without a Raft index"
	}
	if r.Erased && (r.Kind != KindEvent || r.Event.Data != nil || r.Event.Metadata != nil) {
		return "erased flag on a record that is not an event without data and metadata"
	}
	switch r.Kind {
	case KindEvent:
		switch {
		case r.Event.ID == uuid.Nil:
			return "event without id"
		case r.Event.Stream == "":
			return "event without stream"
		case r.Event.Type == "":
			return "event without type"
		}
	case KindLink:
		switch {
		case r.Link.Stream == "":
			return "link without stream"
		case r.Link.ID == uuid.Nil:
			return "link without event id"
		case r.Link.Event == 0 || r.Link.Event >= pos:
			return fmt.Sprintf("link to position %d, not before the link at %d", r.Link.Event, pos)
		}
	case KindDelete:
		if r.Delete.Stream == "" {
			return "delete without stream"
		}
	case KindRetention:
		switch {
		case r.Retention.Stream == "":
			return "retention without stream"
		case r.Retention.MaxAge < 0:
			return fmt.Sprintf("retention with a negative max age %d", r.Retention.MaxAge)
		}
	case KindErase:
		if r.Erase.Stream == "" {
			return "erase without stream"
		}
	case KindVoid, KindGone:
	default:
		return fmt.Sprintf("unknown record kind %d", uint8(r.Kind))
	}
	return ""
}

func corrupt(pos uint64, format string, args ...any) *CorruptError {
	return &CorruptError{Position: pos, Reason: fmt.Sprintf(format, args...)}
}

// The body codec is the msgpack subset the bodies need, written out so that every value
// has exactly one encoding (the shortest), which the decoder insists on: any accepted
// record re-encodes to the same bytes, so its checksum covers its meaning.

func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(dst, byte(v))
	case v <= 0xff:
		return append(dst, 0xcc, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

func appendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(dst, uint64(v))
	case v >= -32:
		return append(dst, byte(v))
	case v >= -128:
		return append(dst, 0xd0, byte(v))
	case v >= -32768:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(v))
	case v >= -2147483648:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

func appendStr(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= 0xff:
		dst = append(dst, 0xd9, byte(n))
	case n <= 0xffff:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

// appendBin writes b as msgpack bin, or nil when b is empty.
func appendBin(dst []byte, b []byte) []byte {
	n := len(b)
	switch {
	case n == 0:
		return append(dst, 0xc0)
	case n <= 0xff:
		dst = append(dst, 0xc4, byte(n))
	case n <= 0xffff:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}

func appendUUID(dst []byte, id uuid.UUID) []byte {
	return append(append(dst, 0xc4, 16), id[:]...)
}

// decoder reads msgpack values from b. The first error sticks in err and makes every
// later read return a zero value, so a body is decoded straight through and checked once.
type decoder struct {
	b   []byte
	err string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == "" {
		d.err = fmt.Sprintf(format, args...)
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != "" {
		return nil
	}
	if n > len(d.b) {
		d.fail("%s needs %d bytes, %d left", what, n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1(what string) byte {
	if v := d.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) array(n int) {
	if c := d.byte1("array header"); d.err == "" && c != 0x90|byte(n) {
		d.fail("want a %d-element array, found type byte %#02x", n, c)
	}
}

// length reads the big-endian length of width bytes that follows a type byte and checks
// that the shorter form (up to max of the previous width) was not usable.
func (d *decoder) length(width int, min uint64, what string) int {
	v := d.take(width, what)
	if v == nil {
		return 0
	}
	var n uint64
	for _, c := range v {
		n = n<<8 | uint64(c)
	}
	if n < min {
		d.fail("%s: non-canonical length %d", what, n)
		return 0
	}
	return int(n)
}

func (d *decoder) uint() uint64 {
	c := d.byte1("uint")
	if d.err != "" {
		return 0
	}
	var v uint64
	var min uint64
	switch c {
	case 0xcc:
		v, min = uint64(d.byte1("uint8")), 0x80
	case 0xcd:
		v, min = uint64(d.length(2, 0, "uint16")), 0x100
	case 0xce:
		v, min = uint64(d.length(4, 0, "uint32")), 0x10000
	case 0xcf:
		b := d.take(8, "uint64")
		if b == nil {
			return 0
		}
		v, min = binary.BigEndian.Uint64(b), 0x100000000
	default:
		if c <= 0x7f {
			return uint64(c)
		}
		d.fail("want an unsigned integer, found type byte %#02x", c)
		return 0
	}
	if d.err == "" && v < min {
		d.fail("non-canonical unsigned integer %d", v)
	}
	return v
}

func (d *decoder) int() int64 {
	if d.err != "" || len(d.b) == 0 {
		d.fail("int needs 1 byte, 0 left")
		return 0
	}
	c := d.b[0]
	if c <= 0x7f || (c >= 0xcc && c <= 0xcf) {
		v := d.uint()
		if v > 1<<63-1 {
			d.fail("integer %d overflows int64", v)
			return 0
		}
		return int64(v)
	}
	d.b = d.b[1:]
	var v, min int64
	switch c {
	case 0xd0:
		v, min = int64(int8(d.byte1("int8"))), -32
	case 0xd1:
		v, min = int64(int16(d.length(2, 0, "int16"))), -128
	case 0xd2:
		v, min = int64(int32(d.length(4, 0, "int32"))), -32768
	case 0xd3:
		b := d.take(8, "int64")
		if b == nil {
			return 0
		}
		v, min = int64(binary.BigEndian.Uint64(b)), -2147483648
	default:
		if c >= 0xe0 {
			return int64(int8(c))
		}
		d.fail("want an integer, found type byte %#02x", c)
		return 0
	}
	if d.err == "" && v >= min {
		d.fail("non-canonical integer %d", v)
	}
	return v
}

func (d *decoder) str() string {
	c := d.byte1("string")
	if d.err != "" {
		return ""
	}
	var n int
	switch {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9:
		n = d.length(1, 32, "str8")
	case c == 0xda:
		n = d.length(2, 0x100, "str16")
	case c == 0xdb:
		n = d.length(4, 0x10000, "str32")
	default:
		d.fail("want a string, found type byte %#02x", c)
		return ""
	}
	return string(d.take(n, "string"))
}

// bin reads a bin value or nil; nil and an empty value both come back as nil, and an
// empty bin is refused because it is stored as nil.
func (d *decoder) bin() []byte {
	c := d.byte1("bin")
	if d.err != "" {
		return nil
	}
	var n int
	switch c {
	case 0xc0:
		return nil
	case 0xc4:
		n = d.length(1, 1, "bin8")
	case 0xc5:
		n = d.length(2, 0x100, "bin16")
	case 0xc6:
		n = d.length(4, 0x10000, "bin32")
	default:
		d.fail("want bin or nil, found type byte %#02x", c)
		return nil
	}
	v := d.take(n, "bin")
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) uuid() uuid.UUID {
	var id uuid.UUID
	if c, n := d.byte1("uuid"), d.byte1("uuid length"); d.err == "" && (c != 0xc4 || n != 16) {
		d.fail("want a 16-byte bin uuid, found %#02x %#02x", c, n)
	}
	copy(id[:], d.take(16, "uuid"))
	return id
}
