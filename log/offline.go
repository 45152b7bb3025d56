package log

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// repairTmpExt names a segment being rewritten by RepairPlan.Apply; Open removes it.
const repairTmpExt = ".repair" + tmpExt

// RepairOp is what a RepairAction does.
type RepairOp int

const (
	// RepairCut removes the torn end of the log, as Open's crash repair does.
	RepairCut RepairOp = iota + 1
	// RepairVoid replaces a damaged record by a KindVoid record at the same position.
	RepairVoid
)

// RepairAction is one change a RepairPlan makes.
type RepairAction struct {
	Op       RepairOp
	Segment  string // segment file path
	Offset   int64  // where the removed bytes start in Segment
	Position uint64 // the position whose record is replaced (RepairVoid), or the first position whose bytes are cut (RepairCut)
	Bytes    int64  // bytes removed from Segment (and kept in the quarantine file)
	Records  int    // records removed (RepairCut), or replaced (RepairVoid: 1, or a hidden run's)
	Kept     int    // a hidden run's intact records kept (RepairVoid)
	Voided   uint64 // a hidden run's first position voided, if Records > 0 (RepairVoid)
	// Unconfirmed counts records of a hidden run that look intact past the damage but
	// that the plan voids, as it cannot frame them from a known entry boundary
	// (RepairVoid): found walking back from the segment's end, up to the first damage
	// met going back. Records past framing damage are never kept; intact ones between
	// two damages are not counted, so there may be more. Restoring the segment from a
	// copy may keep them.
	Unconfirmed int
	// Written, for the cut of framing damage in the last segment that later synced
	// writes show durable (RepairCut), is the last position the records past the damage
	// show written by a write that ended (0 if none, or another cut): the positions from
	// the cut's to it held acknowledged records, which the cut loses, and that no later
	// write may take again. Records that look intact past framing damage are never kept:
	// no entry start is known past it to frame them from.
	Written uint64
	Reason  string
}

// String describes the action for a person deciding whether to apply it.
func (a RepairAction) String() string {
	unconfirmed := ""
	if a.Unconfirmed > 0 {
		unconfirmed = fmt.Sprintf("; at least %d record(s) that look intact past the damage are voided too, as they cannot be framed from a known entry boundary (a copy of the segment may still hold them)", a.Unconfirmed)
	}
	if a.Op == RepairVoid && a.Kept > 0 {
		voided := ""
		if a.Records > 0 {
			voided = fmt.Sprintf(" (positions %d to %d)", a.Voided, a.Voided+uint64(a.Records)-1)
		}
		return fmt.Sprintf("repair positions %d to %d, hidden by damage (segment %s offset %d, %d bytes quarantined): %d void record(s)%s, %d intact record(s) kept at their positions%s: %s",
			a.Position, a.Position+uint64(a.Records+a.Kept)-1, a.Segment, a.Offset, a.Bytes, a.Records, voided, a.Kept, unconfirmed, a.Reason)
	}
	if a.Op == RepairVoid && (a.Records > 1 || a.Unconfirmed > 0) {
		found := "no intact record found to keep"
		if a.Unconfirmed > 0 {
			found = "no intact record kept" + unconfirmed
		}
		return fmt.Sprintf("replace positions %d to %d (segment %s offset %d, %d bytes) by void records (%d void record(s), %s): %s",
			a.Position, a.Position+uint64(a.Records)-1, a.Segment, a.Offset, a.Bytes, a.Records, found, a.Reason)
	}
	if a.Op == RepairVoid {
		return fmt.Sprintf("replace position %d (segment %s offset %d, %d bytes) by a void record: %s",
			a.Position, a.Segment, a.Offset, a.Bytes, a.Reason)
	}
	return fmt.Sprintf("cut %d bytes (%d whole records, from position %d) at segment %s offset %d: %s",
		a.Bytes, a.Records, a.Position, a.Segment, a.Offset, a.Reason)
}

// RepairPlan is what an offline repair of a log directory would do; Apply does it.
type RepairPlan struct {
	Dir     string
	Actions []RepairAction // cuts first (as Open orders them), then voids in position order
	// BeforeChange, if set, is called by Apply once the quarantine file is durable and
	// before any segment changes; an error it returns stops Apply, which has then
	// changed nothing but the quarantine file. The store removes its index there, so
	// that a repair that cannot write its quarantine leaves the index.
	BeforeChange func() error

	cut      *repairPlan
	rewrites []*rewrite
	sizes    map[string]int64 // the size of every file the plan changes, as planned
	missing  string           // the first segment's path, if its file is missing: Apply creates it
}

