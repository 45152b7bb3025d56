package log

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd/internal/logevery"
	"github.com/tidwall/wal"
)

// Options configures a Log. The zero value is a durable log with 64 MiB segments.
type Options struct {
	// NoSync skips every fsync (tests, benchmarks): an acknowledged write can be lost in
	// a power cut, never in a process crash. Never the default.
	NoSync bool
	// SegmentSize is the target segment size in bytes; 0 means 64 MiB. At most 1 GiB.
	SegmentSize int
	// Logger is where repairs are reported; nil means slog.Default().
	Logger *slog.Logger
	// Keep is a position the caller knows was durable (e.g. covered by an index
	// checkpoint). Crash repair never cuts at or below it: if it would have to, Open
	// fails with a *CorruptError. A log that needs no cut opens even if it ends before
	// Keep; LastPosition tells.
	Keep uint64
	// MaxOpenFiles bounds the read-only segment files kept open for reads; 0 means 64.
	MaxOpenFiles int
	// MaxLoadedSegments bounds the sealed segments whose offset tables (4 bytes per
	// record) are kept in memory, the least recently read being dropped; 0 means 64 (the
	// last 4 GiB read, with 64 MiB segments). Open loads none: a table is loaded from
	// the segment's offsets file when a read first needs it, and again after it was
	// dropped.
	MaxLoadedSegments int
	// ReadOnly opens the log for reading only, for offline checks of a log no process has
	// open: neither Open nor reads change anything in dir (no crash repair, no offsets
	// file written or removed, tidwall/wal not opened), and Open fails if dir does not
	// exist. Read, Scan and
	// Scrub serve the records up to the last one an Open without ReadOnly would keep;
	// Repairs and Damage report what such an Open would cut and keep. Write and Sync
	// fail with ErrReadOnly.
	ReadOnly bool
}

const (
	defaultSegmentSize  = 64 << 20
	maxSegmentSize      = 1 << 30
	defaultMaxOpenFiles = 64
	scanBufferSize      = 256 << 10
)

// Log is a write-ahead log of records at positions 1, 2, 3, … stored in a directory of
// github.com/tidwall/wal segment files. Writes go through tidwall/wal; reads go straight
// to the segment files by offset, so reading a record costs one pread (or a copy from a
// sealed segment's mapping) whatever the segment size. A Log is safe for concurrent use.
type Log struct {
	dir       string
	opts      Options
	logger    *slog.Logger
	wal       *wal.Log
	files     *fileCache
	tables    *tableCache
	sealing   sync.WaitGroup  // sidecar writes of segments just sealed, off the write path
	rewriting sync.Mutex      // held by Rewrite: one at a time
	repairs   []Repair        // fixed at Open
	damage    []*CorruptError // fixed at Open

	walOpts wal.Options // fixed at Open: a reopened tidwall/wal must mirror the same segment size

	// How the Log opens tidwall/wal, hands it a batch and fsyncs it: the methods of
	// tidwall/wal, replaced by tests to inject faults.
	openWAL    func(dir string, opts *wal.Options) (*wal.Log, error)
	writeBatch func(w *wal.Log, b *wal.Batch) error
	syncWAL    func(w *wal.Log) error
	probe      func() error // probeWrite: whether the disk takes writes again

	synced atomic.Int64 // nanoseconds the last Write or Copy spent in fsync: LastSync

	wmu      sync.Mutex // serialises Write, Sync and Close; guards the fields below and wal
	batch    wal.Batch
	scratch  []byte
	places   []place
	unsynced bool // records may be written and not fsynced: by WriteNoSync, or before Open
	// unproven is set by WriteNoSync and cleared by an fsync: a write that begins while
	// it is set carries flagUnsynced, as its records do not show that the ones before
	// them are durable (crash repair, FORMAT.md).
	unproven bool
	// syncFailed says failed was raised by a Sync's fsync: a later Sync that fsyncs the
	// same unsynced records clears it. A failure raised by a Write (or a recovery) is
	// cleared only by a successful Write or Copy: an fsync succeeds on a full disk, so it
	// shows nothing about writing.
	syncFailed bool
	// failLog is when a write failure was last logged, per cause (its message without
	// numbers): while the disk stays full every Write fails, and retrying clients would
	// log a line each; another cause in the run (an I/O error after a full disk) is
	// logged at once. The end of a run ("writes resumed") reports those held back and
	// starts it afresh.
	failLog logevery.Lines

	mu     sync.RWMutex // guards closed, failed, segs, last and the tail segment's count, offs and size
	closed bool         // written under wmu and mu
	failed error        // the last write failure until a Write (or Sync) clears it; written under wmu and mu
	segs   []*segment   // in position order; the last is the tail, the others are sealed
	last   uint64       // written under wmu and mu
}

// place is where an entry of a Write lands: in the tail (seg 0) or in the seg-th
// segment the Write starts, at off, taking size bytes.
type place struct {
	seg  int
	off  uint32
	size int
}

