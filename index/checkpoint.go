package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The checkpoint layout is written down byte by byte in FORMAT.md.
const (
	checkpointMagic   = "pmdindex"
	checkpointVersion = 2
	headerSize        = 20      // magic, version, body length
	trailerSize       = 4       // CRC-32C
	minEventSize      = 19      // position delta, id, category, type
	minLinkedSize     = 3       // position delta, count, one stream
	minCausedSize     = 2       // event step, parent distance
	tmpSuffix         = ".tmp-" // SaveCheckpoint writes path+tmpSuffix+random, then renames
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadCheckpoint is the error, wrapped in a *CheckpointError, for a checkpoint that is
// damaged, truncated, of another version or not a checkpoint.
var ErrBadCheckpoint = errors.New("index: bad checkpoint")

// CheckpointError says what is wrong with a checkpoint and where. It wraps ErrBadCheckpoint.
type CheckpointError struct {
	Offset int64  // byte offset in the checkpoint where the problem was found
	Reason string // what is wrong
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("%v: at byte %d: %s", ErrBadCheckpoint, e.Offset, e.Reason)
}

// Unwrap returns ErrBadCheckpoint.
func (e *CheckpointError) Unwrap() error { return ErrBadCheckpoint }

// WriteTo writes a checkpoint of the whole index, Position included, to w. It implements
// io.WriterTo.
func (x *Index) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(x.encode())
	if err != nil {
		return int64(n), fmt.Errorf("index: write checkpoint: %w", err)
	}
	return int64(n), nil
}

// ReadFrom reads one checkpoint from r, and nothing after it, and returns the index it
// holds. Any damage (wrong magic or version, bad checksum, truncation, inconsistent content)
// fails with a *CheckpointError wrapping ErrBadCheckpoint.
func ReadFrom(r io.Reader) (*Index, error) {
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, headerSize); err != nil {
		return nil, readError(err, 0)
	}
	body, err := checkHeader(buf.Bytes())
	if err != nil {
		return nil, err
	}
	// CopyN grows buf as bytes arrive, so a damaged length cannot make it allocate more
	// than r holds.
	if _, err := io.CopyN(&buf, r, int64(body)+trailerSize); err != nil {
		return nil, readError(err, int64(buf.Len()))
	}
	return decode(buf.Bytes())
}

func readError(err error, off int64) error {
	if errors.Is(err, io.EOF) {
		return &CheckpointError{Offset: off, Reason: "truncated"}
	}
	return fmt.Errorf("index: read checkpoint: %w", err)
}

// SaveCheckpoint writes a checkpoint of the index to path atomically: to a temporary file
// in the same directory, synced, renamed over path, and the directory synced. After a crash
// path holds either the previous checkpoint or the new one. It removes the temporary files
// that saves cut short by a crash left behind.
func (x *Index) SaveCheckpoint(path string) error {
	return WriteCheckpointFile(path, x.encode())
}

// WriteCheckpointFile is SaveCheckpoint for a checkpoint already encoded by WriteTo. It lets
// a caller that guards the index with a lock encode under the lock and leave the file
// write and its fsyncs outside it.
func WriteCheckpointFile(path string, checkpoint []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// Temporary files of saves cut short by a crash are garbage: nothing reads them.
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), base+tmpSuffix) {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	f, err := os.CreateTemp(dir, base+tmpSuffix+"*")
	if err != nil {
		return fmt.Errorf("index: save checkpoint %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("index: save checkpoint %s: %w", path, err)
		}
	}()
	if _, err = f.Write(checkpoint); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// LoadCheckpoint reads the checkpoint at path, which must hold exactly one. A missing file
// fails with an error wrapping fs.ErrNotExist; a damaged one with a *CheckpointError
// wrapping ErrBadCheckpoint.
func LoadCheckpoint(path string) (*Index, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("index: load checkpoint: %w", err)
	}
	x, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("index: load checkpoint %s: %w", path, err)
	}
	return x, nil
}

