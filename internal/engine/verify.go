package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// VerifyReport is what Verify found in a data directory. Notes are what the next start
// takes care of by itself (a torn tail it cuts, offsets files it rebuilds, records it
// replays into the index): not damage. Problems are damage, each saying what fixes it.
// The directory is sound when Problems is empty.
type VerifyReport struct {
	Dir      string
	Format   int   // the data directory's format: 1 to 4 are upgraded by the next start
	Segments int   // log segment files holding records the next start keeps
	Bytes    int64 // bytes of those records

	// What the log holds up to LastPosition, the last record the next start keeps, by
	// kind: Records counts damaged ones too, which have no kind.
	Records, Events, Links, Deletes, Voids int
	Retentions, Erasures                   int // retention settings and stream erasures
	Gone                                   int // events and links a scavenge removed
	stripped                               int // event records a scavenge kept without their data and metadata
	LastPosition                           uint64

	Cut      []pmdlog.RepairAction  // the torn end of the log, which the next start cuts
	Damage   []*pmdlog.CorruptError // damaged log records, in position order
	Sidecars []*pmdlog.SidecarError // offsets files found wrong; Rebuilt ones are notes
	Index    uint64                 // the position the on-disk index holds, if it opened
	Agrees   bool                   // the index was compared with the log up to Index and agrees
	Notes    []string               // human-readable, one line each
	Problems []string               // human-readable, one line each
	damaged  posRanges              // positions in Damage, and of void records
	version  []*versionGap          // streams whose versions the index does not derive
}

// OK reports whether Verify found no damage.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify checks the data directory dir of a stopped pmd, changing nothing in it: every
// log record (with the log's own parser, as log.PlanRepair reads it), the offsets file
// of every sealed segment, the version every record carries against the one the index
// derives, and the on-disk index against an index built afresh, in a temporary
// directory, from the log up to the index's position. It holds the directory's lock
// meanwhile (none on a read-only file system, where no pmd can have it open for writing)
// and fails with an error matching ErrLocked if a pmd has it open.
//
// progress, if not nil, is called from time to time and at the end with the bytes
// read so far and the bytes to read. The error is for a directory that cannot be
// checked at all (missing, locked, unreadable, of an unknown format); damage is in the
// report.
func Verify(ctx context.Context, dir string, progress func(done, total int64)) (*VerifyReport, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("pmd: verify: %w", err)
	}
	lock, err := Lock(dir)
	switch {
	case errors.Is(err, syscall.EROFS):
		// A copy on a read-only file system without its LOCK file: flock(2) cannot
		// create the file, and no pmd can have the store open for writing there.
	case err != nil:
		return nil, err
	default:
		defer lock.Unlock()
	}
	r := &VerifyReport{Dir: dir}
	if err := r.verify(ctx, progress); err != nil {
		return nil, fmt.Errorf("pmd: verify %s: %w", dir, err)
	}
	return r, nil
}