// rewrite is a kept segment whose damaged records are replaced by void records.
type rewrite struct {
	file  segFile // size: the bytes kept
	offs  []uint32
	voids map[int]*Record // by entry index
	run   *hiddenRun      // written after the entries: a hidden run's records
}

// PlanRepair reads the whole log in dir, which no process may have open, with this
// package's own parser and plans its repair without changing anything: the torn end a
// crash left is cut exactly as Open would cut it, and every other damaged record, in any
// segment, is replaced by a KindVoid record at the same position, so that no position
// moves and the records after it are served again. A plan with no Actions means the log
// needs no repair. Where Open refuses damage in a segment that another segment file
// follows (framing damage, damaged last records, a record count that does not match
// the next file's name), the plan goes past it: damaged records whose framing holds
// become void records, and otherwise the log is cut at the damage and the segment
// files after it removed, the cut's Reason saying which positions that loses. A sealed
// segment before that end which hides a run of positions (a segment file missing after
// it, the segment cut short, or unframeable past a record without a sidecar that fits:
// CorruptError.End) gets one RepairVoid action for the run, from Position: its entries
// before the run are kept, the intact records found in the run's bytes are kept at their
// positions (Kept; see recoverRun for which records count as found), and a void record is
// written at each of the other positions (Records, from Voided), the bytes the rewrite
// does not copy as they are being quarantined; a missing first segment file is planned
// so, as that file there and empty (Apply creates it). Framing damage in the last
// segment that a later write shows durable (which Open refuses) is cut there too, the records past it with it: they look intact, but none can be framed
// from a known entry start (an event's data may hold bytes that look like records), and
// the cut's Written says the last position they show written. It fails with other errors
// for files it cannot read.
// progress, if not nil, is called after each segment read with the bytes read so far
// and the bytes to read: a big log takes minutes.
func PlanRepair(dir string, progress func(done, total int64)) (*RepairPlan, error) {
	p, err := planOffline(dir, progress, nil)
	if err != nil {
		return nil, fmt.Errorf("log: plan repair of %s: %w", dir, err)
	}
	return p, nil
}

// PlanReplicaRepair is PlanRepair for the log of a cluster node's store, whose commit
// records carry the Raft index of their write (Record.Applied), which the store reads
// off its log's last commit record. replayed gives the position above which the node's
// Raft state writes the store's records again at its next start (above its newest
// snapshot's position and its seed entry's: Raft applies again the entries after the
// snapshot); it is called only if the plan would end the log at damaged records after
// its last intact commit record. Those of them above that position are cut instead of
// voided, with the rest of their write, so that the log ends at an intact commit record
// (or at the position itself): the Raft index of their write is lost, a void record
// carries only that of the last intact write before it, and Raft would write again the
// records past that position it stands for. Those at or below it stay void records, as
// PlanRepair plans them: Raft writes nothing at or below it again, and the store, ending
// there, holds nothing Raft's replay writes. If replayed fails, the plan fails with its
// error.
func PlanReplicaRepair(dir string, replayed func() (uint64, error), progress func(done, total int64)) (*RepairPlan, error) {
	if replayed == nil {
		replayed = func() (uint64, error) { return 0, errors.New("no way to tell was given") }
	}
	p, err := planOffline(dir, progress, replayed)
	if err != nil {
		return nil, fmt.Errorf("log: plan repair of %s: %w", dir, err)
	}
	return p, nil
}

// Last returns the last position of the log once the plan is applied: void records keep
// their positions, a cut removes those past it. It is 0 for a log with no segment file.
func (p *RepairPlan) Last() uint64 {
	if p.cut == nil {
		return 0
	}
	return p.cut.last
}

