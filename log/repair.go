package log

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Repair describes one cut that Open made to recover from a crash.
type Repair struct {
	Segment string // file path
	Offset  int64  // byte offset where the cut started
	Bytes   int64  // bytes removed
	Records int    // whole records removed (0 for a torn/zero tail only)
	Reason  string // what was cut and why
}

// parsedSegment is a segment file read during crash repair.
type parsedSegment struct {
	file       segFile
	offs       []uint32        // entry offsets of the kept prefix, damaged records included
	validEnd   int64           // end of the kept prefix
	lastCommit int             // index in offs of the last record known committed, or -1
	commitEnd  int64           // end of that record, 0 if none
	damage     string          // why the kept prefix stops before the end of the file, or ""
	damagePos  uint64          // position the entry at validEnd should have held
	zeroTail   bool            // the damage is zeros up to the end of the file
	later      []found         // whole valid records found past the damage
	maxStart   uint64          // largest write start of any whole valid record in the file
	maxProof   uint64          // largest proof of any whole valid record in the file
	bad        []*CorruptError // damaged records kept in the prefix: framed, but not valid
	trailing   *CorruptError   // the first of the damaged records kept after the last valid one
	ends       []int64         // entry ends of the kept prefix
	commits    []int           // commits[j]: lastCommit had the prefix ended after entry j
	intact     []bool          // intact[j]: entry j is a valid commit record
	trimmed    int             // whole records cut from the prefix by cutOffline
	replicaCut string          // why endAtIntactCommit cut damaged records, or ""
	replicaEnd bool            // endAtIntactCommit has placed the end
	endLost    bool            // an offline cut past damage here or in a later segment ends the log in this one: the records cut before the damage are of a write whose end is lost with it
	sealed     bool            // another segment file follows: the segment was synced whole
	laterProof uint64          // the largest proof of the valid records in the later segments
}

// found is a valid record found past damaged bytes by trying every offset.
type found struct {
	off    int64
	pos    uint64
	start  uint64 // effective write start
	proof  uint64 // see proof
	commit bool
}

// writeStart is the position of the first record of r's Write call; a record that does
// not know it counts as a write of its own.
func writeStart(r *Record) uint64 {
	if r.WriteStart == 0 {
		return r.Position
	}
	return r.WriteStart
}

// proof is the position below which the valid record raw, of write start start, shows
// the records durable: its Write began once the one before had returned, and synced,
// unless raw carries flagUnsynced (written after a WriteNoSync no fsync covered yet),
// which shows nothing.
func proof(raw []byte, start uint64) uint64 {
	if raw[6]&flagUnsynced != 0 {
		return 0
	}
	return start
}

// framed is one entry of a segment whose length prefix frames it.
type framed struct {
	off, end int
	start    uint64 // write start if valid
	proof    uint64 // proof if valid
	commit   bool
	err      error // why the record is not valid, nil if it is
}