// Open opens the log in dir, creating dir if needed, and repairs the damage a crash can
// leave: everything after the last valid commit record is cut (see Repairs). A damaged
// record that later records show was durable, with its framing intact, is kept as it
// is and reported by Damage. Damage that a crash cannot explain and that breaks the
// framing (so later offsets are unknowable) makes Open fail with a *CorruptError and
// change nothing; see FORMAT.md for the cases.
func Open(dir string, opts Options) (*Log, error) {
	switch {
	case opts.SegmentSize == 0:
		opts.SegmentSize = defaultSegmentSize
	case opts.SegmentSize < 0 || opts.SegmentSize > maxSegmentSize:
		return nil, fmt.Errorf("log: open %s: %w options: SegmentSize %d outside 1..%d",
			dir, ErrInvalid, opts.SegmentSize, maxSegmentSize)
	}
	switch {
	case opts.MaxOpenFiles == 0:
		opts.MaxOpenFiles = defaultMaxOpenFiles
	case opts.MaxOpenFiles < 0:
		return nil, fmt.Errorf("log: open %s: %w options: MaxOpenFiles %d < 0", dir, ErrInvalid, opts.MaxOpenFiles)
	}
	switch {
	case opts.MaxLoadedSegments == 0:
		opts.MaxLoadedSegments = defaultMaxLoadedSegments
	case opts.MaxLoadedSegments < 0:
		return nil, fmt.Errorf("log: open %s: %w options: MaxLoadedSegments %d < 0", dir, ErrInvalid, opts.MaxLoadedSegments)
	}
	l := &Log{dir: dir, opts: opts, logger: opts.Logger, files: newFileCache(opts.MaxOpenFiles),
		tables:  &tableCache{max: opts.MaxLoadedSegments},
		openWAL: wal.Open, writeBatch: (*wal.Log).WriteBatch, syncWAL: (*wal.Log).Sync}
	l.probe = l.probeWrite
	l.walOpts = wal.Options{
		// The Log fsyncs the tail itself after a batch (see write), so that WriteNoSync
		// can skip it; tidwall/wal still fsyncs each segment it seals, and on Close.
		NoSync:           true,
		SegmentSize:      opts.SegmentSize,
		LogFormat:        wal.Binary,
		SegmentCacheSize: 1,
		DirPerms:         0o750,
		FilePerms:        0o640,
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if err := l.open(); err != nil {
		if l.wal != nil {
			l.wal.Close()
		}
		return nil, fmt.Errorf("log: open %s: %w", dir, err)
	}
	// The process before may have written records without fsync (WriteNoSync) and been
	// killed: they are in the page cache, not necessarily on disk, until a Sync. Unless
	// NoSync, they are synced here, so that the next write shows them durable.
	l.unsynced = !opts.ReadOnly
	if !opts.ReadOnly && !opts.NoSync {
		if err := l.syncWAL(l.wal); err != nil {
			l.wal.Close()
			return nil, fmt.Errorf("log: open %s: sync: %w", dir, err)
		}
		l.unsynced = false
	}
	return l, nil
}

func (l *Log) open() error {
	ro := l.opts.ReadOnly
	sync := !l.opts.NoSync && !ro
	if ro {
		if _, err := os.Stat(l.dir); err != nil {
			return err
		}
	} else if _, err := os.Stat(l.dir); errors.Is(err, fs.ErrNotExist) {
		if err := MkdirAll(l.dir, 0o750); err != nil {
			return err
		}
		if sync {
			if err := syncDir(filepath.Dir(filepath.Clean(l.dir))); err != nil {
				return err
			}
		}
	}
	segs, sidecars, err := listFiles(l.dir)
	if err != nil {
		return err
	}
	var tailOffs []uint32
	if len(segs) > 0 {
		// The crash repair looks at the last two segments' sizes, and reads whatever
		// else it looks at; the sealed segments' sizes are found below.
		if err := statSegments(segs[max(0, len(segs)-2):]); err != nil {
			return err
		}
		if segs[0].first != 1 {
			return &CorruptError{Segment: segs[0].path, Position: 1,
				Reason: fmt.Sprintf("first segment starts at position %d: the segments before it are missing", segs[0].first)}
		}
		plan, err := planRepair(segs, l.opts.Keep, false)
		if err != nil {
			return err
		}
		l.repairs, l.damage = plan.repairs(), plan.damage
		segs, tailOffs = plan.keep, plan.tailOffs
		if !ro {
			if err := plan.apply(l.dir, sync); err != nil {
				return fmt.Errorf("crash repair: %w", err)
			}
			for _, r := range l.repairs {
				l.logger.Warn(fmt.Sprintf("log: cut %d bytes after position %d in segment %s: %s", r.Bytes, plan.last, r.Segment, r.Reason),
					"segment", r.Segment, "offset", r.Offset, "bytes", r.Bytes, "records", r.Records)
			}
			// The damage kept is not logged here: its owner reports it with the damage
			// the scrub and reads find, once per record (Damage).
		}
	}

	// wal.Open lists the directory and stats every file in it, which takes about as long
	// as finding the sealed segments' sizes (a stat each): the two run side by side.
	sized := make(chan error, 1)
	go func() { sized <- statSegments(segs) }()
	if !ro {
		l.wal, err = l.openWAL(l.dir, l.walOptions())
	}
	if serr := <-sized; err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		// tidwall/wal created it, as this process's: adoptSegments gives it away below.
		segs = []segFile{{first: 1, path: filepath.Join(l.dir, segmentName(1)), uid: os.Geteuid(), gid: os.Getegid()}}
	}

	// A sealed segment's record count is what the names imply and its size what stat
	// said: its offset table is loaded, and checked against both, when a read needs it.
	for i, f := range segs[:len(segs)-1] {
		l.segs = append(l.segs, &segment{first: f.first, path: f.path, count: int(segs[i+1].first - f.first), size: f.size})
	}
	tf := segs[len(segs)-1]
	l.segs = append(l.segs, &segment{first: tf.first, path: tf.path, count: len(tailOffs), offs: tailOffs, size: tf.size})
	l.last = tf.first + uint64(len(tailOffs)) - 1
	if ro {
		return nil
	}

	// Before the directory's fsync below, as write does.
	if err := adoptSegments(l.dir, segs); err != nil {
		return err
	}
	if err := l.tidySidecars(sidecars); err != nil {
		return err
	}
	if sync {
		// Makes durable a segment wal.Open created, repairs and sidecar changes.
		if err := syncDirs(l.dir); err != nil {
			return err
		}
	}
	if wl, err := l.wal.LastIndex(); err != nil || wl != l.last {
		return fmt.Errorf("tidwall/wal opened at last index %d (%v), the log ends at %d", wl, err, l.last)
	}
	return nil
}