func planOffline(dir string, progress func(done, total int64), replayed func() (uint64, error)) (*RepairPlan, error) {
	segs, _, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	p := &RepairPlan{Dir: dir, sizes: make(map[string]int64)}
	if len(segs) == 0 {
		return p, nil
	}
	if segs[0].first != 1 {
		// Positions 1 to the one before the first file's name were written (a log's first
		// segment is position 1's, and segment files are only ever replaced, never
		// removed but by crash repair, from the end): planned as a first segment cut to
		// nothing, a run of void records.
		p.missing = filepath.Join(dir, segmentName(1))
		segs = append([]segFile{{first: 1, path: p.missing, uid: -1, gid: -1, missing: true}}, segs...)
	}
	for _, f := range segs {
		p.sizes[f.path] = f.size
	}
	cut, err := planCut(segs, 0, true, replayed)
	if err != nil {
		return nil, err
	}
	p.cut = cut
	for _, r := range cut.remove {
		a := RepairAction{Op: RepairCut, Segment: r.Segment, Bytes: r.Bytes, Records: r.Records, Reason: r.Reason}
		for _, f := range segs {
			if f.path == r.Segment {
				a.Position = f.first
			}
		}
		p.Actions = append(p.Actions, a)
	}
	if t := cut.truncate; t != nil {
		p.Actions = append(p.Actions, RepairAction{Op: RepairCut, Segment: t.Segment, Offset: t.Offset,
			Position: cut.last + 1, Bytes: t.Bytes, Records: t.Records, Reason: t.Reason})
	}
	if n := len(p.Actions); cut.loss != "" && n > 0 {
		// The cut nearest the damage says what Open refused and what accepting it loses.
		p.Actions[n-1].Reason += "; " + cut.loss
		p.Actions[n-1].Written = cut.written
	}

	// Every kept record is checked; a damaged one becomes a void record. Its commit flag
	// is set when the record after it begins a Write (so the lost record ended one) or
	// when it is the last record kept (which Open's cut point makes a commit). In a
	// cluster node's log (replayed) a void commit record carries the Raft index and slot
	// of the last intact commit record before it, a lower bound of the one lost: the store reads
	// the index it applied off its last commit record, and no Raft replay writes again
	// what a void record stands for (endAtIntactCommit cut those it would), so the
	// entries between the two wrote nothing that a replay would write again.
	var pending *Record
	var applied raftPos // of the last intact commit record read
	type voidAt struct {
		v       *Record
		applied raftPos
	}
	var replicaVoids []voidAt
	var done, total int64
	for _, f := range cut.keep {
		total += f.size
	}
	for i, f := range cut.keep {
		offs, size := cut.tailOffs, f.size
		var run *CorruptError // the run of positions a sealed segment hides
		if i < len(cut.keep)-1 {
			if f.path == p.missing {
				offs, err = hidden(nil, f, cut.keep[i+1].first-f.first, 0,
					fmt.Sprintf("the first segment file is missing: the log starts at position %d", cut.keep[i+1].first))
			} else {
				offs, err = sealedOffsets(f, cut.keep[i+1].first)
			}
			if err != nil {
				if !errors.As(err, &run) || run.End == 0 {
					return nil, err
				}
				f.size = run.Offset // the entries before the run end there
			}
		}
		rw := &rewrite{file: f, offs: offs}
		s := &segment{first: f.first, path: f.path, offs: offs, size: f.size}
		err := eachEntry(s, func(j int, r Record, bad *CorruptError) {
			if pending != nil {
				pending.Commit = bad == nil && writeStart(&r) == r.Position
				pending = nil
			}
			if bad == nil {
				if r.Commit {
					applied = raftPos{r.Applied, r.Slot}
				}
				return
			}
			start, end := s.bounds(j)
			v := &Record{Position: bad.Position, Kind: KindVoid}
			if replayed != nil {
				replicaVoids = append(replicaVoids, voidAt{v, applied})
			}
			if rw.voids == nil {
				rw.voids = make(map[int]*Record)
			}
			rw.voids[j], pending = v, v
			p.Actions = append(p.Actions, RepairAction{Op: RepairVoid, Segment: f.path, Offset: start,
				Position: bad.Position, Bytes: end - start, Records: 1, Reason: bad.Reason})
		})
		if err != nil {
			return nil, err
		}
		if run != nil {
			var addVoid func(*Record)
			if replayed != nil {
				addVoid = func(v *Record) { replicaVoids = append(replicaVoids, voidAt{v, applied}) }
			}
			if err := p.planRun(rw, run, size, &pending, &applied, addVoid); err != nil {
				return nil, err
			}
		}
		if rw.voids != nil || rw.run != nil {
			p.rewrites = append(p.rewrites, rw)
		}
		if done += size; progress != nil {
			progress(done, total)
		}
	}
	if pending != nil {
		pending.Commit = true
	}
	for _, va := range replicaVoids {
		if va.v.Commit {
			va.v.Applied, va.v.Slot = va.applied.index, va.applied.slot
		}
	}
	return p, nil
}