func (r *VerifyReport) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *VerifyReport) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *VerifyReport) verify(ctx context.Context, progress func(done, total int64)) error {
	var err error
	r.Format, err = readFormat(r.Dir)
	if le := (*LostLogError)(nil); errors.As(err, &le) {
		r.problem("%v; the next start refuses the store", le)
		return nil
	}
	if err != nil {
		return err
	}
	// The next start fails on a store id it cannot read, and makes one where there is none.
	switch id, err := readID(r.Dir); {
	case errors.Is(err, fs.ErrPermission):
		return err // not damage: the store cannot be checked by this user
	case err != nil:
		r.problem("%v; the next start fails", err)
	case id == uuid.Nil:
		r.note("no store id: the next start makes one")
	}
	if r.Format >= 2 && r.Format < Format {
		r.note("data directory format %d: the next start raises it to format %d once nothing refuses the open, "+
			"after which releases of pmd that wrote format %s refuse to open it (keep a copy from before to roll back)",
			r.Format, Format, formatsFrom(r.Format))
	}
	logDir := filepath.Join(r.Dir, LogDir)
	if _, err := os.Stat(logDir); err != nil {
		return fmt.Errorf("no log: %w", err)
	}
	l, err := pmdlog.Open(logDir, pmdlog.Options{ReadOnly: true})
	var ce *pmdlog.CorruptError
	if errors.As(err, &ce) {
		r.problem("%s; the log cannot be read past it, and the next start fails too: pmd repair says what a repair can do", ce)
		return nil
	}
	if err != nil {
		return err
	}
	defer l.Close()
	var total int64
	segs := l.Segments()
	for _, s := range segs {
		if s.Count > 0 {
			r.Segments++
			r.Bytes += s.Size
		}
	}
	total = 2 * r.Bytes // read twice: the repair plan, then the scan
	report := func(done int64) {
		if progress != nil {
			progress(done, total)
		}
	}
	r.LastPosition = l.LastPosition()

	plan, err := pmdlog.PlanRepair(logDir, nil)
	if errors.As(err, &ce) {
		// Open (above) went through: the damage is in a sealed segment, which Open
		// does not read.
		r.problem("%s; the store opens and serves the rest of the log, but reads of the records this damage hides fail with corrupt, "+
			"and pmd repair refuses it (restore the segment files from a copy to get them back)", ce)
		return nil
	}
	if err != nil {
		return err
	}
	report(r.Bytes)
	for _, a := range plan.Actions {
		switch a.Op {
		case pmdlog.RepairCut:
			r.Cut = append(r.Cut, a)
			r.note("torn tail, cut by the next start: %s offset %d (position %d): %d bytes (%d whole record(s)): %s",
				a.Segment, a.Offset, a.Position, a.Bytes, a.Records, a.Reason)
		case pmdlog.RepairVoid:
			ce := &pmdlog.CorruptError{Segment: a.Segment, Offset: a.Offset, Position: a.Position, Reason: a.Reason}
			if n := a.Records + a.Kept; n > 1 {
				ce.End = a.Position + uint64(n) // a run a damaged sealed segment hides
			}
			r.addDamage(ce)
		}
	}
	sidecars, err := pmdlog.VerifySidecars(logDir)
	if err != nil {
		return err
	}
	r.Sidecars = sidecars

	idx, err := r.openIndex()
	if err != nil {
		return err
	}
	if idx != nil {
		defer idx.Close()
	}
	if err := r.scan(ctx, l, segs, idx, func(done int64) { report(r.Bytes + done) }); err != nil {
		return err
	}
	report(total)

	// The lines, damage first.
	var problems []string
	problems, r.Problems = r.Problems, nil
	for _, d := range r.Damage {
		if d.End > d.Position+1 {
			r.problem("%s offset %d (positions %d to %d): %s", d.Segment, d.Offset, d.Position, d.End-1, d.Reason)
			continue
		}
		r.problem("%s offset %d (position %d): %s", d.Segment, d.Offset, d.Position, d.Reason)
	}
	for _, g := range r.version {
		msg := g.err.Error()
		if g.more > 0 {
			msg += fmt.Sprintf(" (and %d later record(s) of the stream)", g.more)
		}
		r.problem("%s", msg)
	}
	for _, s := range r.Sidecars {
		if s.Rebuilt {
			r.note("%v", s)
		} else {
			r.problem("%v; reads would use it and land on the wrong records: remove it and the first read of the segment rebuilds it", s)
		}
	}
	r.Problems = append(r.Problems, problems...)
	return nil
}

// count counts a record of kind k, and reports whether the report has a count for k:
// every kind the log can hold has one.
func (r *VerifyReport) count(k pmdlog.Kind) bool {
	switch k {
	case pmdlog.KindEvent:
		r.Events++
	case pmdlog.KindLink:
		r.Links++
	case pmdlog.KindDelete:
		r.Deletes++
	case pmdlog.KindVoid:
		r.Voids++
	case pmdlog.KindRetention:
		r.Retentions++
	case pmdlog.KindErase:
		r.Erasures++
	case pmdlog.KindGone:
		r.Gone++
	default:
		return false
	}
	return true
}

// versionGap is a stream some of whose records carry versions the index does not derive.
type versionGap struct {
	stream string
	pos    uint64 // the first such record
	err    error  // what ApplyRecord said of it
	more   int    // how many more records of the stream did
}

// versionGap notes that ApplyRecord refused rec with err.
func (r *VerifyReport) versionGap(rec *pmdlog.Record, err error) {
	stream := rec.Event.Stream
	if rec.Kind == pmdlog.KindLink {
		stream = rec.Link.Stream
	}
	for _, g := range r.version {
		if g.stream == stream {
			g.more++
			return
		}
	}
	r.version = append(r.version, &versionGap{stream: stream, pos: rec.Position, err: err})
}

