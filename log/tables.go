package log

import (
	"bufio"
	"container/list"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
)

// The offset tables of sealed segments are loaded lazily and a bounded number of them
// is kept: Open learns a sealed segment's record count from the file names (the next
// segment's first position minus its own) and its size from stat, and reads neither
// the segment nor its sidecar. The first Read, Scan or Scrub that needs the segment's
// offsets loads them (Log.table), and at most Options.MaxLoadedSegments tables are kept,
// the least recently used one being dropped when another is loaded; a dropped table is
// loaded again from its sidecar when next needed. The tail's table is always in memory
// and is not counted.
//
// Loading is done once for all the readers that want the same table at the same time:
// the first one loads, the others wait for its result, error included. A load that finds
// the segment damaged (a *CorruptError naming the run of records it hides) is kept as a
// table is, with the offsets of the entries framed before the damage: the reads of the
// segment that follow answer from it instead of framing the whole segment again, which
// a paged read or Open's replay through the hidden run did once per position. A sealed
// segment's file does not change under an open Log (a repair is done offline, with the
// directory locked, and a reopen starts with no table; Rewrite refuses a segment whose
// table does not load, and clears the kept state when it swaps a file in), so the
// damage stays what it was found to be. Like a table, it is dropped when the least
// recently used, and found again by the next read. A load that fails otherwise (an I/O
// error) is not kept: the next read tries again, so that a transient error does not
// make a segment unreadable until a restart.

// defaultMaxLoadedSegments is the number of sealed segments' offset tables kept in memory
// by default: with the default 64 MiB segments, the tables of the last 4 GiB of log read.
// A table takes 4 bytes per record: about 0.6 MiB for a segment of 400-byte records, so
// some 40 MiB for all of them, and at most 4 × SegmentSize / 25 bytes each (25 bytes
// being the smallest entry).
const defaultMaxLoadedSegments = 64

// tableCache keeps the offset tables of at most max sealed segments loaded.
type tableCache struct {
	mu    sync.Mutex
	max   int
	lru   list.List // of *segment whose offs is loaded and may be dropped, most recent first
	loads int       // tables loaded from a sidecar or a segment, for tests

	framings int // segments framed by a load, their sidecar unusable, for tests
}

// tableLoad is the load of one segment's table in flight; done is closed when offs and
// err are set.
type tableLoad struct {
	done chan struct{}
	offs []uint32
	err  error
}

// table returns the offset table of the sealed segment s, loading it if it is not in
// memory. The slice returned is never modified: it stays valid after the table is
// dropped.
func (l *Log) table(s *segment) ([]uint32, error) {
	c := l.tables
	c.mu.Lock()
	if s.offs != nil || s.bad != nil {
		if s.elem != nil {
			c.lru.MoveToFront(s.elem)
		}
		offs, bad := s.offs, s.bad
		c.mu.Unlock()
		if bad != nil {
			return offs, bad
		}
		return offs, nil
	}
	if ld := s.loading; ld != nil {
		c.mu.Unlock()
		<-ld.done
		return ld.offs, ld.err
	}
	ld := &tableLoad{done: make(chan struct{})}
	s.loading = ld
	c.loads++
	c.mu.Unlock()

	ld.offs, ld.err = l.loadTable(s)

	c.mu.Lock()
	s.loading = nil
	if ld.err == nil {
		c.keep(s, ld.offs, nil)
	} else if ce, ok := ld.err.(*CorruptError); ok {
		c.keep(s, ld.offs, ce) // damage, not an I/O error: the next read answers from it
	}
	c.mu.Unlock()
	close(ld.done)
	return ld.offs, ld.err
}

// keep makes offs the loaded table of s, most recently used, and drops the least
// recently used tables beyond max. bad, if not nil, is the damage the load found, offs
// then holding the offsets of the entries framed before it. Callers hold c.mu.
func (c *tableCache) keep(s *segment, offs []uint32, bad *CorruptError) {
	s.offs, s.bad = offs, bad
	s.elem = c.lru.PushFront(s)
	for c.lru.Len() > c.max {
		c.drop(c.lru.Back().Value.(*segment))
	}
}

// drop forgets the loaded table of s. Callers hold c.mu.
func (c *tableCache) drop(s *segment) {
	if s.elem != nil {
		c.lru.Remove(s.elem)
	}
	s.elem, s.offs, s.bad = nil, nil, nil
}

// sealed hands the cache the table of s, a segment the write path has just sealed and
// whose sidecar it has written: until then the table is not dropped, so that no load
// reads a sidecar being written.
func (c *tableCache) sealed(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keep(s, s.offs, nil)
}

// loaded reports how many sealed segments' tables are in memory and how many loads
// there have been, for tests.
func (c *tableCache) loaded() (tables, loads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.loads
}

