package log

import (
	"bufio"
	"encoding/binary"
	"io"
	"os"
	"sort"
)

// hiddenRun is the repair of the run of positions a damaged sealed segment hides
// (CorruptError.End): the intact records framed forward from its start are kept at
// their positions, and a void record is written at each position from the first it
// cannot frame so to the run's end. It holds no record per position: the void records
// are made as Apply writes them.
type hiddenRun struct {
	lead    []piece // the records kept from the run's first position up to voided
	voided  uint64  // the first position voided
	voids   int     // how many positions are voided, from voided on: all to the run's end
	last    *Record // the last void record (its Commit and Applied are the plan's), nil if voids is 0
	applied raftPos // Applied and Slot of the void records before last, which are commits (a cluster node's log)
}

// raftPos is the Raft index and slot a commit record of a cluster node's log carries
// (Record.Applied, Record.Slot).
type raftPos struct {
	index uint64
	slot  uint32
}

// piece is a part of the old segment file that the rewrite keeps: whole entries copied
// as they are, or (reframe) the bytes of one record whose length prefix was damaged,
// written with a new one.
type piece struct {
	from, to int64
	reframe  bool
}

// runCandidate is a whole valid record found at some offset of a run's bytes.
type runCandidate struct {
	off, end int64 // of its entry, length prefix included
	pos      uint64
}

