package log

import (
	"bufio"
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// A segment file is named by the position of its first entry as 20 decimal digits, the
// naming of github.com/tidwall/wal; its entries are uvarint(len) + len bytes of record.
const segmentNameLen = 20

func segmentName(first uint64) string { return fmt.Sprintf("%020d", first) }

// segment is what the Log knows of one segment file. first and path never change. For
// the tail, count, offs and size grow under Log.mu. For a sealed segment count and size
// are fixed (from the file names and stat at Open, or from the tail it was), and offs is
// its offset table while it is loaded: set and cleared under tableCache.mu only (see
// tables.go), nil when not loaded.
type segment struct {
	first uint64
	path  string
	count int      // records in it
	offs  []uint32 // start offset of each entry: 4 bytes of memory per record
	size  int64    // end of the last entry

	// For a sealed segment, guarded by tableCache.mu.
	elem    *list.Element // in tableCache.lru while offs is loaded and evictable
	loading *tableLoad    // the load of offs in flight, nil if none
	bad     *CorruptError // the damage the kept load found, offs framing up to it; nil if none

	// swap is held for writing by Rewrite while it renames a new file over a sealed
	// segment and sets its size and offsets, and for reading by whoever reads the segment
	// through its size and offsets, so that it reads the old file or the new one whole.
	swap sync.RWMutex
	gen  int // rewrites so far; written under swap and Log.mu

	// sidecar, for a segment a write sealed, is closed once its sidecar is written in
	// the background; nil for the others. Rewrite waits on it, so that a sidecar of the
	// old contents never lands after its own.
	sidecar chan struct{}
}

// open returns the table, size and open file of s as one consistent whole: a file
// acquired under swap keeps the contents its size and table describe even if a Rewrite
// renames a new file over it afterwards. gen is the generation the caller saw s in, -1
// for any: if a Rewrite came in between, ok is false and nothing is acquired. For the
// tail (sealed false), whose bounds the caller has, offs is nil and size 0; so is offs
// when the caller does not need it (table false). When the table cannot be loaded,
// nothing is acquired, err says why, and offs holds what loadTable framed before the
// damage.
func (l *Log) openSegment(s *segment, gen int, sealed, table bool) (offs []uint32, size int64, cf *cachedFile, ok bool, err error) {
	s.swap.RLock()
	defer s.swap.RUnlock()
	if gen >= 0 && s.gen != gen {
		return nil, 0, nil, false, nil
	}
	if sealed {
		if table {
			if offs, err = l.table(s); err != nil {
				return offs, s.size, nil, true, err
			}
		}
		size = s.size // constant but for a Rewrite, which holds swap
	}
	cf, err = l.files.acquire(s, size)
	return offs, size, cf, true, err
}

// bounds returns the byte range of the entry at index i.
func (s *segment) bounds(i int) (start, end int64) {
	return offsBounds(s.offs, s.size, i)
}

// offsBounds returns the byte range of the entry at index i of a segment of size bytes
// with offset table offs.
func offsBounds(offs []uint32, size int64, i int) (start, end int64) {
	start = int64(offs[i])
	if i+1 < len(offs) {
		return start, int64(offs[i+1])
	}
	return start, size
}

// segFile is a segment file found in the directory.
type segFile struct {
	first    uint64
	path     string
	size     int64
	uid, gid int // the file's owner, found with its size; -1 on a system without owners
	// missing, offline only (planOffline), is a first segment whose file is missing,
	// planned as there: never opened (see planCut).
	missing bool
}

// listSegments returns the segment files in dir in position order, with their sizes,
// and the other files beside them (see listFiles).
func listSegments(dir string) (segs []segFile, beside []string, err error) {
	if segs, beside, err = listFiles(dir); err != nil {
		return nil, nil, err
	}
	if err := statSegments(segs); err != nil {
		return nil, nil, err
	}
	return segs, beside, nil
}

// HoldsSegment reports whether the directory dir holds a segment file, as the directory
// of every log does from its first Open on.
func HoldsSegment(dir string) (bool, error) {
	segs, _, err := listFiles(dir)
	return len(segs) > 0, err
}

// sizeUnknown is the size of a segFile whose file has not been stat'ed.
const sizeUnknown = -1

// listFiles returns the segment files in dir in position order, their sizes unknown, and
// the files beside them that Open tidies (tidySidecars): the sidecars of logs written
// before sidecarDir, sidecars they were writing, and segments being rewritten by a
// repair or a scavenge. It refuses a directory holding the START/END files of
// tidwall/wal's truncation, which this package never does: wal.Open would delete
// segments on seeing them.
//
// It reads only the directory: a stat of every segment costs as much again (280 ms for
// 32,000 segments on a 2-core VM), which Open spends while tidwall/wal lists the
// directory itself.
func listFiles(dir string) (segs []segFile, sidecars []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || len(name) < segmentNameLen {
			continue
		}
		first, perr := strconv.ParseUint(name[:segmentNameLen], 10, 64)
		if perr != nil || first == 0 {
			continue
		}
		suffix := name[segmentNameLen:]
		switch {
		case suffix == "":
			segs = append(segs, segFile{first: first, path: filepath.Join(dir, name), size: sizeUnknown})
		case suffix == sidecarExt || suffix == sidecarExt+tmpExt || suffix == repairTmpExt || suffix == scavengeTmpExt:
			sidecars = append(sidecars, filepath.Join(dir, name))
		case suffix == ".START" || suffix == ".END":
			return nil, nil, fmt.Errorf("unexpected truncation file %s", name)
		}
	}
	// os.ReadDir sorts by name, and equal-length decimal names sort by value.
	return segs, sidecars, nil
}