// parseSegment reads and checks every entry of a segment file. sealed says that another
// segment file follows it, and laterStart and laterProof are the largest write start and
// proof of the valid records in the later segments.
//
// A record that does not decode or holds the wrong position, while the framing around
// it holds, is kept as damage (in bad) when something shows that it was durable before
// the crash: a valid record of a later, synced Write after it (see proof), or a later
// segment file, even an empty one (every way the log starts a segment syncs the one
// before first: see FORMAT.md).
// Otherwise it is where the torn end of the log begins (damage, validEnd). Every record
// before a valid record's write start belongs to a Write that returned, so it counts as
// committed even if its own commit flag cannot be read.
func parseSegment(f segFile, sealed bool, laterStart, laterProof uint64) (*parsedSegment, error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, err
	}
	p := &parsedSegment{file: f, lastCommit: -1, sealed: sealed, laterProof: laterProof}
	p.file.size = int64(len(b))
	var ents []framed
	var frameErr string
	off, pos := 0, f.first
	for off < len(b) {
		if off > maxOffset {
			frameErr = "entry starts past the 4 GiB offset limit"
			break
		}
		raw, n, ok := entry(b[off:])
		if !ok {
			frameErr = frameError(b[off:])
			break
		}
		r, err := DecodeRecord(raw)
		if len(raw) < headerSize {
			// No record is that short: the framing itself is wrong here (zeros, say),
			// and following it would frame every byte as an entry.
			frameErr = reasonOf(err)
			break
		}
		if err == nil && r.Position != pos {
			err = corrupt(pos, "holds the record of position %d", r.Position)
		}
		e := framed{off: off, end: off + n, start: writeStart(&r), commit: r.Commit, err: err}
		if err == nil {
			e.proof = proof(raw, e.start)
		}
		ents = append(ents, e)
		off += n
		pos++
	}
	// laterProofs[j] is the largest proof of the valid records from entry j on.
	laterProofs := make([]uint64, len(ents)+1)
	for j := len(ents) - 1; j >= 0; j-- {
		laterProofs[j] = laterProofs[j+1]
		if ents[j].err == nil {
			laterProofs[j] = max(laterProofs[j], ents[j].proof)
		}
	}
	// A damaged record is framed right only if a valid record follows it: if framing
	// breaks after the last valid record, a damaged length prefix may be what broke it.
	lastValid := -1
	for j, e := range ents {
		if e.err == nil {
			lastValid = j
		}
	}
	p.validEnd, p.damagePos, p.damage = int64(off), pos, frameErr
	for j, e := range ents {
		pos := f.first + uint64(j)
		if e.err != nil {
			durable := sealed || laterProofs[j+1] > pos || laterProof > pos
			if !durable || frameErr != "" && j > lastValid {
				p.validEnd, p.damagePos, p.damage = int64(e.off), pos, reasonOf(e.err)
				break
			}
			p.bad = append(p.bad, &CorruptError{Segment: f.path, Offset: int64(e.off), Position: pos, Reason: reasonOf(e.err)})
			if j > lastValid && p.trailing == nil {
				p.trailing = p.bad[len(p.bad)-1]
			}
		} else {
			p.maxStart = max(p.maxStart, e.start)
			p.maxProof = max(p.maxProof, e.proof)
			if e.commit {
				p.lastCommit = j
			}
			if e.start > f.first {
				p.lastCommit = max(p.lastCommit, int(e.start-f.first)-1)
			}
		}
		p.offs = append(p.offs, uint32(e.off))
		p.ends = append(p.ends, int64(e.end))
		p.commits = append(p.commits, p.lastCommit)
		p.intact = append(p.intact, e.err == nil && e.commit)
	}
	if laterStart > f.first {
		p.lastCommit = max(p.lastCommit, min(int(laterStart-f.first)-1, len(p.offs)-1))
	}
	if p.lastCommit >= 0 {
		p.commitEnd = int64(ents[p.lastCommit].end)
	}
	if p.damage != "" {
		p.zeroTail = allZero(b[p.validEnd:])
		p.later = resync(b, int(p.validEnd), p.damagePos)
		for _, f := range p.later {
			p.maxStart = max(p.maxStart, f.start)
			p.maxProof = max(p.maxProof, f.proof)
		}
	}
	return p, nil
}

// resync looks at every offset of b from off on for a whole valid record of position
// minPos or later: framing cannot be trusted past damage, but the records written
// after it can still be recognised by their checksums. It recognises whatever
// DecodeRecord accepts, any kind with any flags: the header check that spares the
// checksum at most offsets is DecodeRecord's own.
func resync(b []byte, off int, minPos uint64) []found {
	var out []found
	for off < len(b) {
		raw, n, ok := entry(b[off:])
		if ok && len(raw) >= headerSize && headerError(raw) == "" {
			if r, err := DecodeRecord(raw); err == nil && r.Position >= minPos {
				start := writeStart(&r)
				out = append(out, found{off: int64(off), pos: r.Position, start: start, proof: proof(raw, start), commit: r.Commit})
				off += n
				continue
			}
		}
		off++
	}
	return out
}

func reasonOf(err error) string {
	var ce *CorruptError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return err.Error()
}