// loadTable reads the offset table of the sealed segment s from its sidecar, checked as
// unusable does (first position, record count, size, checksum). If the sidecar does not
// fit, the table is rebuilt by framing the segment and the sidecar rewritten (not in
// ReadOnly mode). A segment whose framing breaks, or does not give the record count the
// file names imply, is a *CorruptError whose Position and End name the records it hides
// (from the first that cannot be framed to the end of the segment), Offset where the
// entries framed end; with it come the offsets of those entries, which stay readable.
func (l *Log) loadTable(s *segment) ([]uint32, error) {
	f := segFile{first: s.first, path: s.path, size: s.size}
	count := uint64(s.count)
	t, err := readSidecar(f.path)
	why := unusable(t, err, f, count)
	if why == "" {
		return t.offs, nil
	}
	l.tables.mu.Lock()
	l.tables.framings++
	l.tables.mu.Unlock()
	offs, err := scanOffsets(f.path)
	var ce *CorruptError
	if errors.As(err, &ce) {
		return hidden(offs, f, count, ce.Offset, ce.Reason)
	}
	if err != nil {
		return nil, err
	}
	if uint64(len(offs)) != count {
		return hidden(offs, f, count, f.size,
			fmt.Sprintf("sealed segment holds %d records, but the next segment starts at position %d", len(offs), f.first+count))
	}
	if l.opts.ReadOnly {
		return offs, nil
	}
	l.logger.Info(fmt.Sprintf("log: rebuilt offsets of segment %s: %s", f.path, why), "segment", f.path, "records", len(offs))
	l.writeSidecar(s.first, s.path, s.size, offs)
	return offs, nil
}

// hidden returns the damage of the sealed segment f, which should hold count records but
// whose entries could be framed only up to offset off (offs being theirs), and the
// offsets of the records before it: the rest of the segment is hidden. A segment that
// frames to more entries than count has its last record named, the extra bytes making
// where it ends unknown. Damage that frames without an error (a length prefix that
// takes in the next entry, or stops inside its own) puts every entry after it at the
// wrong offset: the framed entries are read, and the hidden run starts right after the
// last one that holds the record of its position. An entry before that one which does not
// is damaged on its own (its contents, not its framing: the entries after it frame right),
// and stays a single damaged record.
func hidden(offs []uint32, f segFile, count uint64, off int64, reason string) ([]uint32, error) {
	n := min(uint64(len(offs)), count-1)
	if n < uint64(len(offs)) {
		off = int64(offs[n])
	}
	v, bad, err := verifyEntries(f, offs[:n], off)
	if err != nil {
		return nil, err
	}
	if v < n {
		n, off, reason = v, int64(offs[v]), bad.Reason+"; "+reason
	}
	return offs[:n], &CorruptError{Segment: f.path, Offset: off, Position: f.first + n, End: f.first + count, Reason: reason}
}

// verifyEntries reads the entries of the segment file f at offs, framed from its start
// up to offset end, and returns how many lead up to the last of them that holds the
// record of its position, with the damage of the first entry after that one (nil if
// there is none). An entry that fails is damaged alone only if its bytes, checksum
// aside, still read as a whole record of its position: its contents are damaged, not
// its framing. One that does not (a length prefix that takes in too much or too little)
// puts the entries after it at offsets that cannot be trusted, even one that reads as a
// good record (an event's data may hold the bytes of one), so the count stops there.
func verifyEntries(f segFile, offs []uint32, end int64) (uint64, *CorruptError, error) {
	if len(offs) == 0 {
		return 0, nil, nil
	}
	file, err := os.Open(f.path)
	if err != nil {
		return 0, nil, err
	}
	defer file.Close()
	br := bufio.NewReaderSize(io.NewSectionReader(file, 0, end), int(min(end, scanBufferSize)))
	var good uint64
	var bad *CorruptError
	var b []byte
	for i, off := range offs {
		next := end
		if i+1 < len(offs) {
			next = int64(offs[i+1])
		}
		b = slices.Grow(b[:0], int(next-int64(off)))[:next-int64(off)]
		if _, err := io.ReadFull(br, b); err != nil {
			return 0, nil, fmt.Errorf("log: read %s: %w", f.path, err)
		}
		pos := f.first + uint64(i)
		_, err := decodeEntry(b, f.path, int64(off), pos)
		if err == nil {
			good, bad = uint64(i)+1, nil
			continue
		}
		var ce *CorruptError
		if !errors.As(err, &ce) {
			return 0, nil, err
		}
		if bad == nil {
			bad = ce
		}
		if raw, n, ok := entry(b); !ok || n != len(b) || len(raw) < headerSize {
			break
		} else if r, err := decodeUnchecked(raw); err != nil || r.Position != pos {
			break
		}
	}
	return good, bad, nil
}
