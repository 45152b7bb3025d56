package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
)

// Key spaces, one byte each. FORMAT.md describes every key and value byte by byte.
const (
	spaceMeta     = 'M' // M<name>: the index's own facts (format version, position)
	spaceVersion  = 'V' // V<stream>\0: the stream's state; V<stream>\0<be64 version>: uv position<<1 | link
	spaceMember   = 'P' // P<stream>\0<be64 position>: uv version
	spaceID       = 'I' // I<16-byte id>: uv position
	spaceCategory = 'C' // C<category>\0<be64 position>: empty
	spaceType     = 'T' // T<type>\0<be64 position>: empty
	spaceLinked   = 'L' // L<be64 event position><be64 link position>: uv version, stream
	spaceCaused   = 'K' // K<be64 parent position><be64 child position>: empty
	spaceDead     = 'D' // D<be64 position>: empty: the event is in no stream any more
	spaceErased   = 'E' // E<stream>: uv before: the events appended below it are erased
)

// Meta keys.
var (
	keyFormat   = []byte("Mformat")
	keyPosition = []byte("Mposition")
)

// FormatVersion is the version of the key layout in FORMAT.md. Open refuses an index
// directory of another version with ErrFormat (and ErrOlderFormat for an older one); its
// owner rebuilds it from the log. Version 2 marks dead events: a version 1 index has no
// marks for the events its deletions killed. Version 3 keeps a stream's state right before
// its versions, so that a read of the stream is one iteration.
const FormatVersion = 3

// ErrFormat is matched by errors for an index directory written in a layout this version
// does not read, or holding a key or value that breaks the layout: in both cases the
// index cannot be trusted and is rebuilt from the log.
var ErrFormat = errors.New("index: unreadable format")

// ErrOlderFormat is matched, with ErrFormat, by the error of Open for an index written in
// an older layout: an upgrade, not damage.
var ErrOlderFormat = errors.New("index: older format")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// nameKey returns space, name.
func nameKey(dst []byte, space byte, name string) []byte {
	dst = append(dst, space)
	return append(dst, name...)
}

// stateKey returns V, name, 0: the key of a stream's state, which sorts right before the
// stream's versions (namedKey(dst, spaceVersion, name, v)), a prefix of each of them.
func stateKey(dst []byte, name string) []byte {
	return namePrefix(dst, spaceVersion, name)
}

// isStateKey reports whether k, a key in the V space, is a stream's state rather than
// one of its versions: its name's 0 ends it.
func isStateKey(k []byte) bool {
	return len(k) >= 2 && k[len(k)-1] == 0 && bytes.IndexByte(k, 0) == len(k)-1
}

// namedKey returns space, name, 0, be64(n): a key under a name (stream, category, type)
// ordered by n. Names never hold a 0 byte (CheckName refuses control characters), so the
// 0 ends the name and every key of one name sorts together, by n.
func namedKey(dst []byte, space byte, name string, n uint64) []byte {
	dst = namePrefix(dst, space, name)
	return binary.BigEndian.AppendUint64(dst, n)
}

// namePrefix returns space, name, 0: the prefix of every namedKey of name.
func namePrefix(dst []byte, space byte, name string) []byte {
	dst = append(dst, space)
	dst = append(dst, name...)
	return append(dst, 0)
}

// pairKey returns space, be64(a), be64(b).
func pairKey(dst []byte, space byte, a, b uint64) []byte {
	dst = append(dst, space)
	dst = binary.BigEndian.AppendUint64(dst, a)
	return binary.BigEndian.AppendUint64(dst, b)
}

func idKey(dst []byte, id uuid.UUID) []byte {
	dst = append(dst, spaceID)
	return append(dst, id[:]...)
}

// upper returns the smallest key above every key that starts with prefix, for an
// iterator's UpperBound. Prefixes here never end in 0xff bytes only, but the loop is
// general.
func upper(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// suffix64 returns the big-endian number that ends key.
func suffix64(key []byte) uint64 {
	return binary.BigEndian.Uint64(key[len(key)-8:])
}

// uvs decodes n unsigned varints from b, which must hold exactly those (tail false) or
// start with them (tail true, the rest returned).
func uvs(b []byte, n int, tail bool) ([]uint64, []byte, error) {
	out := make([]uint64, n)
	for i := range out {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, nil, formatErr("bad varint in value %x", b)
		}
		out[i], b = v, b[k:]
	}
	if !tail && len(b) != 0 {
		return nil, nil, formatErr("%d bytes after the value", len(b))
	}
	return out, b, nil
}

func appendUvs(dst []byte, vs ...uint64) []byte {
	for _, v := range vs {
		dst = binary.AppendUvarint(dst, v)
	}
	return dst
}

// streamRec is a stream's state as stored: base is the next version at its last
// deletion, floor the lowest version its retention still shows (0 without retention).
type streamRec struct {
	base, next, floor uint64
	ret               Retention
}

// lo is the first visible version.
func (r *streamRec) lo() uint64 { return max(r.base, r.floor) }

func (r *streamRec) state() StreamState {
	return StreamState{Exists: r.base < r.next, Last: int64(r.next) - 1, Next: r.next, First: r.lo(), Retention: r.ret}
}

// streamValue encodes a stream's state: base and next, then floor and the retention
// settings if the stream has ever had any.
func streamValue(dst []byte, r *streamRec) []byte {
	dst = appendUvs(dst, r.base, r.next)
	if r.floor == 0 && r.ret == (Retention{}) {
		return dst
	}
	return appendUvs(dst, r.floor, uint64(r.ret.MaxAge), r.ret.MaxCount, r.ret.TruncateBefore)
}

func decodeStream(b []byte) (streamRec, error) {
	v, rest, err := uvs(b, 2, true)
	if err != nil {
		return streamRec{}, err
	}
	r := streamRec{base: v[0], next: v[1]}
	if len(rest) > 0 {
		w, _, err := uvs(rest, 4, false)
		if err != nil {
			return streamRec{}, err
		}
		if w[1] > math.MaxInt64 {
			return streamRec{}, formatErr("stream max age %d overflows", w[1])
		}
		r.floor, r.ret = w[0], Retention{MaxAge: int64(w[1]), MaxCount: w[2], TruncateBefore: w[3]}
	}
	if r.base > r.next {
		return streamRec{}, formatErr("stream base %d above next %d", r.base, r.next)
	}
	return r, nil
}

// entryValue encodes a version entry: the event's position and whether it is linked.
func entryValue(dst []byte, pos uint64, link bool) []byte {
	v := pos << 1
	if link {
		v |= 1
	}
	return binary.AppendUvarint(dst, v)
}

func decodeEntry(b []byte) (pos uint64, link bool, err error) {
	v, _, err := uvs(b, 1, false)
	if err != nil {
		return 0, false, err
	}
	return v[0] >> 1, v[0]&1 == 1, nil
}

func decodeUint(b []byte) (uint64, error) {
	v, _, err := uvs(b, 1, false)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// linkedValue encodes the stream a link put an event into, and at which version.
func linkedValue(dst []byte, version uint64, stream string) []byte {
	return append(binary.AppendUvarint(dst, version), stream...)
}

func decodeLinked(b []byte) (version uint64, stream string, err error) {
	v, rest, err := uvs(b, 1, true)
	if err != nil {
		return 0, "", err
	}
	if len(rest) == 0 {
		return 0, "", formatErr("link value names no stream")
	}
	return v[0], string(rest), nil
}