// repairPlan is what Open will cut, worked out before anything is changed.
type repairPlan struct {
	keep     []segFile       // the segments that stay, the last one being the tail
	tailOffs []uint32        // entry offsets of the tail after the cut
	last     uint64          // last position kept
	remove   []Repair        // segment files to delete, last first
	truncate *Repair         // the cut in the segment that becomes (or precedes) the tail
	damage   []*CorruptError // damaged records kept, in position order
	loss     string          // offline only: why the cut removes records that were durable
	written  uint64          // offline only: the last position a cut past damage in the last segment shows written, 0 if none
}

func (p *repairPlan) repairs() []Repair {
	out := append([]Repair(nil), p.remove...)
	if p.truncate != nil {
		out = append(out, *p.truncate)
	}
	return out
}

// planRepair works out the crash repair of the segment files segs (in position order,
// the first at position 1): everything after the last valid commit record is cut.
// Damage followed by a valid record of a later, synced Write, or in a segment that
// another segment file follows (synced whole before that file was created), is not a
// torn write: the damaged bytes had been synced before, so it is reported as a
// *CorruptError and nothing is cut. keep is Options.Keep.
//
// offline (PlanRepair) plans past the refusals in a segment that another segment file
// follows instead, for an operator to accept: the log is cut at its framing damage or
// where its record count does not reach (or goes past) the next file's name, the later
// segment files are removed, and plan.loss says what durable records that loses;
// damaged records whose framing holds at the end of a sealed segment are kept (to be
// replaced by void records) instead of refused. Framing damage in the last segment that
// a later write shows durable is cut the same way: the records past it cannot be framed
// from a known entry start, and plan.written says the last position they show written.
func planRepair(segs []segFile, keep uint64, offline bool) (*repairPlan, error) {
	return planCut(segs, keep, offline, nil)
}