// sealedOffsets returns the entry offsets of the sealed segment f followed by a segment
// starting at next, as a Log loads them: from its sidecar if that fits, else by framing it.
// A segment that framing does not give count records fails with the damage a Log's load
// of it meets, a *CorruptError naming the run of positions it hides (Position to End-1,
// from Offset on), with the offsets of the entries before the run.
func sealedOffsets(f segFile, next uint64) ([]uint32, error) {
	count := next - f.first
	t, err := readSidecar(f.path)
	if unusable(t, err, f, count) == "" {
		return t.offs, nil
	}
	offs, err := scanOffsets(f.path)
	var ce *CorruptError
	if errors.As(err, &ce) {
		return hidden(offs, f, count, ce.Offset, ce.Reason+" (and no offsets file fits the segment)")
	}
	if err != nil {
		return nil, err
	}
	if uint64(len(offs)) != count {
		return hidden(offs, f, count, f.size,
			fmt.Sprintf("sealed segment holds %d records, but the next segment starts at position %d", len(offs), next))
	}
	return offs, nil
}

// eachEntry reads the entries of s in order through a buffer and calls fn with each
// decoded record, or with the *CorruptError that says why it is damaged.
func eachEntry(s *segment, fn func(i int, r Record, bad *CorruptError)) error {
	if len(s.offs) == 0 {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, s.size), int(max(16, min(s.size, scanBufferSize))))
	var buf []byte
	short := false
	for i := range s.offs {
		start, end := s.bounds(i)
		pos := s.first + uint64(i)
		if n := int(end - start); cap(buf) < n {
			buf = make([]byte, n)
		} else {
			buf = buf[:n]
		}
		if !short {
			if _, err := io.ReadFull(br, buf); err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					return err
				}
				short = true
			}
		}
		if short {
			fn(i, Record{}, &CorruptError{Segment: s.path, Offset: start, Position: pos, Reason: "segment file is shorter than its entries"})
			continue
		}
		r, err := decodeEntry(buf, s.path, start, pos)
		var ce *CorruptError
		if errors.As(err, &ce) {
			fn(i, Record{}, ce)
			continue
		}
		if err != nil {
			return err
		}
		fn(i, r, nil)
	}
	return nil
}

// Apply carries out the plan on a log no process has open, crash-safely: run again
// after a crash (PlanRepair, then Apply), it reaches the same result. First the bytes it
// removes are added to the file quarantine (see FORMAT.md), after what it holds, through
// a temporary file fsynced and renamed over it, and its directory is fsynced, before any
// segment changes: a crash leaves the quarantine file as it was or whole. Then the torn end is cut as Open cuts it. Then
// each segment with damaged records is rewritten: its sidecar is removed (so that Open
// rebuilds it, whatever happens next), the new segment is written to a temporary file
// and fsynced, renamed over the old one, and the directory fsynced. Apply refuses to
// run if a segment changed size since the plan was made.
func (p *RepairPlan) Apply(quarantine string) error {
	if err := p.apply(quarantine); err != nil {
		return fmt.Errorf("log: repair %s: %w", p.Dir, err)
	}
	return nil
}

func (p *RepairPlan) apply(quarantine string) error {
	if len(p.Actions) == 0 {
		return nil
	}
	for _, a := range p.Actions {
		info, err := os.Stat(a.Segment)
		if a.Segment == p.missing && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if info.Size() != p.sizes[a.Segment] {
			return fmt.Errorf("segment %s is %d bytes, the plan was made for %d: plan again", a.Segment, info.Size(), p.sizes[a.Segment])
		}
	}
	if err := p.writeQuarantine(quarantine); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if p.BeforeChange != nil {
		if err := p.BeforeChange(); err != nil {
			return err
		}
	}
	if err := p.cut.apply(p.Dir, true); err != nil {
		return err
	}
	if p.missing != "" {
		// Empty, it is what the plan was made for; the rewrite below fills it.
		if err := createEmpty(p.missing, p.Dir); err != nil {
			return fmt.Errorf("create the missing first segment: %w", err)
		}
	}
	for _, rw := range p.rewrites {
		if err := rw.apply(p.Dir); err != nil {
			return fmt.Errorf("rewrite %s: %w", rw.file.path, err)
		}
	}
	return nil
}

// createEmpty creates the empty file path (or leaves one a crash of an earlier Apply
// left: the plan made again finds it empty), owned as the log's files are, synced with
// its directory dir.
func createEmpty(path, dir string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	err = AdoptOwner(f, dir)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDirs(dir)
}