// walOptions returns a copy of the options tidwall/wal is opened with (wal.Open keeps
// the pointer it is given).
func (l *Log) walOptions() *wal.Options {
	o := l.walOpts
	return &o
}

// tidySidecars moves the sidecars that logs written before sidecarDir kept beside their
// segments into it, and removes the stale ones: of segments that are gone or are the tail
// again, and temporary files of an interrupted write. beside are the files listFiles
// found beside the segments.
func (l *Log) tidySidecars(beside []string) error {
	dir := filepath.Join(l.dir, sidecarDir)
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Also when it was there: a root Open killed right after it made it left it root's.
	if err := AdoptLeft(dir); err != nil {
		return err
	}
	moved := 0
	for _, p := range beside {
		if !strings.HasSuffix(p, sidecarExt) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		if err := os.Rename(p, filepath.Join(dir, filepath.Base(p))); err != nil {
			return err
		}
		moved++
	}
	if moved > 0 {
		l.logger.Info(fmt.Sprintf("log: moved %d offsets files into %s", moved, dir), "files", moved)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		if len(name) > segmentNameLen && name[segmentNameLen:] == sidecarExt {
			first, perr := strconv.ParseUint(name[:segmentNameLen], 10, 64)
			if i := l.find(first); perr == nil && i >= 0 && i < len(l.segs)-1 && l.segs[i].first == first {
				continue
			}
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeSidecar saves offs, the offset table of the sealed segment first at path, size
// bytes long. A failure is only logged: the table is rebuilt from the segment when it is
// next loaded.
func (l *Log) writeSidecar(first uint64, path string, size int64, offs []uint32) {
	b := appendOffsets(nil, &offsetTable{first: first, size: size, offs: offs})
	if err := replaceFile(sidecarPath(path), b); err != nil {
		l.logger.Warn("log: cannot save segment offsets; they will be rebuilt when next loaded",
			"segment", path, "err", err)
	}
}

// unusable says why a load does not use the sidecar t (read with error err) of the sealed
// segment f holding count records, "" if it does.
func unusable(t offsetTable, err error, f segFile, count uint64) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no offsets file"
	case err != nil:
		return err.Error()
	case t.first != f.first:
		return fmt.Sprintf("offsets file is for position %d", t.first)
	case uint64(len(t.offs)) != count:
		return fmt.Sprintf("offsets file lists %d records, want %d", len(t.offs), count)
	case t.size != f.size:
		return fmt.Sprintf("offsets file is for %d bytes, segment has %d", t.size, f.size)
	}
	return ""
}

// readSidecar reads the sidecar of the segment file segPath, from where logs written before
// sidecarDir kept it if it is not in sidecarDir (a read-only open does not move them).
func readSidecar(segPath string) (offsetTable, error) {
	b, err := os.ReadFile(sidecarPath(segPath))
	if errors.Is(err, fs.ErrNotExist) {
		b, err = os.ReadFile(legacySidecar(segPath))
	}
	if err != nil {
		return offsetTable{}, err
	}
	return decodeOffsets(b)
}

// find returns the index of the segment holding pos, -1 if pos is before the first.
// Callers hold mu (or own the Log during Open).
func (l *Log) find(pos uint64) int {
	return sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > pos }) - 1
}