// planCut is planRepair; replayed, if not nil (offline only), plans the repair of a
// cluster node's log, which must not end at a void record above the position replayed
// gives (see endAtIntactCommit).
func planCut(segs []segFile, keep uint64, offline bool, replayed func() (uint64, error)) (*repairPlan, error) {
	if replayed != nil {
		f := replayed
		var pos uint64
		var err error
		called := false
		replayed = func() (uint64, error) { // called once: it reads the Raft state
			if !called {
				pos, err = f()
				called = true
			}
			return pos, err
		}
	}
	n := len(segs)
	if n >= 2 && segs[n-1].size == 0 && lastIsCommitted(segs[n-2], segs[n-1].first) {
		// A segment cycled just before a clean stop: nothing to read or cut.
		return &repairPlan{keep: segs, last: segs[n-1].first - 1}, nil
	}
	var parsed []*parsedSegment // from the last segment backwards
	// What the segments after the current one hold: the largest write start and proof
	// of their valid records, and where one of those records is.
	var laterStart, laterProof, laterPos uint64
	var laterSeg string
	var loss *offlineLoss
	var written uint64
	for i := n - 1; i >= 0; i-- {
		if segs[i].missing {
			// No later segment holds a commit: the log ends where the missing first
			// segment did (see missingFirst).
			p, err := missingFirst(segs[i], segs[i+1].first, replayed)
			if err != nil {
				return nil, err
			}
			parsed = append(parsed, p)
			break
		}
		sealed := i < n-1
		p, err := parseSegment(segs[i], sealed, laterStart, laterProof)
		if err != nil {
			return nil, err
		}
		// Every way the log starts a segment file syncs the one before first (tidwall/wal's
		// cycle, Seal; Rewrite replaces a sealed segment by a synced copy), so a segment
		// followed by another segment file, even an empty one, was whole on disk.
		next := ""
		if sealed {
			next = segs[i+1].path
		}
		var refusal *CorruptError
		if p.damage != "" {
			for _, f := range p.later {
				if f.proof > p.damagePos && refusal == nil {
					refusal = damagedBefore(p, fmt.Sprintf("a valid record written later (position %d at offset %d)", f.pos, f.off))
				}
			}
			switch {
			case refusal != nil:
			case laterProof > p.damagePos:
				refusal = damagedBefore(p, fmt.Sprintf("records of a later write (from position %d) in %s", laterProof, laterSeg))
			case laterPos != 0:
				// tidwall/wal fsyncs a segment before it starts the next one: a segment
				// followed by records was whole on disk.
				refusal = damagedBefore(p, fmt.Sprintf("a valid record in a later segment (position %d in %s)", laterPos, laterSeg))
			case sealed:
				refusal = damagedBefore(p, "the segment file "+next+", created after this segment was synced whole")
			}
		}
		held := p.file.first + uint64(len(p.offs))
		// A crash repair interrupted by a power cut may leave this segment truncated
		// at its last commit while the removal of the files after it was lost: they
		// then hold no commit (the loop stops at one) and only records of the one
		// unfinished Write, which began right after the cut (laterStart).
		interrupted := sealed && held < segs[i+1].first && laterStart != 0 && laterStart <= held
		if refusal == nil && sealed && p.damage == "" && held != segs[i+1].first && !interrupted {
			at, off := held, p.validEnd
			if held > segs[i+1].first {
				at = segs[i+1].first
				off = int64(p.offs[at-p.file.first])
			}
			refusal = &CorruptError{Segment: p.file.path, Offset: off, Position: at,
				Reason: fmt.Sprintf("segment holds %d records, but the segment file %s after it starts at position %d: a segment is synced whole before the next one is created, so no crash explains it",
					len(p.offs), next, segs[i+1].first)}
		}
		if d := p.trailing; refusal == nil && d != nil && sealed && laterPos == 0 && d.Position > p.file.first+uint64(p.lastCommit+1)-1 {
			// The last records of a synced segment are damaged and nothing after them
			// says whether their write was committed: cutting them may lose an
			// acknowledged write, keeping them may keep part of a torn one.
			if !offline {
				return nil, &CorruptError{Segment: d.Segment, Offset: d.Offset, Position: d.Position,
					Reason: fmt.Sprintf("%s, in the last record(s) of a segment synced whole before the segment file %s was created: not a torn write, and whether its write was committed cannot be told",
						d.Reason, next)}
			}
			// The operator keeps them: they become void records, the last a commit
			// (in a cluster node's log they are cut: endAtIntactCommit).
			p.lastCommit = len(p.offs) - 1
			p.commitEnd = p.ends[p.lastCommit]
		}
		if refusal != nil {
			if !offline {
				return nil, refusal
			}
			if !sealed {
				// Framing damage in the last segment that a later write shows durable:
				// the records past it are cut with it (see lastWritten).
				written = p.lastWritten()
			}
			if loss, err = p.cutOffline(refusal, segs[i+1:], written, replayed); err != nil {
				return nil, err
			}
			laterStart, laterProof, laterPos = 0, 0, 0
		}
		if replayed != nil {
			if err := p.endAtIntactCommit(replayed); err != nil {
				return nil, err
			}
		}
		p.endLost = loss != nil
		parsed = append(parsed, p)
		if p.lastCommit >= 0 {
			break
		}
		switch {
		case len(p.offs) > 0:
			laterPos, laterSeg = p.file.first, p.file.path
		case len(p.later) > 0:
			laterPos, laterSeg = p.later[0].pos, p.file.path
		}
		laterStart = max(laterStart, p.maxStart)
		laterProof = max(laterProof, p.maxProof)
	}

	c := n - len(parsed) // index of the segment holding the cut
	cp := parsed[len(parsed)-1]
	plan := &repairPlan{last: cp.file.first + uint64(cp.lastCommit+1) - 1, written: written}
	if loss != nil {
		// A write that began in a segment before the damage is cut whole, so the
		// positions lost may start before the damaged segment.
		plan.loss = loss.describe(plan.last + 1)
	}
	cutAt := cp.commitEnd
	if cutAt == cp.file.size && c+1 < n && segs[c+1].first == plan.last+1 {
		// Nothing to cut in segment c: keep its successor, emptied, as the tail, the
		// state tidwall/wal leaves right after a cycle.
		c, cp, cutAt = c+1, parsed[len(parsed)-2], 0
	} else {
		plan.tailOffs = cp.offs[:cp.lastCommit+1]
	}
	plan.keep = append([]segFile(nil), segs[:c+1]...)
	plan.keep[c].size = cutAt
	for j := 0; j < n-1-c; j++ {
		p := parsed[j]
		plan.remove = append(plan.remove, Repair{
			Segment: p.file.path,
			Bytes:   p.file.size,
			Records: len(p.offs) + len(p.later) + p.trimmed,
			Reason:  "segment removed: " + describe(p, 0),
		})
	}
	if cutAt < cp.file.size {
		kept := cp.lastCommit + 1 // 0 for an emptied successor: it holds no commit
		plan.truncate = &Repair{
			Segment: cp.file.path,
			Offset:  cutAt,
			Bytes:   cp.file.size - cutAt,
			Records: len(cp.offs) - kept + len(cp.later) + cp.trimmed,
			Reason:  describe(cp, kept),
		}
	}
	for j := len(parsed) - 1; j >= 0; j-- {
		for _, d := range parsed[j].bad {
			if d.Position <= plan.last {
				plan.damage = append(plan.damage, d)
			}
		}
	}
	if cuts := plan.repairs(); len(cuts) > 0 && plan.last < keep {
		first := cuts[len(cuts)-1]
		return nil, &CorruptError{
			Segment:  first.Segment,
			Offset:   first.Offset,
			Position: plan.last + 1,
			Reason: fmt.Sprintf("crash repair would cut position %d, at or below the kept position %d: %s",
				plan.last+1, keep, first.Reason),
		}
	}
	return plan, nil
}