// QuarantineTmpExt names, after the quarantine file's own name, the file Apply writes the
// quarantine to before it renames it into place: a crash may leave it behind. The name is
// pmd's own, so that Apply, which replaces one a crash left, takes no file of the
// operator's.
const QuarantineTmpExt = ".pmd-repair.tmp"

// writeQuarantine adds every removed byte range to the file path, each after a header
// line, after what path already holds, and makes it durable. It writes the whole new
// file beside path (path + QuarantineTmpExt), with the mode and owner of the file it
// replaces, fsyncs it, renames it over path and fsyncs the directory: a crash leaves
// path as it was or whole with the new entries, never with an entry cut short, so that
// a repair run again with the same path adds its entries after whole ones. A path that
// is a symbolic link is written through it (the file it names is created if it is not
// there); one that is not a regular file (a device, a directory) is refused.
func (p *RepairPlan) writeQuarantine(path string) error {
	path, err := followLinks(path)
	if err != nil {
		return err
	}
	var old *os.File // what path holds, if it is there
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	default:
		if old, err = os.Open(path); err != nil {
			return err
		}
		defer old.Close()
	}
	tmp := path + QuarantineTmpExt
	q, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(q)
	err = func() error {
		if old == nil {
			// A new file: the owner of the directory it is made in, as every file pmd
			// makes as root in another user's store (AdoptOwner), so that the store's
			// user can read what a repair run as root took out.
			if err := AdoptOwner(q, filepath.Dir(path)); err != nil {
				return err
			}
		}
		if old != nil {
			// The new file replaces the old one: it takes its mode and owner.
			if err := q.Chmod(fi.Mode().Perm()); err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
				if err := q.Chown(int(st.Uid), int(st.Gid)); err != nil {
					return fmt.Errorf("%s: keeping its owner %d:%d: %w", path, st.Uid, st.Gid, err)
				}
			}
			if _, err := io.Copy(w, old); err != nil {
				return err
			}
		}
		for _, a := range p.Actions {
			op := "cut"
			if a.Op == RepairVoid {
				op = "void"
			}
			run := ""
			if a.Op == RepairVoid && (a.Records > 1 || a.Kept > 0) {
				run = fmt.Sprintf(" records=%d", a.Records)
			}
			if a.Op == RepairVoid && a.Kept > 0 {
				run += fmt.Sprintf(" kept=%d", a.Kept)
			}
			if a.Op == RepairVoid && a.Unconfirmed > 0 {
				run += fmt.Sprintf(" unconfirmed=%d", a.Unconfirmed)
			}
			fmt.Fprintf(w, "pmd-quarantine 1 %s segment=%s offset=%d position=%d bytes=%d%s reason=%q\n",
				op, filepath.Base(a.Segment), a.Offset, a.Position, a.Bytes, run, a.Reason)
			if a.Bytes == 0 {
				w.WriteByte('\n') // a missing segment file has none
				continue
			}
			f, err := os.Open(a.Segment)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, io.NewSectionReader(f, a.Offset, a.Bytes))
			f.Close()
			if err != nil {
				return err
			}
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return q.Sync()
	}()
	if cerr := q.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// followLinks returns the file path names after every symbolic link on the way, the last
// one's target even when it is not there yet (filepath.EvalSymlinks fails then), so that
// a rename over it replaces the file and not the link.
func followLinks(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

func (rw *rewrite) apply(dir string) error {
	if err := removeSidecar(rw.file.path); err != nil {
		return err
	}
	if err := syncDirs(dir); err != nil {
		return err
	}
	old, err := os.Open(rw.file.path)
	if err != nil {
		return err
	}
	defer old.Close()
	tmp := rw.file.path + repairTmpExt
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if err := AdoptOwner(f, dir); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	s := &segment{first: rw.file.first, path: rw.file.path, offs: rw.offs, size: rw.file.size}
	w := bufio.NewWriterSize(f, scanBufferSize)
	err = func() error {
		var rec []byte
		for i := range rw.offs {
			start, end := s.bounds(i)
			if v := rw.voids[i]; v != nil {
				rec = AppendRecord(rec[:0], v)
				w.Write(appendUvarint(nil, uint64(len(rec))))
				w.Write(rec)
				continue
			}
			if _, err := io.Copy(w, io.NewSectionReader(old, start, end-start)); err != nil {
				return err
			}
		}
		if rw.run != nil {
			if err := rw.run.write(w, old); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, rw.file.path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func appendUvarint(dst []byte, x uint64) []byte {
	for x >= 0x80 {
		dst = append(dst, byte(x)|0x80)
		x >>= 7
	}
	return append(dst, byte(x))
}