// Write appends recs as consecutive positions LastPosition()+1, … in one tidwall/wal
// batch and at most one fsync of the tail segment (tidwall also fsyncs a segment it
// closes, and the directory is fsynced when a segment was started), sets each record's
// Position and WriteStart (a caller that sets them right beforehand may read recs during
// the Write), and returns when they are durable (unless NoSync).
// recs[len(recs)-1].Commit must be true. A Write refused for its input (ErrInvalid)
// writes nothing.
//
// Any other failure (disk full, I/O error) returns an error matching ErrUnavailable that
// wraps the cause (errors.Is(err, syscall.ENOSPC) holds for a full disk). None of recs
// is then in the log: the Log rolls the segment files back to the last acknowledged
// record at once and again before the next Write or Sync, which go on as usual once
// the cause is gone. Until a Write or Sync succeeds, Err reports the failure.
func (l *Log) Write(recs []Record) error { return l.writeChecked(recs, false, true) }

// WriteNoSync is Write without the fsync of the tail (the directory is still fsynced
// when a segment is started): the records are served at once and survive a crash of
// the process, but a power cut may take them, and any later ones, until the next Sync
// or synced Write. For a caller that holds the records durably elsewhere (a cluster
// node: Raft's log) and syncs before it relies on them; Open cuts the torn end such a
// power cut leaves, as after any crash, even where the power cut kept later pages and
// lost earlier ones: the records of the writes that follow a WriteNoSync before any
// fsync carry a flag that says they prove nothing of the records before them
// (FORMAT.md). Records at or below Options.Keep are never cut.
func (l *Log) WriteNoSync(recs []Record) error { return l.writeChecked(recs, false, false) }

// LastSync is how long the last Write or Copy waited for the disk's fsyncs (of the
// segment and, when it started one, of the directory): the disk's share of the write,
// for a caller that tells a slow disk from slow code. It is 0 for a write that did not
// sync.
func (l *Log) LastSync() time.Duration { return time.Duration(l.synced.Load()) }

// Copy writes records copied from another log of the same history, as a replica that
// catches up does: like Write, except that it also takes the void, gone and erased
// records that the other log holds after a repair or a scavenge, and keeps each record's
// Applied. recs[0] must be the record of the next position.
func (l *Log) Copy(recs []Record) error { return l.writeChecked(recs, true, true) }

func (l *Log) writeChecked(recs []Record, copied, sync bool) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.opts.ReadOnly {
		return fmt.Errorf("log: write: %w", ErrReadOnly)
	}
	if len(recs) > 0 && copied && recs[0].Position != l.last+1 {
		return fmt.Errorf("%w copy: the first record is at position %d, the log's next is %d", ErrInvalid, recs[0].Position, l.last+1)
	}
	if err := checkWrite(recs, l.last+1, copied); err != nil {
		return err
	}
	if err := l.ensureWAL(); err != nil {
		return err
	}
	if err := l.write(recs, sync && !l.opts.NoSync); err != nil {
		first, last := l.last+1, l.last+uint64(len(recs))
		err = fmt.Errorf("log: write positions %d-%d: %w: %w", first, last, ErrUnavailable, err)
		l.fail(err)
		return err
	}
	if !sync {
		l.unproven = true
	}
	l.setFailed(nil)
	return nil
}

// fail records the failure err of a Write or Sync and rolls the log back at once, so
// that the failed batch is gone from the files before anything else happens: a crash
// from here on cannot make it reappear. If the rollback fails too, the next Write or
// Sync tries again. Callers hold wmu.
func (l *Log) fail(err error) {
	l.setFailed(err)
	if suppressed, ok := l.failLog.Log(logevery.Key(err.Error()), time.Now()); ok {
		l.logger.Error("log: write failed; rolling back to the last acknowledged record",
			"position", l.last, "err", err, "suppressed", suppressed)
	}
	if rerr := l.recover(); rerr != nil {
		l.logger.Error("log: rollback failed; the next write tries again", "err", rerr)
	}
}

func (l *Log) setFailed(err error) {
	l.syncFailed = false
	if l.failed == nil && err == nil {
		return
	}
	if l.failed != nil && err == nil {
		l.logger.Info("log: writes resumed", "position", l.last, "suppressed", l.failLog.Flush())
	}
	l.mu.Lock()
	l.failed = err
	l.mu.Unlock()
}

// ensureWAL makes sure a tidwall/wal handle at the last acknowledged record is open,
// recovering from an earlier failure. Callers hold wmu.
func (l *Log) ensureWAL() error {
	if l.wal != nil {
		return nil
	}
	if err := l.recover(); err != nil {
		l.setFailed(err)
		return err
	}
	return nil
}