// missingFirst is the parsed form of f, a first segment whose file is missing (offline
// only), followed by a segment starting at next, where planCut reaches it: it is never
// opened, and counts as a sealed segment that is whole and ends at a commit, for
// positions 1 to next-1 were synced before the file of position next was created (every
// way the log starts a segment syncs the one before first). It is not an empty segment:
// the log would be cut to nothing and the next writes would take those positions again.
// planOffline voids them, the last void record a commit; in a cluster node's log
// (replayed not nil) that record carries no Raft index, so the plan fails unless Raft
// writes none of those positions again at the next start (see endAtIntactCommit).
func missingFirst(f segFile, next uint64, replayed func() (uint64, error)) (*parsedSegment, error) {
	last := next - 1
	if replayed != nil {
		what := fmt.Sprintf("a cluster node's log whose first segment file %s is missing would end at the void records of its positions 1 to %d, which carry no Raft index", f.path, last)
		above, err := replayed()
		if err != nil {
			return nil, fmt.Errorf("%s, and which of them the cluster writes again cannot be told: %w; %s", what, err, rebuildNode)
		}
		if above < last {
			return nil, fmt.Errorf("%s, and the cluster writes the positions after %d again at the next start: %s", what, above, rebuildNode)
		}
	}
	return &parsedSegment{file: f, lastCommit: int(last) - 1, replicaEnd: true}, nil
}

// rebuildNode says how to rebuild a cluster node whose log a repair cannot end right.
const rebuildNode = "rebuild this node from the cluster instead (remove it from the cluster with pmd cluster remove and its node id, then start it with an empty data directory and --join)"