func (r *VerifyReport) addDamage(ce *pmdlog.CorruptError) {
	if r.damaged.has(ce.Position) {
		return
	}
	r.damaged.add(ce.Position, max(ce.End, ce.Position+1)) // a run a damaged sealed segment hides: met once
	i := len(r.Damage)
	for i > 0 && r.Damage[i-1].Position > ce.Position {
		i--
	}
	r.Damage = append(r.Damage[:i], append([]*pmdlog.CorruptError{ce}, r.Damage[i:]...)...)
}

// openIndex opens the on-disk index read-only, or returns nil with a note or problem
// saying why it is not compared with the log.
func (r *VerifyReport) openIndex() (*index.Index, error) {
	if r.Format == 1 {
		r.note("data directory format 1: the next start upgrades it, building the index from the log")
		return nil, nil
	}
	// As Open does: AheadFile says that a cluster node's log may have lost unsynced
	// records below the index, so an index ahead of the log is rebuilt, not damage,
	// and the torn end of the log is cut whatever the index holds.
	_, err := os.Stat(filepath.Join(r.Dir, AheadFile))
	ahead := err == nil
	if ahead {
		r.note("%s: a sync of the log failed before an index flush, so the index may be ahead of the log on disk; "+
			"the next start checks the index against the log, rebuilds it if it is ahead, and removes %s", AheadFile, AheadFile)
	}
	why, err := os.ReadFile(filepath.Join(r.Dir, RebuildFile))
	switch {
	case err == nil:
		if held, ce, ok := parseLostMarker(why); ok {
			if _, err := os.Stat(filepath.Join(r.Dir, RaftDir)); err == nil {
				// As Open does: a cluster node's positions are the cluster's, written
				// again by Raft, not filled.
				r.problem("lost records (%s): the next start reports the loss and rebuilds the index from the log, and this cluster node applies the lost entries again from Raft, writing the positions up to %d that the log no longer holds again",
					ce.Reason, held)
				return nil, nil
			}
			r.problem("lost records (%s): the next start fills the positions up to %d that the log no longer holds with void records, reports the loss and rebuilds the index from the log",
				ce.Reason, held)
			return nil, nil
		}
		r.problem("the index was found damaged (%s): the next start rebuilds it from the log", strings.TrimSpace(string(why)))
		return nil, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	dir := filepath.Join(r.Dir, IndexDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		r.note("no index: the next start builds it from the log (%d records)", r.LastPosition)
		return nil, nil
	}
	idx, err := index.Open(dir, index.Options{ReadOnly: true, Logger: quietLogger()})
	if errors.Is(err, index.ErrOlderFormat) {
		// Written by an older version: no damage, Open upgrades it (openIndex).
		r.note("the index is in an older format (%v): the next start upgrades it, rebuilding it from the log (%d records)", err, r.LastPosition)
		return nil, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		r.problem("the index cannot be read by this user (%v): run pmd verify as the store's user", err)
		return nil, nil
	}
	if err != nil {
		r.problem("the index cannot be opened (%v): the next start rebuilds it from the log", err)
		return nil, nil
	}
	r.Index = idx.Position()
	if r.Index > r.LastPosition {
		msg := fmt.Sprintf("the index is at position %d, beyond the end of the log (position %d)", r.Index, r.LastPosition)
		if ahead {
			r.note("%s, as %s allows: the next start rebuilds it from the log", msg, AheadFile)
		} else if len(r.Cut) > 0 {
			r.problem("%s, and the torn end of the log is below it: the next start cuts that end (copying the segments it changes into DIR/quarantine-<UTC time>/, "+
				"which the next scavenge of a store that has erased data removes: copy it out of DIR to keep it), "+
				"reports the synced records it held as lost (a single node fills their positions with void records) and rebuilds the index", msg)
		} else {
			// As Open does (a store with syncing off aside, which a power cut explains).
			r.problem("%s: the synced records from position %d to %d are lost; the next start reports the loss, fills their positions with void records "+
				"(a cluster node applies them again from Raft) and rebuilds the index from the log (with syncing off, a power cut explains it, and it only rebuilds the index)",
				msg, r.LastPosition+1, r.Index)
		}
		idx.Close()
		return nil, nil
	}
	if n := r.LastPosition - r.Index; n > 0 {
		r.note("the index is at position %d, the log at %d: the next start replays %d record(s)", r.Index, r.LastPosition, n)
	}
	return idx, nil
}

// scan reads every record of l, counting them, and applies them to an index built
// afresh in a temporary directory, exactly as the engine's replay does (a damaged record
// is skipped), checking the version each record carries. When the fresh index reaches
// the position of the on-disk index idx (if not nil), the two are compared.
func (r *VerifyReport) scan(ctx context.Context, l *pmdlog.Log, segs []pmdlog.SegmentInfo, idx *index.Index, progress func(done int64)) error {
	tmp, err := os.MkdirTemp("", "pmd-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fresh, err := index.Open(tmp, index.Options{Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer fresh.Close()
	b := NewBatch(fresh, l)
	ix := indexer{b: b}
	compare := func() error {
		if err := fresh.Apply(b); err != nil {
			return err
		}
		r.compare(idx, fresh)
		idx = nil
		return nil
	}
	if idx != nil && idx.Position() == 0 {
		if err := compare(); err != nil {
			return err
		}
	}

	// Progress goes by segment, and within one by the share of its records read.
	seg, segDone := 0, int64(0)
	done := func(pos uint64) int64 {
		for seg+1 < len(segs) && segs[seg+1].First <= pos {
			segDone += segs[seg].Size
			seg++
		}
		s := segs[seg]
		if s.Count == 0 {
			return segDone
		}
		return segDone + s.Size*int64(pos-s.First+1)/int64(s.Count)
	}
	// step records the record at pos (nil when damaged) and compares the indexes when
	// the fresh one reaches the on-disk one.
	step := func(pos uint64, rec *pmdlog.Record) error {
		r.Records++
		if rec == nil {
			if err := ix.damaged(pos); err != nil {
				return err
			}
		} else {
			if !r.count(rec.Kind) {
				return fmt.Errorf("record %d: verify has no count for records of kind %s", pos, rec.Kind)
			}
			if rec.Kind == pmdlog.KindVoid {
				r.damaged.add(pos, pos+1) // for the explanation of a version gap
			}
			if rec.Kind == pmdlog.KindEvent && rec.Erased {
				r.stripped++
			}
			if err := ix.apply(rec); err != nil {
				if !errors.Is(err, pmdlog.ErrCorrupt) {
					return err
				}
				r.versionGap(rec, err)
			}
		}
		if b.Len() >= 64<<10 {
			if err := fresh.Apply(b); err != nil {
				return err
			}
		}
		if idx != nil && pos == idx.Position() {
			if err := compare(); err != nil {
				return err
			}
		}
		if pos%1024 == 0 {
			progress(done(pos))
		}
		return nil
	}

	err = scanAround(ctx, l, 1, l.LastPosition(), func(rec *pmdlog.Record) error {
		return step(rec.Position, rec)
	}, func(ce *pmdlog.CorruptError, pos uint64) error {
		r.addDamage(ce)
		return step(pos, nil)
	})
	if err != nil {
		return err
	}
	if idx != nil {
		return compare()
	}
	return fresh.Apply(b)
}

// compare compares the on-disk index idx with fresh, built from the log up to the
// same position.
func (r *VerifyReport) compare(idx, fresh *index.Index) {
	diff := idx.Diff
	if r.Gone > 0 || r.stripped > 0 {
		// A scavenge leaves the index's entries of the records it removes, and the
		// causation of an event whose metadata it removes: the index may hold more than
		// one rebuilt from the scavenged log, where no read looks, never less or other.
		diff = idx.DiffSubset
	}
	err := diff(fresh)
	if err == nil {
		r.Agrees = true
		return
	}
	fix := "remove " + filepath.Join(r.Dir, IndexDir) + " and the next start rebuilds it from the log"
	var d *index.DiffError
	switch {
	case errors.As(err, &d):
		msg := fmt.Sprintf("the index disagrees with the log on %s: the index has %s, the log %s", d.Key, d.X, d.Y)
		if p, ok := r.damaged.first(); ok && p <= idx.Position() {
			msg += " (damaged log records it covers can explain it)"
		}
		r.problem("%s; %s", msg, fix)
	case errors.Is(err, index.ErrDamaged) || pebble.IsCorruptionError(err):
		r.problem("the index is damaged (%v); %s", err, fix)
	default:
		r.problem("the index cannot be read (%v); %s", err, fix)
	}
}

// quietLogger drops the storage engine's messages about the indexes Verify opens.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