// recover returns the files and tidwall/wal to the state after the last acknowledged
// record, l.last, whatever a failed batch left: the segments it started are removed
// (last first, with any offsets file), the tail segment is truncated to the end of the
// last acknowledged entry and fsynced, then the directory. Only then is the old
// tidwall/wal handle closed: it may hold the failed batch in memory and a file offset
// past it, and its Close fsyncs, which is harmless once the bytes are gone. A new handle
// is opened and must be at l.last. On failure l.wal is nil and the error matches
// ErrUnavailable. Callers hold wmu; readers go on meanwhile, as nothing they can see
// changes.
func (l *Log) recover() error {
	if err := l.rollback(); err != nil {
		if l.wal != nil {
			l.wal.Close() // never written through again; a sync error is moot
			l.wal = nil
		}
		return fmt.Errorf("log: recover to position %d: %w: %w", l.last, ErrUnavailable, err)
	}
	if l.wal != nil {
		if err := l.wal.Close(); err != nil && !errors.Is(err, wal.ErrClosed) {
			// tidwall leaves its file open when its fsync fails: that descriptor is lost,
			// the bytes it could write are already cut.
			l.logger.Warn("log: closing the failed tidwall/wal handle", "err", err)
		}
		l.wal = nil
	}
	w, err := l.openWAL(l.dir, l.walOptions())
	if err == nil {
		if wl, lerr := w.LastIndex(); lerr != nil || wl != l.last {
			w.Close()
			err = fmt.Errorf("tidwall/wal reopened at last index %d (%v), the log ends at %d", wl, lerr, l.last)
		}
	}
	if err != nil {
		return fmt.Errorf("log: recover to position %d: %w: %w", l.last, ErrUnavailable, err)
	}
	l.wal = w
	return nil
}

// rollback cuts from the files everything after the last acknowledged record.
func (l *Log) rollback() error {
	sync := !l.opts.NoSync
	tail := l.segs[len(l.segs)-1]
	segs, _, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	removed := false
	for i := len(segs) - 1; i >= 0 && segs[i].first > tail.first; i-- {
		if err := os.Remove(segs[i].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := removeSidecar(segs[i].path); err != nil {
			return err
		}
		removed = true
	}
	// The removals are made durable before the truncate, as repairPlan.apply does: a
	// power cut keeping the fsynced truncate and losing an unlink would leave a segment
	// cut short that a segment file follows.
	if sync && removed {
		if err := syncDirs(l.dir); err != nil {
			return err
		}
	}
	return truncate(tail.path, tail.size, sync)
}

// checkWrite refuses a batch that DecodeRecord would not read back, recs[0] going to
// position first.
func checkWrite(recs []Record, first uint64, copied bool) error {
	if len(recs) == 0 {
		return fmt.Errorf("%w write: no records", ErrInvalid)
	}
	if !recs[len(recs)-1].Commit {
		return fmt.Errorf("%w write: the last of %d records is not a commit", ErrInvalid, len(recs))
	}
	for i := range recs {
		switch {
		case copied:
		case recs[i].Kind == KindVoid:
			return fmt.Errorf("%w write: record %d of %d: void records are written only by repair", ErrInvalid, i+1, len(recs))
		case recs[i].Kind == KindGone, recs[i].Erased:
			return fmt.Errorf("%w write: record %d of %d: %s records are written only by a scavenge", ErrInvalid, i+1, len(recs), recs[i].Kind)
		}
		if msg := recs[i].check(first + uint64(i)); msg != "" {
			return fmt.Errorf("%w write: record %d of %d: %s", ErrInvalid, i+1, len(recs), msg)
		}
	}
	return nil
}

func (l *Log) write(recs []Record, sync bool) error {
	first := l.last + 1
	tail := l.segs[len(l.segs)-1]
	segSize := int64(l.opts.SegmentSize)

	// Mirror tidwall/wal's writeBatch to know where each entry lands: it starts a new
	// segment before the batch if the tail is over SegmentSize, and after every entry
	// that brings the tail to SegmentSize.
	var starts []uint64 // first positions of the segments this write starts
	size := tail.size
	if size > segSize {
		starts, size = append(starts, first), 0
	}
	l.batch.Clear()
	l.places = l.places[:0]
	var flags byte
	if l.unproven {
		flags = flagUnsynced
	}
	for i := range recs {
		r := &recs[i]
		if p := first + uint64(i); r.Position != p || r.WriteStart != first {
			// Stored only when not right already: a caller that set them may read recs
			// while they are being written.
			r.Position, r.WriteStart = p, first
		}
		l.scratch = appendRecord(l.scratch[:0], r, flags)
		l.batch.Write(r.Position, l.scratch)
		n := entrySize(len(l.scratch))
		l.places = append(l.places, place{seg: len(starts), off: uint32(size), size: n})
		if size += int64(n); size >= segSize {
			starts, size = append(starts, r.Position+1), 0
		}
	}
	last := first + uint64(len(recs)) - 1
	if err := l.writeBatch(l.wal, &l.batch); err != nil {
		return err
	}
	var synced time.Duration
	defer func() { l.synced.Store(int64(synced)) }()
	if sync {
		start := time.Now()
		if err := l.syncWAL(l.wal); err != nil {
			return err
		}
		synced = time.Since(start)
		l.unsynced, l.unproven = false, false
	} else {
		l.unsynced = true
	}
	if len(starts) > 0 {
		for _, p := range starts {
			path := filepath.Join(l.dir, segmentName(p))
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("segment %s should have been started: %w", path, err)
			}
			// Before the directory's fsync, which commits the change of owner with it
			// on a journaling file system.
			if err := AdoptOwnerPath(path); err != nil {
				return fmt.Errorf("segment %s: %w", path, err)
			}
		}
		if !l.opts.NoSync {
			start := time.Now()
			if err := syncDir(l.dir); err != nil {
				return fmt.Errorf("sync directory: %w", err)
			}
			synced += time.Since(start)
		}
	}

	// Build the new segments before publishing them to readers.
	segs := []*segment{tail}
	for _, p := range starts {
		segs = append(segs, &segment{first: p, path: filepath.Join(l.dir, segmentName(p))})
	}
	var tailOffs []uint32
	tailSize := tail.size
	for _, p := range l.places {
		end := int64(p.off) + int64(p.size)
		if p.seg == 0 {
			tailOffs, tailSize = append(tailOffs, p.off), end
		} else {
			segs[p.seg].offs, segs[p.seg].size = append(segs[p.seg].offs, p.off), end
			segs[p.seg].count++
		}
	}
	if wl, err := l.wal.LastIndex(); err != nil || wl != last {
		return fmt.Errorf("tidwall/wal is at index %d (%v)", wl, err)
	}
	l.mu.Lock()
	for _, s := range segs[:len(segs)-1] {
		s.sidecar = make(chan struct{}) // set before Rewrite can see s sealed
	}
	tail.offs = append(tail.offs, tailOffs...)
	tail.count, tail.size = len(tail.offs), tailSize
	l.segs = append(l.segs, segs[1:]...)
	l.last = last
	l.mu.Unlock()

	if len(starts) > 0 {
		// The segments sealed here keep their tables loaded; the cache may drop them only
		// once their sidecar is written, so no load reads one being written. Nothing
		// changes their offs any more. The sidecar is written in the background: its
		// fsyncs would otherwise hold up the writers of this commit (the next Open does
		// not need it, and a lost one is rebuilt on first load).
		for _, s := range segs[:len(segs)-1] {
			l.sealing.Add(1)
			go func() {
				defer l.sealing.Done()
				defer close(s.sidecar)
				l.writeSidecar(s.first, s.path, s.size, s.offs)
				l.tables.sealed(s)
			}()
		}
		// tidwall/wal keeps a copy of the segment it closed: drop it. The records are
		// durable and published, so a failure here does not fail the Write; the handle
		// is reopened before the next one.
		if err := l.wal.ClearCache(); err != nil {
			l.logger.Warn("log: tidwall/wal cache", "err", err)
			l.wal.Close()
			l.wal = nil
		}
	}
	return nil
}