// cutOffline makes ce, the damage or count mismatch Open refuses in p, the torn end of
// the log for an offline repair: p keeps the entries before it, the segments after p
// (after) are to be removed, and every damaged record kept counts as committed (it
// becomes a void record, the last one a commit). written, for framing damage in the last
// segment, is the last position the records past it show written (lastWritten). It
// returns what the cut loses.
func (p *parsedSegment) cutOffline(ce *CorruptError, after []segFile, written uint64, replayed func() (uint64, error)) (*offlineLoss, error) {
	if k := int(ce.Position - p.file.first); p.damage == "" && k < len(p.offs) {
		// Too many records for the next file's name: cut at the first extra one.
		p.trimmed = len(p.offs) - k
		p.offs, p.ends, p.commits, p.intact = p.offs[:k], p.ends[:k], p.commits[:k], p.intact[:k]
		p.validEnd, p.damagePos, p.later = ce.Offset, ce.Position, nil
		p.damage = "record(s) past the position the next segment file's name starts at"
		p.bad = slices.DeleteFunc(p.bad, func(d *CorruptError) bool { return d.Position >= ce.Position })
	}
	// Only the kept records count as evidence for the segments before p: the cut ones
	// are not kept to back it.
	p.maxStart, p.maxProof = 0, 0
	p.lastCommit = -1
	if len(p.commits) > 0 {
		p.lastCommit = p.commits[len(p.commits)-1]
	}
	for _, d := range p.bad {
		p.lastCommit = max(p.lastCommit, int(d.Position-p.file.first))
	}
	p.commitEnd = 0
	if p.lastCommit >= 0 {
		p.commitEnd = p.ends[p.lastCommit]
	}
	if replayed != nil {
		if err := p.endAtIntactCommit(replayed); err != nil {
			return nil, err
		}
	}
	return &offlineLoss{seg: p.file.path, ce: ce, after: after, written: written, replica: replayed != nil}, nil
}

// offlineLoss is what an offline cut past damage Open refuses loses.
type offlineLoss struct {
	seg     string        // the segment holding the damage
	ce      *CorruptError // the damage
	after   []segFile     // the segment files after seg, removed
	written uint64        // see cutOffline
	replica bool          // a cluster node's log
}

// describe says what the cut loses, from position from, the first the log no longer
// keeps: the damaged segment's kept records end at the last commit before the damage,
// and the cut goes back to the segment before if the write the damage is in began
// there.
func (l *offlineLoss) describe(from uint64) string {
	lost := fmt.Sprintf("positions from %d on are lost", from)
	if len(l.after) > 0 && l.after[0].first > from {
		// The next file's name shows that positions up to the one before it were written.
		lost = fmt.Sprintf("positions %d to %d, and any after them, are lost", from, l.after[0].first-1)
	}
	if len(l.after) > 0 {
		lost += ", with the segment files from " + l.after[0].path + " on"
	}
	if l.written >= from {
		// The last segment: its records past the damage are intact, but none can be
		// framed from a known entry start (an event's data may hold bytes that look like
		// whole records of the positions after it), so none is kept.
		lost = fmt.Sprintf("positions %d to %d are lost, among them records of writes acknowledged after the damaged bytes had been synced: "+
			"the records past the damage look intact, but no entry start is known past it to frame them from (an event's data may hold bytes that look like records), so none is kept (the quarantine holds their bytes)", from, l.written)
		if l.replica {
			lost += "; on a cluster node Raft applies again, at the next start, the entries after the Raft index of the last commit record kept, writing those positions again " +
				"(a node whose store then ends behind its newest snapshot copies the records from another member; if no member holds them, remove the node from the cluster with pmd cluster remove and its node id, then start it with an empty data directory and --join)"
		}
	}
	return fmt.Sprintf("%s (%s at offset %d, position %d: %s)", lost, l.seg, l.ce.Offset, l.ce.Position, l.ce.Reason)
}

// minEntry is the fewest bytes an entry takes: a length prefix and a record header.
const minEntry = 1 + headerSize

// lastWritten returns the last position that the whole valid records found past p's
// framing damage show written by a write that ended: a commit record's own, or the one
// before a record's write start. A record whose position is past what the bytes from the
// damage to it can hold (every entry takes at least minEntry bytes) lies in an event's
// data and shows nothing; a record within that bound may too, so the result is at most
// that many positions past the damage.
func (p *parsedSegment) lastWritten() uint64 {
	var n uint64
	for _, f := range p.later {
		if f.pos-p.damagePos > uint64(f.off-p.validEnd)/minEntry {
			continue
		}
		if f.commit {
			n = max(n, f.pos)
		}
		if f.start > p.damagePos {
			n = max(n, f.start-1)
		}
	}
	return n
}