// statSegments sets the size and owner of every segment of segs whose size is unknown.
func statSegments(segs []segFile) error {
	for i := range segs {
		if segs[i].size != sizeUnknown {
			continue
		}
		fi, err := os.Lstat(segs[i].path)
		if err != nil {
			return err
		}
		segs[i].size = fi.Size()
		segs[i].uid, segs[i].gid = -1, -1
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			segs[i].uid, segs[i].gid = int(st.Uid), int(st.Gid)
		}
	}
	return nil
}

// entry reads the entry framing at the start of b: the record bytes and the entry size.
// ok is false when b does not hold a whole entry.
func entry(b []byte) (rec []byte, size int, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || k != uvarintLen(n) || n > uint64(len(b)-k) {
		return nil, 0, false
	}
	return b[k : k+int(n)], k + int(n), true
}

// frameError says why framing stopped at an offset.
func frameError(b []byte) string {
	n, k := binary.Uvarint(b)
	switch {
	case k == 0:
		return "torn entry: length prefix cut short"
	case k < 0:
		return "entry length prefix overflows"
	case k != uvarintLen(n):
		return "entry length prefix is not minimal"
	}
	return fmt.Sprintf("torn entry: length %d runs %d bytes past the end of the file", n, n-uint64(len(b)-k))
}

// readUvarint reads an entry's length prefix and its size in bytes, refusing what
// tidwall/wal never writes: a prefix that is not minimal or overflows.
func readUvarint(br io.ByteReader) (n uint64, k int64, err error) {
	var shift uint
	for k = 1; k <= binary.MaxVarintLen64; k++ {
		c, err := br.ReadByte()
		if err != nil {
			return 0, k, fmt.Errorf("torn entry: length prefix: %w", err)
		}
		if k == binary.MaxVarintLen64 && c > 1 {
			break
		}
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if k != int64(uvarintLen(n)) {
				return 0, k, errors.New("entry length prefix is not minimal")
			}
			return n, k, nil
		}
		shift += 7
	}
	return 0, k, errors.New("entry length prefix overflows")
}

func entrySize(n int) int { return uvarintLen(uint64(n)) + n }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// scanOffsets frames a whole sealed segment file, returning its entry offsets. It reads
// the file through a buffer and skips the records' bytes: a sealed segment's records are
// checked when read. When framing breaks, the error (a *CorruptError at the offset where
// it breaks) comes with the offsets of the entries framed before it.
func scanOffsets(path string) ([]uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, scanBufferSize)
	var offs []uint32
	for off, size := int64(0), info.Size(); off < size; {
		if off > maxOffset {
			return offs, &CorruptError{Offset: off, Reason: "entry starts past the 4 GiB offset limit"}
		}
		n, k, err := readUvarint(br)
		if rerr := errors.Unwrap(err); rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, fmt.Errorf("read %s: %w", path, rerr) // I/O, not damage
		}
		if err != nil {
			return offs, &CorruptError{Offset: off, Reason: err.Error()}
		}
		if n > uint64(size-off-k) {
			return offs, &CorruptError{Offset: off, Reason: fmt.Sprintf("torn entry: length %d runs past the end of the file", n)}
		}
		if _, err := br.Discard(int(n)); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		offs = append(offs, uint32(off))
		off += k + int64(n)
	}
	return offs, nil
}

// maxOffset bounds an entry's start offset, kept in a uint32. Writes never start an entry
// past SegmentSize (at most maxSegmentSize), so only damage can exceed it.
const maxOffset = 1<<32 - 1