// LastPosition returns the position of the last record, 0 when the log is empty.
func (l *Log) LastPosition() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.last
}

// Read returns the record at pos with one positional read of its segment file, checking
// its checksum and position: damage is reported as a *CorruptError, never served. A
// position that a damaged sealed segment hides (see CorruptError.End) gets the error
// naming every position it hides. It is safe to call concurrently with Write.
func (l *Log) Read(pos uint64) (Record, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return Record{}, ErrClosed
	}
	if pos == 0 || pos > l.last {
		last := l.last
		l.mu.RUnlock()
		return Record{}, fmt.Errorf("log: read position %d (last is %d): %w", pos, last, ErrNotFound)
	}
	i := l.find(pos)
	s, tail := l.segs[i], i == len(l.segs)-1
	var start, end int64
	gen := s.gen
	if tail {
		start, end = s.bounds(int(pos - s.first))
	}
	l.mu.RUnlock()
	offs, size, cf, ok, err := l.openSegment(s, gen, !tail, !tail)
	if !ok {
		return l.Read(pos) // a Rewrite of the segment, sealed meanwhile, came in between
	}
	if err != nil {
		if ce := (*CorruptError)(nil); errors.As(err, &ce) && ce.End != 0 && pos < ce.Position {
			// The segment cannot be framed past ce.Position, but pos is before it: its
			// entry ends where the framing got.
			if _, _, cf, ok, err = l.openSegment(s, gen, true, false); !ok {
				return l.Read(pos)
			}
			size = ce.Offset
		}
	}
	if err != nil {
		return Record{}, fmt.Errorf("log: read position %d: %w", pos, err)
	}
	if !tail {
		start, end = offsBounds(offs, size, int(pos-s.first))
	}
	b := make([]byte, end-start)
	err = cf.readAt(b, start)
	l.files.release(cf)
	var r Record
	switch {
	case errors.Is(err, io.EOF):
		err = &CorruptError{Segment: s.path, Offset: start, Position: pos, Reason: "segment file is shorter than its entries"}
	case err != nil:
		return Record{}, fmt.Errorf("log: read position %d: %w", pos, err)
	default:
		r, err = decodeEntry(b, s.path, start, pos)
	}
	return r, err
}

// decodeEntry decodes the whole entry b, read at off in segment path, which must hold the
// record of position pos.
func decodeEntry(b []byte, path string, off int64, pos uint64) (Record, error) {
	raw, n, ok := entry(b)
	if !ok || n != len(b) {
		reason := fmt.Sprintf("entry framing does not match the offset table (%d bytes)", len(b))
		if !ok {
			reason = frameError(b)
		}
		return Record{}, &CorruptError{Segment: path, Offset: off, Position: pos, Reason: reason}
	}
	r, err := DecodeRecord(raw)
	if err != nil {
		return Record{}, at(err, path, off, pos)
	}
	if r.Position != pos {
		return Record{}, &CorruptError{Segment: path, Offset: off, Position: pos,
			Reason: fmt.Sprintf("holds the record of position %d", r.Position)}
	}
	return r, nil
}