// recoverRun finds the intact records of positions first to end-1 in b, the bytes of a
// sealed segment from the entry where its framing breaks (b[0], at offset base of the
// file) to the end of the file, the positions a Log's reads take as hidden. Past the
// damage the framing cannot be trusted, and an event's data may hold the bytes of a
// whole valid record (of another log, or forged: of its own position, ending where its
// entry ends), so a record found at some offset (as resync finds them) is kept only where
// it is framed from a point known to be an entry's start and holds the record of the
// position that point gives: from the start of b (the end of the entries framed before
// the damage) forward, entry after entry. Across an entry whose length prefix alone is
// damaged (its record's bytes lie between two such points, after a prefix of 1 to 10
// bytes, and hold the record of its position) the walk goes on, the record framed again;
// at any other damage it stops, and every position from there to end-1 is voided: no
// record past framing damage the forward walk cannot cross is kept (its bytes go to the
// quarantine). A walk back from the end of the file (where the record of position end-1
// ends) only counts the records that look intact past that damage, for the preview
// (unconfirmed); it keeps none, as their ends are known but their starts are not. It
// stops at the next damage it meets going back, so records between two damages are not
// counted: unconfirmed is a lower bound. void is the first position voided and n their
// count (0 if every record is kept); lead is the pieces kept before them, with offsets in
// the file.
func recoverRun(b []byte, base int64, first, end uint64) (lead []piece, void uint64, n, unconfirmed int) {
	var cands []runCandidate // by offset
	for off := 0; off < len(b); off++ {
		raw, k, ok := entry(b[off:])
		if !ok || len(raw) < headerSize || raw[4] != recordVersion || !Kind(raw[5]).known() || raw[6]&^knownFlags != 0 || raw[7] != 0 {
			continue // headerError's checks, without making its message at every offset
		}
		if r, err := DecodeRecord(raw); err == nil && r.Position >= first && r.Position < end {
			cands = append(cands, runCandidate{off: int64(off), end: int64(off + k), pos: r.Position})
		}
	}
	byEnd := make([]int32, len(cands)) // indexes of cands by end, then offset
	byPos := make([]int32, len(cands)) // by position, then offset
	for i := range cands {
		byEnd[i], byPos[i] = int32(i), int32(i)
	}
	sort.Slice(byEnd, func(i, j int) bool {
		a, b := cands[byEnd[i]], cands[byEnd[j]]
		return a.end < b.end || a.end == b.end && a.off < b.off
	})
	sort.Slice(byPos, func(i, j int) bool {
		a, b := cands[byPos[i]], cands[byPos[j]]
		return a.pos < b.pos || a.pos == b.pos && a.off < b.off
	})
	// ofPos returns the candidates holding pos.
	ofPos := func(pos uint64) []int32 {
		i := sort.Search(len(byPos), func(i int) bool { return cands[byPos[i]].pos >= pos })
		j := i
		for j < len(byPos) && cands[byPos[j]].pos == pos {
			j++
		}
		return byPos[i:j]
	}
	// reframed reports where the record of pos starts if the bytes from from to to are
	// a damaged length prefix followed by it.
	reframed := func(from, to int64, pos uint64) (int64, bool) {
		for w := int64(1); w <= binary.MaxVarintLen64 && to-from-w >= headerSize; w++ {
			if r, err := DecodeRecord(b[from+w : to]); err == nil && r.Position == pos {
				return from + w, true
			}
		}
		return 0, false
	}
	add := func(ps []piece, from, to int64, reframe bool) []piece {
		if n := len(ps); n > 0 && !reframe && !ps[n-1].reframe && ps[n-1].to == base+from {
			ps[n-1].to = base + to
			return ps
		}
		return append(ps, piece{from: base + from, to: base + to, reframe: reframe})
	}

	// Forward, from the start of b.
	lo, at := first, int64(0)
	for lo < end {
		i := sort.Search(len(cands), func(i int) bool { return cands[i].off >= at })
		if i < len(cands) && cands[i].off == at && cands[i].pos == lo {
			lead = add(lead, at, cands[i].end, false)
			lo, at = lo+1, cands[i].end
			continue
		}
		next := int64(len(b)) // where the entry of lo+1 starts: the end of the file for end-1
		ok := false
		if lo+1 < end {
			for _, c := range ofPos(lo + 1) {
				if cands[c].off > at {
					if start, found := reframed(at, cands[c].off, lo); found {
						lead, ok, next = add(lead, start, cands[c].off, true), true, cands[c].off
						break
					}
				}
			}
		} else if start, found := reframed(at, next, lo); found {
			lead, ok = add(lead, start, next, true), true
		}
		if !ok {
			break
		}
		lo, at = lo+1, next
	}

	if lo == end {
		return lead, lo, 0, 0
	}

	// Backward, from the end of the file, counting the records that look intact past
	// the damage. A record ending where an entry ends may lie in that entry's data (an
	// event's data may hold the bytes of records of its own position and the ones
	// before), so none of them is kept, even if the walk reaches where the forward walk
	// stopped: it cannot, as its step at lo would take a record the forward walk takes.
	hi, to := end, int64(len(b))
	for hi > lo {
		pos := hi - 1
		i := sort.Search(len(byEnd), func(i int) bool { return cands[byEnd[i]].end >= to })
		var c *runCandidate
		for ; i < len(byEnd) && cands[byEnd[i]].end == to; i++ {
			if x := &cands[byEnd[i]]; x.pos == pos && x.off >= at {
				c = x // the longest: a record in another's data ends where it does
				break
			}
		}
		if c != nil {
			unconfirmed++
			hi, to = pos, c.off
			continue
		}
		var starts []int64 // where the entry of pos may start
		if pos == lo {
			starts = append(starts, at)
		} else {
			for _, x := range ofPos(pos - 1) {
				if cands[x].end < to && cands[x].off >= at {
					starts = append(starts, cands[x].end)
				}
			}
		}
		ok := false
		for _, from := range starts {
			if _, found := reframed(from, to, pos); found {
				unconfirmed++
				hi, to, ok = pos, from, true
				break
			}
		}
		if !ok {
			break
		}
	}
	return lead, lo, int(end - lo), unconfirmed
}

// readFrom returns the bytes of the file path from offset off to its end, size.
func readFrom(path string, off, size int64) ([]byte, error) {
	if off >= size {
		return nil, nil // nothing to read, from a file that may be missing
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, size-off)
	if _, err := io.ReadFull(io.NewSectionReader(f, off, size-off), b); err != nil {
		return nil, err
	}
	return b, nil
}