// encode returns the checkpoint of x.
func (x *Index) encode() []byte {
	catOrder, typeOrder := x.cats.sorted(), x.types.sorted()
	evCat := x.labels(&x.cats, ranks(catOrder))
	evType := x.labels(&x.types, ranks(typeOrder))

	b := make([]byte, headerSize, x.sizeHint())
	copy(b, checkpointMagic)
	binary.LittleEndian.PutUint32(b[8:], checkpointVersion)
	b = binary.AppendUvarint(b, x.pos)
	b = binary.AppendUvarint(b, uint64(x.links))
	b = appendNames(b, &x.cats, catOrder)
	b = appendNames(b, &x.types, typeOrder)

	b = binary.AppendUvarint(b, uint64(len(x.streams)))
	x.names.each(func(ref int32) { b = appendString(b, x.streams[ref].name) })

	b = binary.AppendUvarint(b, uint64(len(x.evPos)))
	prev := uint64(0)
	for i, pos := range x.evPos {
		b = binary.AppendUvarint(b, pos-prev)
		b = append(b, x.evID[i][:]...)
		b = binary.AppendUvarint(b, uint64(evCat[i]))
		b = binary.AppendUvarint(b, uint64(evType[i]))
		prev = pos
	}

	streamRank := make([]int32, len(x.streams))
	rank := int32(0)
	x.names.each(func(ref int32) {
		b = x.appendEntries(b, &x.streams[ref])
		streamRank[ref] = rank
		rank++
	})
	b = x.appendLinked(b, streamRank)
	b = x.appendCaused(b)

	binary.LittleEndian.PutUint64(b[12:], uint64(len(b)-headerSize))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// sizeHint is about the size of the checkpoint of x, a little over rather than under: an
// event takes about 20 bytes, a version 1 to 4, a name its length and a few more, a link
// or a causation up to 8 more.
func (x *Index) sizeHint() int {
	n := headerSize + 32 + len(x.evPos)*(minEventSize+3) + trailerSize
	n += 8 * (len(x.linked.nodes) + len(x.caused.nodes))
	for i := range x.streams {
		n += len(x.streams[i].name) + 4*len(x.streams[i].entries) + 12
	}
	for _, t := range []*postingsTable{&x.cats, &x.types} {
		for _, l := range t.lists {
			n += len(l.name) + 2
		}
	}
	return n
}

// ranks inverts a permutation: ranks(order)[order[i]] == i.
func ranks(order []int32) []int32 {
	r := make([]int32, len(order))
	for i, ref := range order {
		r[ref] = int32(i)
	}
	return r
}

// labels returns, for every event in log order, the rank of the list of t that holds it.
func (x *Index) labels(t *postingsTable, rank []int32) []int32 {
	out := make([]int32, len(x.evPos))
	for ref, l := range t.lists {
		for _, ev := range l.evs {
			out[ev] = rank[ref]
		}
	}
	return out
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendNames appends the number of lists in t and their names in order, byte order.
func appendNames(b []byte, t *postingsTable, order []int32) []byte {
	b = binary.AppendUvarint(b, uint64(len(order)))
	for _, ref := range order {
		b = appendString(b, t.lists[ref].name)
	}
	return b
}

// appendEntries appends the base and the visible versions of s. An own event is stored as
// its distance in events from the previous own event of s, a link as the signed distance in
// positions of its event from the previous entry's event.
func (x *Index) appendEntries(b []byte, s *stream) []byte {
	b = binary.AppendUvarint(b, s.base)
	b = binary.AppendUvarint(b, uint64(len(s.entries)))
	ord, prevPos := -1, uint64(0)
	for _, e := range s.entries {
		pos := e &^ linkBit
		if e&linkBit != 0 {
			b = binary.AppendUvarint(b, zigzag(pos-prevPos)<<1|1)
		} else {
			next := x.ordinal(pos, ord+1)
			b = binary.AppendUvarint(b, uint64(next-ord)<<1)
			ord = next
		}
		prevPos = pos
	}
	return b
}

// appendLinked appends, for every event ever linked, in position order, the streams it
// was linked into in link order, each as its rank in name order. Hidden links stay: they
// are in memory too, and LinkedInto leaves them out when it reads.
func (x *Index) appendLinked(b []byte, streamRank []int32) []byte {
	keys := x.linked.keys()
	b = binary.AppendUvarint(b, uint64(len(keys)))
	prev := ^uint64(0) // -1: the first delta is position+1, so position 0 takes one too
	var refs []uint32
	for _, pos := range keys {
		refs = refs[:0]
		x.linked.each(x.hashPos, pos, func(ref uint32) bool { refs = append(refs, ref); return true })
		b = binary.AppendUvarint(b, pos-prev)
		b = binary.AppendUvarint(b, uint64(len(refs)))
		for _, ref := range refs {
			b = binary.AppendUvarint(b, uint64(streamRank[ref]))
		}
		prev = pos
	}
	return b
}

// appendCaused appends every event that has a causation parent, in log order (the order
// AddCausation added them), as its distance in events from the previous one and its
// distance in positions from its parent.
func (x *Index) appendCaused(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(x.caused.nodes)))
	prev := -1
	for _, nd := range x.caused.nodes {
		b = binary.AppendUvarint(b, uint64(int(nd.val)-prev))
		b = binary.AppendUvarint(b, x.evPos[nd.val]-nd.key)
		prev = int(nd.val)
	}
	return b
}

// ordinal returns the index in x.evPos, at or after lo, of pos, an event position.
// Positions are spread about evenly over the log, so it looks first where pos would be if
// they were exactly, and gallops from there: a few probes instead of a binary search's
// twenty cache misses.
func (x *Index) ordinal(pos uint64, lo int) int {
	p := x.evPos
	guess := max(lo, min(len(p)-1, int(float64(pos)/float64(x.pos)*float64(len(p)))))
	if p[guess] < pos {
		return gallop(p, guess, pos)
	}
	// Gallop down: p[hi] >= pos holds throughout, so the answer is in [lo, hi].
	hi, step := guess, 1
	for hi-step >= lo && p[hi-step] >= pos {
		hi -= step
		step *= 2
	}
	from := max(lo, hi-step+1)
	i, _ := slices.BinarySearch(p[from:hi+1], pos)
	return from + i
}

// gallop returns the index of the first element of the ascending p at or after lo that is
// not below v: an exponential search, fast when the answer is near lo.
func gallop(p []uint64, lo int, v uint64) int {
	step := 1
	for lo+step < len(p) && p[lo+step] < v {
		lo += step
		step *= 2
	}
	i, _ := slices.BinarySearch(p[lo:min(lo+step+1, len(p))], v)
	return lo + i
}

// zigzag maps a difference of positions, read as a two's complement int64, to a small
// unsigned number when it is small either way.
func zigzag(d uint64) uint64 { return d<<1 ^ uint64(int64(d)>>63) }

func unzigzag(z uint64) uint64 { return z>>1 ^ -(z & 1) }