// Scan calls fn for each record from position from (inclusive; 0 means 1) up to
// LastPosition() as of the call, in order, reading each segment sequentially through a
// buffer. It stops at the first error: fn's is returned as is, ctx's when ctx is done
// (checked between records), and damage as a *CorruptError. A sealed segment that ends
// before the position the next one starts at is damage too, hiding the positions it
// lacks (CorruptError.End), and so is a scan that starts at a position a damaged sealed
// segment hides. fn may call the Log.
func (l *Log) Scan(ctx context.Context, from uint64, fn func(Record) error) error {
	if from == 0 {
		from = 1
	}
	type span struct {
		s          *segment
		start, end int64 // for the tail; a sealed segment's are found when its turn comes
		first      uint64
		next       uint64 // the next segment's first position, for a sealed segment
		gen        int
		sealed     bool
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	last := l.last
	var spans []span
	if from <= last {
		for i := l.find(from); i < len(l.segs) && l.segs[i].first <= last; i++ {
			s := l.segs[i]
			sp := span{s: s, end: s.size, first: max(from, s.first), gen: s.gen, sealed: i < len(l.segs)-1}
			if sp.sealed {
				sp.next = l.segs[i+1].first
			} else if s.first < from {
				sp.start, _ = s.bounds(int(from - s.first))
			}
			spans = append(spans, sp)
		}
	}
	l.mu.RUnlock()

	var total int64
	for _, sp := range spans {
		total += sp.end - sp.start
	}
	// A short scan (a stream's catch-up, say) need not pay for a large buffer.
	br := bufio.NewReaderSize(nil, int(min(total, scanBufferSize)))
	var buf []byte
	for _, sp := range spans {
		skip := sp.first > sp.s.first
		offs, size, cf, ok, err := l.openSegment(sp.s, sp.gen, sp.sealed, sp.sealed && skip)
		if !ok {
			// The tail was sealed and rewritten since the spans were made.
			offs, size, cf, _, err = l.openSegment(sp.s, -1, true, skip)
			sp.sealed = true
		}
		// A sealed segment that cannot be framed past hid.Position: the entries before
		// it are read from where its framing got, and the scan stops at it.
		var hid *CorruptError
		if errors.As(err, &hid) && hid.End != 0 {
			if sp.first >= hid.Position {
				return hid
			}
			if _, size, cf, ok, err = l.openSegment(sp.s, sp.gen, true, false); !ok {
				return l.Scan(ctx, sp.first, fn) // rewritten since: offs is not its table
			}
		}
		if err != nil {
			return fmt.Errorf("log: scan: %w", err)
		}
		if sp.sealed {
			sp.start, sp.end = 0, size
			if skip {
				sp.start = int64(offs[sp.first-sp.s.first])
			}
		}
		br.Reset(io.NewSectionReader(cf.f, sp.start, sp.end-sp.start))
		pos, off := sp.first, sp.start
		for off < sp.end && pos <= last && (sp.next == 0 || pos < sp.next) {
			if err = ctx.Err(); err != nil {
				break
			}
			var r Record
			r, buf, err = readEntry(br, buf, sp.s.path, off, sp.end, pos)
			if err != nil {
				if hid != nil && pos >= hid.Position {
					err = hid
				}
				break
			}
			off += int64(entrySize(len(buf)))
			if err = fn(r); err != nil {
				break
			}
			pos++
		}
		l.files.release(cf)
		if err == nil && sp.next != 0 && pos < sp.next && pos <= last {
			// The file ended before the record the next segment's name says comes
			// before it: the records in between are lost.
			err = &CorruptError{Segment: sp.s.path, Offset: off, Position: pos, End: sp.next,
				Reason: fmt.Sprintf("sealed segment holds %d records, but the next segment starts at position %d", pos-sp.s.first, sp.next)}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readEntry reads the entry at off (ending at or before end) from br into buf and
// decodes it as the record of position pos.
func readEntry(br *bufio.Reader, buf []byte, path string, off, end int64, pos uint64) (Record, []byte, error) {
	bad := func(reason string) error {
		return &CorruptError{Segment: path, Offset: off, Position: pos, Reason: reason}
	}
	n, k, err := readUvarint(br)
	if err != nil {
		return Record{}, buf, bad(err.Error())
	}
	if n > uint64(end-off-k) {
		return Record{}, buf, bad(fmt.Sprintf("torn entry: length %d runs past the end of the segment", n))
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return Record{}, buf, bad("torn entry: " + err.Error())
	}
	r, err := DecodeRecord(buf)
	if err != nil {
		return Record{}, buf, at(err, path, off, pos)
	}
	if r.Position != pos {
		return Record{}, buf, bad(fmt.Sprintf("holds the record of position %d", r.Position))
	}
	return r, buf, nil
}

// Sync fsyncs the tail segment, unless every record was synced already (by Write or an
// earlier Sync since Open) and no write failed since: then it does nothing. A failure is
// handled as a failed Write's is: the error matches ErrUnavailable and wraps the cause,
// Err reports it, and the next Write or Sync recovers first. A successful Sync clears
// Err when it fsyncs the records a failed Sync left unsynced, or, after a Write's
// failure (such as a full disk), when a probe file it writes and fsyncs beside the
// segments goes through (Err). Nothing acknowledged is cut
// by the recovery, but after a failed fsync the operating system may have dropped
// unsynced pages: with NoSync, records acknowledged since the last successful Sync may
// not survive a power cut.
func (l *Log) Sync() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.syncLocked("sync")
}

// syncLocked is Sync for a caller holding wmu; op names it in errors.
func (l *Log) syncLocked(op string) error {
	if l.closed {
		return ErrClosed
	}
	if l.opts.ReadOnly {
		return fmt.Errorf("log: %s: %w", op, ErrReadOnly)
	}
	if !l.unsynced && l.wal != nil && l.Err() == nil {
		return nil // every record written is synced: nothing to do
	}
	if err := l.ensureWAL(); err != nil {
		return err
	}
	synced := l.unsynced // this fsync covers records not known durable
	if err := l.syncWAL(l.wal); err != nil {
		err = fmt.Errorf("log: %s: %w: %w", op, ErrUnavailable, err)
		l.fail(err)
		l.syncFailed = true
		return err
	}
	l.unsynced, l.unproven = false, false
	switch {
	case l.Err() == nil:
	case synced && l.syncFailed:
		l.setFailed(nil) // the fsync that failed went through now
	case !l.syncFailed && l.probe() == nil:
		// A Write's failure: an fsync of what the disk holds succeeds on a full disk
		// too, but a probe written and fsynced beside the segments shows that it takes
		// writes again. Without it, a store no client writes to (a load balancer takes a
		// degraded node out) would stay degraded after the cause is gone.
		l.setFailed(nil)
	}
	return nil
}

// probeName is the file probeWrite writes, in sidecarDir (which Open does not list: a
// probe a crash left behind is written over by the next).
const (
	probeName = "write-probe"
	probeSize = 64 << 10
)

// probeWrite writes and fsyncs probeSize bytes in a file beside the segments and removes
// it: an error (ENOSPC, EIO) says the disk does not take writes yet.
func (l *Log) probeWrite() error {
	dir := filepath.Join(l.dir, sidecarDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	path := filepath.Join(dir, probeName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	// A probe a crash leaves behind is written over by the next, whoever writes it.
	err = AdoptOwner(f, dir)
	if err == nil {
		_, err = f.Write(make([]byte, probeSize))
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close(), os.Remove(path))
}

// Err returns nil when writes work, and otherwise the error of the last failed Write,
// Sync or recovery (matching ErrUnavailable), until a Write or Copy succeeds, or a Sync
// shows writes work again: for a failed Sync, by fsyncing the records it left unsynced;
// for a failed Write, by writing and fsyncing a probe file beside the segments (an fsync
// of what the disk holds succeeds on a full disk too). It is what a health check reports
// as degraded. Reads work either way.
func (l *Log) Err() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.failed
}

// Repairs returns what Open cut, in the order it was cut (the last segment first); with
// Options.ReadOnly, what an Open without it would cut.
func (l *Log) Repairs() []Repair {
	return append([]Repair(nil), l.repairs...)
}

// Damage returns the damaged records Open found and kept, in position order: records
// that fail their checksum (or hold the wrong position) in the segments Open reads
// (the tail, and the segments before it back to the last commit), where the framing
// around them holds and later records show they had been durable, so no crash explains
// them. Read of such a position returns the same *CorruptError; the records after it
// are served. Sealed segments are not read at Open: Scrub checks them. Open does not log
// them: the owner reports them, with what Scrub and reads find, once each.
func (l *Log) Damage() []*CorruptError {
	return append([]*CorruptError(nil), l.damage...)
}

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Path  string
	First uint64 // position of its first record
	Count int    // records in it
	Size  int64  // bytes of whole entries
}

// Segments describes the segment files in position order, the tail last.
func (l *Log) Segments() []SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = SegmentInfo{Path: s.path, First: s.first, Count: s.count, Size: s.size}
	}
	return out
}

// Close syncs and closes the log. Reads in flight finish; later calls return ErrClosed.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.sealing.Wait()
	l.files.close()
	if l.opts.ReadOnly {
		return nil
	}
	if l.failed != nil || l.wal == nil {
		// Closing a failed handle would fsync what it wrote of the failed batch: cut it
		// first, so that the next Open does not find it.
		if err := l.recover(); err != nil {
			return fmt.Errorf("log: close %s: %w", l.dir, err)
		}
	}
	if err := l.wal.Close(); err != nil {
		return fmt.Errorf("log: close %s: %w", l.dir, err)
	}
	return nil
}