// endAtIntactCommit places the end of what p keeps, for the offline repair of a cluster
// node's log, when it would end at a damaged record after p's last intact commit record.
// The commit record of each replicated write carries the Raft index of its entry, and
// the store reads the index it applied off its log's last commit record; a damaged one
// cannot say it, and a void record in its place carries at most the index of the last
// intact write before it (planOffline): Raft then applies again, at the next start, the
// entries after that one and after the node's newest snapshot. replayed gives the
// position above which Raft's replay writes the store's records again (that snapshot's
// position, or the seed entry's if higher). The damaged records above it are cut, with
// the rest of their writes, for the replay to write them again at their positions (as
// void records, the replay would write them twice); those at or below it become void
// records, for no replay writes them again, and the store then ends at or below that
// position, so the replay writes nothing it holds. The cut leaves the log ending at the
// last intact commit record, or at the void record at replayed's position. It fails if replayed does, or if the record at its position is
// not a damaged one kept (then it is not the end of a write, and where Raft's replay
// starts cannot be told).
func (p *parsedSegment) endAtIntactCommit(replayed func() (uint64, error)) error {
	if p.replicaEnd || p.lastCommit < 0 || p.intact[p.lastCommit] {
		return nil
	}
	k := p.lastCommit
	for k >= 0 && !p.intact[k] {
		k--
	}
	from := p.file.first + uint64(k+1)
	end := p.file.first + uint64(p.lastCommit)
	above, err := replayed()
	if err != nil {
		return fmt.Errorf("a cluster node's log would end at damaged record(s) after its last intact commit record (positions %d to %d), and which of them the cluster writes again cannot be told: %w; "+
			"rebuild this node from the cluster instead (remove it from the cluster with pmd cluster remove and its node id, then start it with an empty data directory and --join)", from, end, err)
	}
	if above >= end {
		// Raft writes none of them again: they stay void records.
		p.replicaEnd = true
		return nil
	}
	if from <= above {
		if !slices.ContainsFunc(p.bad, func(d *CorruptError) bool { return d.Position == above }) {
			return fmt.Errorf("a cluster node's log would end at damaged record(s) after its last intact commit record (positions %d to %d), and the cluster writes the positions after %d again, but the record at %d is not a damaged one that ends a write: "+
				"rebuild this node from the cluster instead (remove it from the cluster with pmd cluster remove and its node id, then start it with an empty data directory and --join)", from, end, above, above)
		}
		k = int(above - p.file.first)
	}
	p.lastCommit, p.replicaEnd = k, true
	p.commitEnd = 0
	if k >= 0 {
		p.commitEnd = p.ends[k]
	}
	from = p.file.first + uint64(k+1)
	damaged := from
	for _, d := range p.bad {
		if d.Position >= from {
			damaged = d.Position
			break
		}
	}
	p.replicaCut = fmt.Sprintf("a cluster node's log is cut from position %d: the damaged record at position %d ends a write whose Raft index is lost with it (a void record in its place would carry the index of the write before it, and Raft would write that write again after it); "+
		"Raft applies that write's entry again at the next start (the positions after %d are past the node's snapshot and seed entry), writing it again at its positions",
		from, damaged, above)
	return nil
}