// eachPieceRecord calls fn with each record of ps, from b, the bytes of the file from
// offset base on.
func eachPieceRecord(b []byte, base int64, ps []piece, fn func(r *Record)) error {
	for _, p := range ps {
		if p.reframe {
			r, err := DecodeRecord(b[p.from-base : p.to-base])
			if err != nil {
				return err
			}
			fn(&r)
			continue
		}
		for off := p.from - base; off < p.to-base; {
			raw, n, ok := entry(b[off:])
			if !ok {
				return &CorruptError{Offset: base + off, Reason: "entry kept does not frame"}
			}
			r, err := DecodeRecord(raw)
			if err != nil {
				return err
			}
			fn(&r)
			off += int64(n)
		}
	}
	return nil
}

// planRun plans the repair of run, the positions the sealed segment of rw hides from
// offset run.Offset to its end, size: rw keeps the intact records recoverRun frames
// forward from the run's start and voids every position from the first it cannot. pending and applied are planOffline's (the void record
// whose commit flag the next record settles, the Raft index of the last intact commit
// record); voidAt, if not nil (a cluster node's log), is given the last void record.
func (p *RepairPlan) planRun(rw *rewrite, run *CorruptError, size int64, pending **Record, applied *raftPos, voidAt func(*Record)) error {
	b, err := readFrom(rw.file.path, run.Offset, size)
	if err != nil {
		return err
	}
	lead, void, n, unconfirmed := recoverRun(b, run.Offset, run.Position, run.End)
	hr := &hiddenRun{lead: lead, voided: void, voids: n}
	intact := func(r *Record) {
		if *pending != nil {
			(*pending).Commit = writeStart(r) == r.Position
			*pending = nil
		}
		if r.Commit {
			*applied = raftPos{r.Applied, r.Slot}
		}
	}
	if err := eachPieceRecord(b, run.Offset, lead, intact); err != nil {
		return err
	}
	if n > 0 {
		// Each void record begins a write of its own (WriteStart 0), so each ends the
		// one before; the last is settled by the record after it.
		if *pending != nil {
			(*pending).Commit = true
		}
		hr.last = &Record{Position: void + uint64(n) - 1, Kind: KindVoid}
		if voidAt != nil {
			hr.applied = *applied
			voidAt(hr.last)
		}
		*pending = hr.last
	}
	rw.run = hr
	// The quarantine keeps every byte the rewrite does not copy as it is: all of the
	// run's but a last piece of whole entries that runs to the end of the file (every
	// position kept, none voided).
	q := size
	if k := len(lead); k > 0 && !lead[k-1].reframe && lead[k-1].to == size {
		q = lead[k-1].from
	}
	a := RepairAction{Op: RepairVoid, Segment: rw.file.path, Offset: run.Offset, Position: run.Position,
		Bytes: q - run.Offset, Records: n, Kept: int(run.End-run.Position) - n, Unconfirmed: unconfirmed, Reason: run.Reason}
	if n > 0 {
		a.Voided = void
	}
	p.Actions = append(p.Actions, a)
	return nil
}

// write writes the entries of the run to w, the kept ones from the old segment file.
func (hr *hiddenRun) write(w *bufio.Writer, old *os.File) error {
	var rec, prefix []byte
	copyPieces := func(ps []piece) error {
		for _, p := range ps {
			if p.reframe {
				prefix = appendUvarint(prefix[:0], uint64(p.to-p.from))
				w.Write(prefix)
			}
			if _, err := io.Copy(w, io.NewSectionReader(old, p.from, p.to-p.from)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := copyPieces(hr.lead); err != nil {
		return err
	}
	for pos := hr.voided; pos < hr.voided+uint64(hr.voids); pos++ {
		v := Record{Position: pos, Kind: KindVoid, Commit: true, Applied: hr.applied.index, Slot: hr.applied.slot}
		if pos == hr.last.Position {
			v = *hr.last
		}
		rec = AppendRecord(rec[:0], &v)
		prefix = appendUvarint(prefix[:0], uint64(len(rec)))
		w.Write(prefix)
		w.Write(rec)
	}
	return nil
}