// describe says what a cut of p after its first kept entries removes.
func describe(p *parsedSegment, kept int) string {
	var parts []string
	if k := len(p.offs) - kept; k > 0 {
		what := "uncommitted record(s)"
		switch {
		case p.replicaCut != "":
			what = "record(s)" // from a damaged one: whether their write was committed is not known
		case p.endLost:
			what = "record(s) of a write whose end is lost with the damage"
		}
		parts = append(parts, fmt.Sprintf("%d %s", k, what))
	}
	if p.damage != "" {
		d := fmt.Sprintf("%s at offset %d", p.damage, p.validEnd)
		if p.zeroTail {
			d = fmt.Sprintf("zero-filled tail at offset %d", p.validEnd)
		}
		parts = append(parts, d)
		same, synced := 0, 0
		for _, f := range p.later {
			switch {
			case f.start <= p.damagePos:
				same++
			case f.proof > p.damagePos:
				// Only an offline cut past a refusal takes these: their write began
				// once the damaged record was synced.
				synced++
			}
		}
		switch {
		case same == 0:
		case synced > 0 || p.laterProof > p.damagePos:
			// Only an offline cut past a refusal takes these: a later synced write
			// began once the damaged record's write had returned.
			parts = append(parts, fmt.Sprintf("%d whole record(s) past the damage of the damaged record's write, which was committed and synced", same))
		case p.sealed:
			// Likewise: the segment was synced whole before the next file was created;
			// their write may have gone on in that file, so whether it was committed is
			// not known.
			parts = append(parts, fmt.Sprintf("%d whole record(s) past the damage of the damaged record's write, synced with the segment", same))
		default:
			parts = append(parts, fmt.Sprintf("%d whole record(s) of the same unfinished write past the damage", same))
		}
		if synced > 0 {
			parts = append(parts, fmt.Sprintf("%d whole record(s) of later synced writes past the damage", synced))
		}
		if k := len(p.later) - same - synced; k > 0 {
			parts = append(parts, fmt.Sprintf("%d whole record(s) of later writes past the damage, written without an fsync after it", k))
		}
	}
	out := strings.Join(parts, ", then ")
	if len(parts) == 0 {
		out = "empty segment"
	}
	if p.replicaCut != "" {
		out += "; " + p.replicaCut
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// damagedBefore reports the damage in p, which a crash cannot explain as it is
// followed by what evidence describes.
func damagedBefore(p *parsedSegment, evidence string) *CorruptError {
	return &CorruptError{
		Segment:  p.file.path,
		Offset:   p.validEnd,
		Position: p.damagePos,
		Reason:   fmt.Sprintf("%s, followed by %s: not a torn write", p.damage, evidence),
	}
}

// lastIsCommitted reports whether the sealed segment f, followed by a segment starting at
// next, has a sidecar that matches it and a valid commit record as its last entry.
func lastIsCommitted(f segFile, next uint64) bool {
	t, err := readSidecar(f.path)
	if err != nil || t.first != f.first || t.size != f.size || uint64(len(t.offs)) != next-f.first {
		return false
	}
	file, err := os.Open(f.path)
	if err != nil {
		return false
	}
	defer file.Close()
	s := &segment{first: f.first, path: f.path, offs: t.offs, size: t.size}
	start, end := s.bounds(len(t.offs) - 1)
	b := make([]byte, end-start)
	if _, err := file.ReadAt(b, start); err != nil {
		return false
	}
	r, err := decodeEntry(b, f.path, start, next-1)
	return err == nil && r.Commit
}

// apply carries out the plan: segment files are removed from the last one back and the
// directory synced, then the cut segment is truncated, so a crash in between leaves a
// state that plans to the same result. The removals are made durable before the
// truncate: a file system may keep the fsynced truncate and lose unsynced unlinks, and
// planRepair takes that state only while it shows the unfinished Write (see
// planRepair's interrupted). A plan that cuts past damage Open refuses (offline, with
// loss) truncates first and removes after: see the comment inside.
func (p *repairPlan) apply(dir string, sync bool) error {
	if p.loss != "" {
		// An offline cut past damage Open refuses truncates first: interrupted before
		// the removals, it leaves a segment cut short that the later files follow,
		// which an offline plan cuts the same way again (the other order would leave
		// the damage as the torn end of the last segment, which plans differently).
		if err := p.truncateCut(sync); err != nil {
			return err
		}
		if err := p.removeFiles(); err != nil {
			return err
		}
		if sync {
			return syncDirs(dir)
		}
		return nil
	}
	if err := p.removeFiles(); err != nil {
		return err
	}
	if sync && len(p.remove) > 0 {
		if err := syncDirs(dir); err != nil {
			return err
		}
	}
	return p.truncateCut(sync)
}

// removeFiles removes the segment files of p.remove, last first, and their sidecars.
func (p *repairPlan) removeFiles() error {
	for _, r := range p.remove {
		if err := os.Remove(r.Segment); err != nil {
			return err
		}
		if err := removeSidecar(r.Segment); err != nil {
			return err
		}
	}
	return nil
}

func (p *repairPlan) truncateCut(sync bool) error {
	if t := p.truncate; t != nil {
		return truncate(t.Segment, t.Offset, sync)
	}
	return nil
}
