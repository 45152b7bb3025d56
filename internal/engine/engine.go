package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	"github.com/pmd-dev/pmd/internal/logevery"
	pmdlog "github.com/pmd-dev/pmd/log"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"
)

// Layout of a data directory.
const (
	LogDir     = "log"        // the segmented log: the source of truth
	IndexDir   = "index"      // the index over the log, rebuilt from it when lost
	LockFile   = "LOCK"       // held exclusively by the process that has the store open
	FormatFile = "FORMAT"     // the data directory's format version
	oldCkpt    = "index.ckpt" // format 1's in-memory index checkpoint
	// RebuildFile, when present, says why the index was found damaged, or which loss of
	// log records Open was handling (lostPrefix): the next Open rebuilds it from the log
	// and removes the file.
	RebuildFile = "index.rebuild"
	// AheadFile, when present, says that a sync of a cluster node's log, which holds
	// records written without fsync, failed before an index flush: the index may be on
	// disk ahead of the log, as with syncing off. The next Open treats it so, and removes
	// the file; so does a later sync that succeeds.
	AheadFile = "index.ahead"
	// SkippedFile, when present, says that a replay of the log into the index skipped
	// records (damaged, void or gone) and stopped before it finished: the index on disk
	// may lack the versions they held, and the next replay lets the versions of a stream
	// jump as that one would have. The replay that finishes removes it, but on a
	// cluster node (see replayDone); so do a replay from position 1 and a repair
	// (RepairPlan.Apply): they find no index on disk it could speak of. A replay writes
	// the position it was to run to in it (skippedMarker), so that one left by an Open
	// whose raise of the format did not come can be told stale (staleSkipped).
	SkippedFile = "index.skipped"
)

// Format is the data directory format this version writes. Format 1 (pmd before the
// index went to disk) had an index.ckpt file instead of the index directory; Open
// upgrades it. Format 3 is format 2 whose log may hold what releases that wrote format 2
// cannot read (retention, erase and gone records, the erased flag, a cluster node's
// applied and unsynced flags): they would cut such a record at the log's end as torn, or
// serve around it as damage, and so lose it. Format 4 is format 3 whose log may hold gone
// records that keep the id of the event they replace (log/FORMAT.md, "Gone ids"), which
// releases that wrote format 3 read as damage in the same way: a cluster node's catch-up
// copy or snapshot install writes a peer's gone records into the log's tail, where such a
// release would cut one as torn and every record after it. Format 5 is format 4 whose log
// may hold commit records with a slot (log/FORMAT.md, the slot flag: a cluster node's
// write that is not the first of its Raft entry), which releases that wrote format 4 read
// as damage in the same way, and cut as torn at the log's end, where a node's apply
// writes them. Every store goes to 5 at open, a single node's too, not at its first slot
// record: a single node's data directory can seed a new cluster, and a node's catch-up copy and snapshot install write a peer's
// slot records as they are, so raising it at the first such record would need a durable
// FORMAT written before each path that may write one reaches the log (under the log's
// lock, on the apply path); raised at open, before the store writes anything, no
// directory of format 4 or older can hold one.
//
// A release refuses a format it does not know, so Open raises formats 2 to 4 to 5,
// durably, last: once nothing can refuse the Open, before the store writes anything (3
// or 4 to 5 changes nothing else). Nothing Open writes before is unreadable to the releases
// of the directory's format, so a refused Open, or one killed before it raised the
// format, leaves the format as it was: a missing STORE_ID (every format reads it); the
// index, in layout 3, which every release of format 3 reads, and a release of format 2
// with an earlier layout rebuilds from the log, as it does any index it cannot open;
// crash repair's cuts and quarantine; the move of the offsets files into log/offsets/
// (an earlier release skips the directory and rebuilds the offsets); the void records
// that fill the positions of lost records (kind 4, read since before format 2); and the
// markers index.rebuild, index.skipped and index.ahead (a release that does not know one
// takes the first for a damaged index, which it rebuilds, and ignores the others; those
// since f50aef3 heed index.skipped as this one does). A release that ignores
// index.skipped may then run, index the log and write, and leave the marker behind: the
// next Open of this version, finding the raise not yet made, ignores and removes a marker
// whose replay the index on disk has passed (staleSkipped). The offline tools (Verify,
// PlanRepair) read formats 1 to 5 and leave FORMAT as it is.
//
// Only the releases that read FORMAT (since 002178b, format 2) refuse a later format: a
// release whose index lived in memory (format 1, up to 79a6565) never reads it and would
// take those records for damage in the same way, so going back to one is unsupported and
// needs a backup taken before the upgrade.
const Format = 5

// Options configures an Engine. The zero value is a durable store with default sizes.
type Options struct {
	NoSync      bool         // see pmd.Options.NoSync
	SegmentSize int          // log segment size; 0 means 1 MiB
	CacheSize   int64        // index block cache in bytes; 0 means index.DefaultCacheSize
	Logger      *slog.Logger // nil means slog.Default()
	// FlushEvery is the number of records applied to the index above its durable point
	// that has it flushed to disk; 0 means 100,000. A restart replays at most about this
	// many records.
	FlushEvery int
	// FlushInterval flushes the index this long after its durable point last moved when
	// it applied anything since, even when fewer records came; 0 means 10s. A crash loop
	// of short runs thus never replays much.
	FlushInterval time.Duration
	// NoScrub skips the background check of every log record that Open starts.
	NoScrub bool
	// ScrubBytesPerSecond paces that check, of the log and then of the index; 0 means
	// 32 MiB/s, negative unpaced.
	ScrubBytesPerSecond int64

	// afterVoid, when not nil, is called by Open between filling lost positions with void
	// records and rebuilding the index: a test stops Open there with an error, as a crash
	// would stop it. Nil outside tests.
	afterVoid func() error
	// replaceFile, when not nil, writes the marker files of a damaged index in place of
	// ReplaceFile: a test sees how. Nil outside tests.
	replaceFile func(path string, data []byte, sync bool) error
	// stopReplay, when not nil, is called by Open's replay after each record it applies:
	// true makes the replay put what it applied on the index's disk and stop, Open
	// failing with errReplayStopped, as a start killed once the index handed that much
	// to disk leaves the store.
	stopReplay func(pos uint64) bool
	// afterFlush, when not nil, is called by the flush loop after each of its flushes,
	// those of FlushInterval included: a test sees it run. Nil outside tests.
	afterFlush func()
}

// Engine is an open data directory: its lock, its log, its index kept up to the log, and
// what is known to be wrong with them. It is the only owner of the directory's layout.
type Engine struct {
	dir    string
	id     uuid.UUID
	opts   Options
	logger *slog.Logger
	// jumps throttles versionsJumped's line: a rebuild of a scavenged store may let
	// every truncated stream's versions jump.
	jumpsMu sync.Mutex
	jumps   logevery.Line
	lock    *flock.Flock

	Log   *pmdlog.Log
	Index *index.Index
	// syncing is Log once open, for syncLog, which the index calls from its own
	// goroutines.
	syncing atomic.Pointer[pmdlog.Log]

	aheadMu    sync.Mutex // serialises syncLog
	aheadNoted bool       // AheadFile was written in this run and not yet removed

	scavenging scavengeLock // serialises Scavenge

	made *made // what Open made in the directory, until it returns

	// lostHeld is the position the index held on disk when a previous Open found that the
	// log had lost records below it, read from the RebuildFile that Open wrote before
	// filling them: 0 if none. That Open stopped before finishing; this one finishes.
	lostHeld uint64
	// found is the format Open found the directory in (Format for a new one): below
	// Format, a release of that format may have run since an earlier Open of this one.
	found int

	kicked    uint64        // the index's position at the last flush kick; owned by the writer
	replayed  uint64        // records Open replayed into the index
	flushKick chan struct{} // asks the flusher for a flush
	stop      chan struct{}
	done      sync.WaitGroup

	mu        sync.Mutex
	damage    []*pmdlog.CorruptError // found by Open or the scrub
	indexBad  error                  // the index was found damaged: rebuilt at the next Open
	scrubDone chan struct{}
	closed    bool

	// While Open opens the index it found on disk (openFound), damage is only noted here,
	// under mu: if that open fails, the index is rebuilt at once (openIndex), and the
	// damage goes with it.
	openingIndex bool
	openDamage   error
}

// Open locks the data directory dir (creating it if needed), upgrades an older format,
// opens the log (repairing a torn tail) and the index, and replays the log records the
// index lacks, with progress logged. An index that cannot be read is rebuilt from the log.
// A refused Open removes the new store's files it made in dir (FORMAT, STORE_ID, index
// and log), leaving dir as it found it, but for dir itself if Open made it and for LOCK,
// which it never removes (see made.undo). A dir without FORMAT that is part of a store
// (partOfStore) it refuses with ErrPartOfStore before it makes anything there.
func Open(dir string, opts Options) (*Engine, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 1 << 20
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 100_000
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 10 * time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if _, err := os.Stat(filepath.Join(dir, FormatFile)); errors.Is(err, fs.ErrNotExist) {
		if why := partOfStore(dir); why != "" {
			// Before Open makes anything there (dir, LOCK): a new, empty store would be
			// served in that store's place, and one made in its index would go with the
			// index at that store's next rebuild.
			return nil, fmt.Errorf("pmd: open %s: %s: no new store is made there: %w", dir, why, ErrPartOfStore)
		}
	}
	fi, err := os.Stat(dir)
	if err == nil && !fi.IsDir() {
		// Rather than fail on DIR/LOCK, "not a directory", for the lock.
		return nil, fmt.Errorf("pmd: open %s: it is a file, not a data directory (a directory, which Open makes if it is missing): %w", dir, syscall.ENOTDIR)
	}
	if errors.Is(err, fs.ErrNotExist) {
		// Root making a store in another user's directory makes it that user's, as it
		// does every file in it (pmdlog.AdoptOwner).
		if err = pmdlog.MkdirAll(dir, 0o750); err != nil && !errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("pmd: open %s: %w", dir, err)
		}
	}
	if errors.Is(err, syscall.ENOTDIR) {
		// A part of the path is a file (FILE/sub): say which, rather than fail on
		// DIR/LOCK, "not a directory", for the lock.
		return nil, fmt.Errorf("pmd: open %s: %s: %w", dir, fileInPath(dir), syscall.ENOTDIR)
	}
	mk := &made{}
	lock, err := Lock(dir)
	if err != nil {
		return nil, err
	}
	e := &Engine{dir: dir, opts: opts, logger: logger, lock: lock, made: mk, flushKick: make(chan struct{}, 1), stop: make(chan struct{}), scrubDone: make(chan struct{})}
	if err := e.open(); err != nil {
		if e.Index != nil {
			e.Index.Close()
		}
		if e.Log != nil {
			e.Log.Close()
		}
		err = errors.Join(err, mk.undo(dir))
		lock.Unlock()
		return nil, fmt.Errorf("pmd: open %s: %w", dir, err)
	}
	e.made = nil
	e.done.Add(1)
	go e.flushLoop()
	cache := opts.CacheSize
	if cache <= 0 {
		cache = index.DefaultCacheSize
	}
	if int64(e.Index.Metrics().DiskBytes) <= cache {
		// The whole index fits in its cache: load it now rather than a block per miss
		// during the first reads. A larger one is left to fill with what is read.
		e.done.Add(1)
		go e.warm()
	}
	if !opts.NoScrub {
		e.done.Add(1)
		go e.scrub()
	}
	return e, nil
}

// fileInPath says which directory above dir, whose stat or making failed with ENOTDIR,
// is a file: the data directory cannot be made below it.
func fileInPath(dir string) string {
	for p := filepath.Dir(filepath.Clean(dir)); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return fmt.Sprintf("%s is a file, not a directory: no data directory can be made below it", p)
		}
		if next := filepath.Dir(p); next == p {
			return "a part of the path is a file, not a directory"
		}
	}
}

// Lock takes the exclusive lock of the data directory dir, which must exist. Held by
// another process, it fails with a *LockedError.
func Lock(dir string) (*flock.Flock, error) {
	l := flock.New(filepath.Join(dir, LockFile))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("pmd: lock %s: %w", dir, err)
	}
	if !ok {
		return nil, &LockedError{Dir: dir, PID: lockHolder(l.Path())}
	}
	// A lock file root created (0600) would lock the store's user out of its store; so
	// would one the user made that root gave away, in a data directory root:pmd (setgid)
	// the pmd user writes in: only root's own goes to the directory's owner.
	if err := pmdlog.AdoptLeft(l.Path()); err != nil {
		l.Unlock()
		return nil, fmt.Errorf("pmd: lock %s: %w", dir, err)
	}
	return l, nil
}

// ErrLocked is matched by the error of Open and of the offline tools for a data
// directory another process has open, a *LockedError naming the process.
var ErrLocked = errors.New("data directory locked")

func (e *Engine) open() error {
	format, err := e.format()
	if err != nil {
		return err
	}
	e.found = format
	// A STORE_ID made here is read by the releases of every format.
	if err := e.loadID(); err != nil {
		return err
	}
	keep := uint64(0)
	if format == 1 {
		e.logger.Info("pmd: upgrading the data directory from format 1: the index moves to disk and is built from the log once", "dir", e.dir)
		keep = ckptPosition(filepath.Join(e.dir, oldCkpt))
	}
	idxDir := filepath.Join(e.dir, IndexDir)
	idx, err := e.openIndex(idxDir)
	if err != nil {
		return err
	}
	e.Index = idx
	// Crash repair never cuts what the index holds on disk: the index is flushed only
	// after the log is synced. With syncing off nothing is promised, and a power cut may
	// leave the index ahead of the log, which the rebuild below handles; so may one after
	// a failed sync of a cluster node's log (AheadFile).
	aheadFile := filepath.Join(e.dir, AheadFile)
	_, err = os.Stat(aheadFile)
	mayBeAhead := e.opts.NoSync || err == nil
	if mayBeAhead {
		keep = 0
	} else {
		keep = max(keep, idx.Position())
	}
	// Reads keep the files and offset tables of the sealed segments read last open: those
	// of the last GiB of the log read (the tables cost 4 bytes a record, about 12 MiB
	// then), but never more than 512 files and mappings, which is half a GiB with the
	// default 1 MiB segments.
	recent := min(max((1<<30)/e.opts.SegmentSize, 64), 512)
	logDir := filepath.Join(e.dir, LogDir)
	logOpts := pmdlog.Options{
		NoSync:            e.opts.NoSync,
		SegmentSize:       e.opts.SegmentSize,
		Logger:            e.logger,
		Keep:              keep,
		MaxOpenFiles:      recent,
		MaxLoadedSegments: recent,
	}
	e.Log, err = pmdlog.Open(logDir, logOpts)
	if ce := (*pmdlog.CorruptError)(nil); keep > 0 && errors.As(err, &ce) {
		e.Log, err = e.openCutBelowKeep(logDir, logOpts, err)
	}
	if err != nil {
		return err
	}
	// The damage the log's open kept is logged once, here, before anything else can
	// make Open return; the scrub finds it again and says nothing.
	for _, ce := range e.Log.Damage() {
		e.NoteDamage(ce)
	}
	e.syncing.Store(e.Log)
	_, err = os.Stat(filepath.Join(e.dir, RaftDir))
	cluster := err == nil
	switch last := e.Log.LastPosition(); {
	case idx.Position() > last && mayBeAhead:
		// A power cut explains it, with syncing off or after a failed sync of a
		// cluster node's log: the index was flushed after log bytes that never
		// reached the disk.
		e.logger.Warn("pmd: the index is ahead of the log, rebuilding it from the log", "index", idx.Position(), "log", last)
		if err := e.rebuildIndex(idxDir); err != nil {
			return err
		}
	case idx.Position() > last:
		// No crash does: the records were synced before the index was flushed. The
		// log lost acknowledged records (a truncated file, a lost segment): damage,
		// reported as such for as long as this run lasts.
		segs := e.Log.Segments()
		tail := segs[len(segs)-1]
		then := "their positions are filled with void records, so that no later write takes them again"
		if cluster {
			// A cluster node's positions are the cluster's: Raft applies the lost
			// entries again, at the same positions, as after a crash.
			then = "the node applies them again from Raft"
		}
		held := idx.Position()
		ce := &pmdlog.CorruptError{Segment: tail.Path, Offset: tail.Size,
			Reason: fmt.Sprintf("the log ends at position %d, but the index held position %d on disk: the synced records from position %d to %d are lost; the index is rebuilt from the log, and %s",
				last, held, last+1, held, then)}
		// The marker goes first, synced: a crash before the index is rebuilt (the
		// void records written, the old index still there, indexing lost events at
		// their positions) leaves it, and the next Open rebuilds the index, fills
		// what is left to fill and reports the loss again.
		if err := ReplaceFile(filepath.Join(e.dir, RebuildFile), lostMarker(held, ce), true); err != nil {
			return fmt.Errorf("mark the index for a rebuild: %w", err)
		}
		e.lostHeld = held
		e.NoteDamage(ce)
		if !cluster {
			if err := e.voidLost(last+1, held); err != nil {
				return err
			}
		}
		if e.opts.afterVoid != nil {
			if err := e.opts.afterVoid(); err != nil {
				return err
			}
		}
		if err := e.rebuildIndex(idxDir); err != nil {
			return err
		}
	case e.lostHeld > last && !cluster:
		// An Open that found the loss stopped before it had filled every lost
		// position; the index was rebuilt from the log (openIndex).
		if err := e.voidLost(last+1, e.lostHeld); err != nil {
			return err
		}
	}
	if err := e.replayOrRebuild(idxDir); err != nil {
		return err
	}
	if e.lostHeld > 0 {
		// The index is rebuilt and flushed over the filled positions.
		if err := os.Remove(filepath.Join(e.dir, RebuildFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if mayBeAhead && !e.opts.NoSync {
		// The index on disk is now within the log on disk.
		if err := e.Log.Sync(); err != nil {
			return err
		}
		if err := os.Remove(aheadFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if format == 1 {
		if err := e.Index.Flush(); err != nil {
			return err
		}
		if err := e.writeFormat(); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(e.dir, oldCkpt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		e.logger.Info(fmt.Sprintf("pmd: upgraded the data directory to format %d", Format), "dir", e.dir)
	} else if err := os.Remove(filepath.Join(e.dir, oldCkpt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// A start killed in format 1's upgrade (above) after it wrote FORMAT, before it
		// removed index.ckpt, left the checkpoint, as large as format 1's index was:
		// nothing reads it any more.
		return err
	}
	if format >= 2 && format < Format {
		// Last, once nothing can refuse the Open, and before the store writes anything:
		// what the store writes may be unreadable to a release of an older format (the
		// retention, erase and gone records and erased flag of its appends and
		// scavenges, a cluster node's flags, the gone records with ids its catch-up
		// copies and the slots of its writes), which must then refuse the directory rather than open it. Nothing
		// this Open wrote before is (see Format), so a refused Open, or one killed
		// before this point, leaves the format as it was.
		if err := e.writeFormat(); err != nil {
			return fmt.Errorf("upgrade the data directory from format %d: %w", format, err)
		}
		e.logger.Info(fmt.Sprintf("pmd: upgraded the data directory from format %d to format %d: releases of pmd that read data directory format %s refuse it from now on", format, Format, formatsFrom(format)), "dir", e.dir)
	}
	if e.opts.NoSync {
		e.logger.Warn("pmd: syncing is off: acknowledged writes can be lost in a power cut", "dir", e.dir)
	}
	return nil
}

// lostPrefix begins the RebuildFile that Open writes when the log lost records the index
// held: "lost records up to position <held>: <the damage reported>\n". The next Open
// rebuilds the index, as for any RebuildFile, and also fills the positions up to held
// with void records and reports the damage again: the Open that wrote it may have
// stopped before it finished.
const lostPrefix = "lost records up to position "

// lostMarker returns the RebuildFile's bytes for the loss ce of the records up to held.
func lostMarker(held uint64, ce *pmdlog.CorruptError) []byte {
	return fmt.Appendf(nil, "%s%d: %s\n", lostPrefix, held, ce.Error())
}

// parseLostMarker reads what lostMarker wrote; ok is false for any other content (a
// RebuildFile that says why the index was found damaged).
func parseLostMarker(b []byte) (held uint64, ce *pmdlog.CorruptError, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(string(b)), lostPrefix)
	if !ok {
		return 0, nil, false
	}
	num, msg, ok := strings.Cut(rest, ": ")
	held, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil || held == 0 {
		return 0, nil, false
	}
	// Reported as it was, with the segment and offset in the reason.
	return held, &pmdlog.CorruptError{Reason: strings.TrimPrefix(msg, "log: corrupt: ")}, true
}

// voidLost writes a void record, synced, at each position from first to last: positions
// only grow (a subscriber past them keeps its place, and no event ever takes the
// position another was acknowledged at), even where the records at them were lost.
func (e *Engine) voidLost(first, last uint64) error {
	const batch = 4096
	for pos := first; pos <= last; {
		n := min(last-pos+1, batch)
		recs := make([]pmdlog.Record, n)
		for i := range recs {
			recs[i] = pmdlog.Record{Position: pos + uint64(i), Kind: pmdlog.KindVoid}
		}
		recs[n-1].Commit = true
		if err := e.Log.Copy(recs); err != nil {
			return fmt.Errorf("pmd: fill the lost positions %d to %d with void records: %w", first, last, err)
		}
		pos += n
	}
	return nil
}

// openCutBelowKeep opens the log whose crash repair refused, with failed, to cut records
// at or below opts.Keep: synced records the index holds on disk were lost, damage that
// Open reports once the log is open (the index is then ahead of it). Refusing to open
// would leave the store down for what a log ending at an entry boundary, and thus
// needing no cut, opens with; so the cut is made, after each segment it changes or
// removes is copied whole into a quarantine directory, dir/quarantine-<UTC timestamp>.
// Any other refusal is returned as failed.
func (e *Engine) openCutBelowKeep(dir string, opts pmdlog.Options, failed error) (*pmdlog.Log, error) {
	ro := opts
	ro.Keep, ro.ReadOnly = 0, true
	l, err := pmdlog.Open(dir, ro)
	if err != nil {
		return nil, failed // not the refusal of a cut
	}
	cuts := l.Repairs()
	if err := l.Close(); err != nil {
		return nil, err
	}
	if len(cuts) == 0 {
		return nil, failed
	}
	q := filepath.Join(e.dir, quarantinePrefix+time.Now().UTC().Format(cutQuarantineTime))
	if err := os.MkdirAll(q, 0o750); err != nil {
		return nil, err
	}
	if err := pmdlog.AdoptOwnerPath(q); err != nil {
		return nil, err
	}
	for _, c := range cuts {
		if err := copyFile(c.Segment, filepath.Join(q, filepath.Base(c.Segment))); err != nil {
			return nil, fmt.Errorf("quarantine %s: %w", c.Segment, err)
		}
	}
	if err := SyncFile(q); err != nil {
		return nil, err
	}
	e.logger.Error("pmd: the log lost records the index held on disk: cutting its torn end below them, the segments as they were kept in a quarantine directory; "+
		"the next scavenge of a store that has erased data removes it: copy it out of the data directory to keep it",
		"refused", failed, "quarantine", q)
	opts.Keep = 0
	return pmdlog.Open(dir, opts)
}

// copyFile copies the file src to a new file dst, synced.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	err = pmdlog.AdoptOwner(out, filepath.Dir(dst))
	if err == nil {
		_, err = io.Copy(out, in)
	}
	if serr := out.Sync(); err == nil {
		err = serr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// format returns the data directory's format, writing the current one into a new
// directory.
func (e *Engine) format() (int, error) {
	v, err := readFormat(e.dir)
	if err != nil || v != 0 {
		return v, err
	}
	// A directory that holds no store holds none of the files a store is made of but,
	// perhaps, an empty log directory (storeFiles, haveStore): a refused Open removes
	// what it makes of them.
	e.made.store = true
	if _, err := os.Lstat(filepath.Join(e.dir, LogDir)); errors.Is(err, fs.ErrNotExist) {
		e.made.log = true
	}
	return Format, e.writeFormat()
}

// made is what Open made in the data directory, which a refused Open removes (undo), so
// that it leaves the directory as it found it: a new store's files.
type made struct {
	store bool // FORMAT, STORE_ID, index/: the directory held no store
	log   bool // log/, when the directory held no store and no log directory
}

// undo removes what Open made in dir, in the reverse of the order it made it, the lock
// held: FORMAT goes after the rest, so that a crash leaves a directory that still opens
// as the new store it was. A log directory that was there, empty, is left, with any
// segment file the refused Open made in it: no record was written to it. LOCK is left
// too, made or not: flock(2) locks the file another process opened by the name, and
// one that opened LOCK before it was removed would lock it after, the removed file,
// while a third made a new LOCK and locked that: two processes would have the store
// open. A LOCK alone does not make a store (HaveStore).
func (m *made) undo(dir string) error {
	var paths []string
	if m.store {
		if m.log {
			paths = append(paths, LogDir)
		}
		paths = append(paths, IndexDir, StoreIDFile+".tmp", StoreIDFile, FormatFile+".tmp", FormatFile)
	}
	for _, name := range paths {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("remove what the refused open made: %w", err)
		}
	}
	return nil
}

// readFormat returns the format of the data directory dir without writing anything: 0
// for a directory that holds no store. A store that lost its log fails it with a
// *LostLogError.
func readFormat(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, FormatFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		switch err := haveStore(dir); {
		case err == nil:
			return 1, nil
		case errors.Is(err, ErrNoStore):
			return 0, nil
		default:
			return 0, err
		}
	case err != nil:
		return 0, err
	}
	var v int
	if _, err := fmt.Sscanf(string(b), "pmd data directory format %d\n", &v); err != nil {
		// Written synced through a rename, it is damaged, not torn: any format this pmd
		// reads opens as the current one (an older one's upgrade writes no more).
		return 0, fmt.Errorf("%s: damaged: %q is not \"pmd data directory format N\" (no crash leaves it so: it is written synced); "+
			"unless a pmd later than this one opened the directory, write the line \"pmd data directory format %d\" into it, then pmd verify checks the rest: %w",
			FormatFile, b, Format, ErrFormat)
	}
	if v < 2 || v > Format {
		// Format 1 has no FORMAT file.
		return 0, fmt.Errorf("%s: format %d, this pmd reads formats 1 to %d: %w", FormatFile, v, Format, ErrFormat)
	}
	return v, nil
}

// ErrNoStore is matched by the error of HaveStore for a directory that holds no store.
var ErrNoStore = errors.New("no store")

// ErrPartOfStore is matched by the error of Open for a directory that holds no store but
// is part of one (partOfStore): named as the data directory by mistake.
var ErrPartOfStore = errors.New("part of a store")

// partOfStore says why the directory dir, which holds no store, is part of one, or
// returns "": it is the log or index directory of the store in its parent (holdsStore),
// or it holds log segments (a store's log directory, moved).
func partOfStore(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		parent, base := filepath.Dir(abs), filepath.Base(abs)
		if (base == LogDir || base == IndexDir) && holdsStore(parent) {
			return fmt.Sprintf("%s is the %s directory of the store in %s, not a data directory: name %s", dir, base, parent, parent)
		}
	}
	if held, err := pmdlog.HoldsSegment(dir); err == nil && held {
		return fmt.Sprintf("%s holds log segments: it is a store's log directory (%s/), not a data directory: name the directory that holds it", dir, LogDir)
	}
	return ""
}

// formatPrefix begins every FORMAT file (writeFormat).
const formatPrefix = "pmd data directory format "

// holdsStore reports whether the directory dir holds a file only a store makes: a FORMAT
// file of pmd's, a STORE_ID, format 1's index checkpoint, or a log directory holding
// segments. Unlike haveStore it does not take a bare directory named index (or an empty
// one named log) for a store's: a user may have made dir/index, or dir/log, as a data
// directory of its own, in a parent that is no store, and such a directory, named as
// the data directory, must open as a new store (partOfStore). A store that lost its log
// but kept its STORE_ID (or index.ckpt) still counts.
func holdsStore(dir string) bool {
	if b, err := os.ReadFile(filepath.Join(dir, FormatFile)); err == nil && strings.HasPrefix(string(b), formatPrefix) {
		return true
	}
	for _, name := range []string{StoreIDFile, oldCkpt} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	held, err := pmdlog.HoldsSegment(filepath.Join(dir, LogDir))
	return err == nil && held
}

// HaveStore returns nil if the directory dir holds a store, which the offline tools
// check before they lock it (leaving a LOCK file) or open it (making a store): a FORMAT
// file, format 1's log directory holding a segment file, or, beside a log that holds
// none, what a store leaves there (storeFiles): a store that lost its log, which Open
// refuses and Verify reports (LostLogError). Otherwise its error, "no store at DIR:
// WHY", matches ErrNoStore, or is that of reading dir.
func HaveStore(dir string) error {
	if err := haveStore(dir); !errors.As(err, new(*LostLogError)) {
		return err
	}
	return nil
}

// haveStore is HaveStore, but returns the *LostLogError of a store that lost its log.
func haveStore(dir string) error {
	noStore := func(why string, args ...any) error {
		return fmt.Errorf("%w at %s: %s", ErrNoStore, dir, fmt.Sprintf(why, args...))
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return noStore("it does not exist")
	case err != nil:
		return err
	case !fi.IsDir():
		return noStore("it is not a directory")
	}
	if _, err := os.Stat(filepath.Join(dir, FormatFile)); !errors.Is(err, fs.ErrNotExist) {
		return err // a store from format 2 on, whatever its FORMAT says
	}
	logDir := filepath.Join(dir, LogDir)
	var why, lost string // why there is no store, and what became of the log
	fi, err = os.Stat(logDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		why, lost = fmt.Sprintf("it holds no FORMAT file and no log directory (%s)", logDir), "does not exist"
	case err != nil:
		return err
	case !fi.IsDir():
		why, lost = fmt.Sprintf("it holds no FORMAT file, and its log (%s) is not a directory", logDir), "is not a directory"
	default:
		switch held, err := pmdlog.HoldsSegment(logDir); {
		case err != nil:
			return err
		case held:
			return nil
		}
		why, lost = fmt.Sprintf("it holds no FORMAT file, and its log directory (%s) holds no log segment", logDir), "holds no log segment"
	}
	found, err := storeFiles(dir)
	switch {
	case err != nil:
		return err
	case len(found) > 0:
		return &LostLogError{Dir: dir, Log: lost, Found: found}
	}
	if part := partOfStore(dir); part != "" {
		why = part
	}
	return noStore("%s", why)
}

// storeFiles names the files of dir, beside its log and FORMAT, that only a store
// leaves: format 1's index checkpoint, the store id, the index. A new store writes
// FORMAT before any of them (and its log after them): a directory that holds one of
// them and neither FORMAT nor a log segment is a store that lost its log.
func storeFiles(dir string) ([]string, error) {
	var found []string
	for _, name := range []string{oldCkpt, StoreIDFile, IndexDir} {
		switch _, err := os.Lstat(filepath.Join(dir, name)); {
		case err == nil:
			found = append(found, name)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return found, nil
}

// LostLogError is the error of Open for a data directory without FORMAT whose log holds
// no segment (or is missing) but that holds files only a store leaves beside it
// (storeFiles): a store that lost its log (format 1's, whose index.ckpt is all that says
// what it held, or one that lost FORMAT too). Open refuses it, changing nothing, rather
// than make a new, empty store of it and lose what says a log was there; Verify reports
// it as damage, and PlanRepair as damage that a repair does not change (Unrepaired). It
// matches log.ErrCorrupt.
type LostLogError struct {
	Dir   string
	Log   string   // what became of the log directory: "does not exist", "is not a directory", "holds no log segment"
	Found []string // the store's files found, by name (storeFiles)
}

func (e *LostLogError) Error() string {
	logDir := filepath.Join(e.Dir, LogDir)
	paths := make([]string, len(e.Found))
	for i, name := range e.Found {
		paths[i] = filepath.Join(e.Dir, name)
	}
	return fmt.Sprintf("the store's log is lost: %s %s, but the directory holds %s, which only a store leaves beside its log: "+
		"restore %s from a copy of the store; or, to make a new, empty store here, remove %s",
		logDir, e.Log, strings.Join(e.Found, ", "), logDir, strings.Join(paths, " and "))
}

// Is makes errors.Is(err, log.ErrCorrupt) hold: the store is damaged.
func (e *LostLogError) Is(target error) bool { return target == pmdlog.ErrCorrupt }

// formatsFrom names the formats from v up to the one before Format ("2, 3 or 4"): the
// formats of the releases that open a directory of format v and refuse Format.
func formatsFrom(v int) string {
	s := strconv.Itoa(v)
	for f := v + 1; f < Format; f++ {
		if f == Format-1 {
			s += " or " + strconv.Itoa(f)
		} else {
			s += ", " + strconv.Itoa(f)
		}
	}
	return s
}

// ErrFormat is matched by the error of Open for a data directory of a format this
// version of pmd cannot read (written by a later version).
var ErrFormat = errors.New("unknown data directory format")

func (e *Engine) writeFormat() error {
	// Synced whatever NoSync says: a directory must never read as an older format than
	// its contents.
	return ReplaceFile(filepath.Join(e.dir, FormatFile), fmt.Appendf(nil, "%s%d\n", formatPrefix, Format), true)
}

// SyncFile fsyncs the file or directory at path.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openIndex opens the index in dir, replacing one that cannot be opened by an empty one:
// everything in it comes from the log. One that cannot be opened for want of permission
// is replaced too when this user may change its directory (files another user left, as
// a store opened once as root does), and otherwise left as it is, the error returned.
func (e *Engine) openIndex(dir string) (*index.Index, error) {
	marker := filepath.Join(e.dir, RebuildFile)
	why, err := os.ReadFile(marker)
	switch {
	case err == nil:
		if held, ce, ok := parseLostMarker(why); ok {
			// Open removes this marker once the lost positions are filled and the
			// index rebuilt over them.
			e.logger.Warn("pmd: the log lost records the index held on disk (an earlier start found it and stopped before it rebuilt the index, or a repair cut them): rebuilding the index from the log", "dir", dir, "index_position", held)
			e.lostHeld = held
			e.NoteDamage(ce)
			if err := os.RemoveAll(dir); err != nil {
				return nil, err
			}
			return e.openIndexDir(dir)
		}
		e.logger.Warn("pmd: the index was found damaged, rebuilding it from the log", "dir", dir, "damage", string(why))
	case errors.Is(err, fs.ErrNotExist):
		idx, damage, err := e.openFound(dir)
		switch {
		case err == nil:
			return idx, nil
		case errors.Is(err, fs.ErrPermission) && unix.Access(dir, unix.W_OK) != nil && ownedByThisUser(dir):
			// This user's own index, made read-only (a copy of the store, chmod -R
			// a-w): pmd writes in its data directory.
			return nil, fmt.Errorf("%w (this user owns %s but may not write in it: give this user write permission in the data directory, chmod -R u+w %s; pmd verify checks a read-only copy)", err, dir, e.dir)
		case errors.Is(err, fs.ErrPermission) && unix.Access(dir, unix.W_OK) != nil:
			// Another user's index, in a directory this user may not change: removing
			// it would fail half-way, and a new one would meet the same permissions.
			return nil, fmt.Errorf("%w (the index is derived from the log: give this user the index with chown -R, or remove %s as a user who may and the next start rebuilds it)", err, dir)
		case errors.Is(err, fs.ErrPermission):
			// Files another user left in this user's index (a store opened once as root,
			// say): it is rebuilt from the log, as this user may remove them.
			e.logger.Warn("pmd: the index holds files this user cannot read, rebuilding it from the log", "dir", dir, "err", err)
		case errors.Is(err, index.ErrOlderFormat):
			e.logger.Info("pmd: upgrading the index to this version's layout: rebuilding it from the log once", "dir", dir, "why", err)
		case damage != nil:
			e.logger.Warn("pmd: the index is damaged and cannot be opened, rebuilding it from the log now", "dir", dir, "damage", damage, "err", err)
		default:
			e.logger.Warn("pmd: the index cannot be opened, rebuilding it from the log", "dir", dir, "err", err)
		}
	default:
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	idx, err := e.openIndexDir(dir)
	if err != nil {
		return nil, err
	}
	// The marker goes once the new index is there: a crash before still rebuilds.
	if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		idx.Close()
		return nil, err
	}
	return idx, nil
}

// ownedByThisUser reports whether this process's user owns the file at path.
func ownedByThisUser(path string) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && int(st.Uid) == os.Geteuid()
}

// openIndexDir opens the index in dir, creating dir first if it is not there: pebble
// would create it as root's when root opens another user's store, and a directory the
// store's user may not change keeps the index's files from being removed for a rebuild
// at its next open (openIndex).
func (e *Engine) openIndexDir(dir string) (*index.Index, error) {
	if err := os.Mkdir(dir, 0o750); err == nil {
		if err := pmdlog.AdoptOwnerPath(dir); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return index.Open(dir, e.indexOptions())
}

// openFound opens the index that Open found in dir. Damage reported while it opens
// (pebble checks blocks as it opens) is returned rather than reported: when the open
// fails, openIndex rebuilds the index at once, and the damage goes with the index it
// removes. When the open succeeds all the same, the damage is reported as any other
// (indexDamaged), for the next start to rebuild.
func (e *Engine) openFound(dir string) (idx *index.Index, damage, err error) {
	e.mu.Lock()
	e.openingIndex = true
	e.mu.Unlock()
	idx, err = e.openIndexDir(dir)
	e.mu.Lock()
	e.openingIndex = false
	damage, e.openDamage = e.openDamage, nil
	e.mu.Unlock()
	if err == nil && damage != nil {
		e.indexDamaged(damage)
	}
	return idx, damage, err
}

func (e *Engine) indexOptions() index.Options {
	return index.Options{CacheSize: e.opts.CacheSize, Logger: e.logger, OnDamage: e.indexDamaged, BeforeFlush: e.syncLog}
}

// syncLog syncs the log before the index writes what it applied to disk, so that the
// index's position on disk, which Open passes to the log as Keep, is never ahead of the
// log on disk: a cluster node writes its log without fsync (pmdlog.Log.WriteNoSync). If
// the sync of a cluster node's log fails (a write failed on a full disk, say, and the
// log has not recovered), the index may go to disk ahead of the log: AheadFile says so
// to the next Open, which then rebuilds the index only if it is, and a later sync that
// succeeds removes it again. The index itself is fine, and the failing writes are the
// problem, which the log reports: a brief full disk must not cost a re-index of the
// whole log (contract section 7). A single node writes every record synced (Write), so
// what its index applied is on disk whatever a later sync does: no AheadFile, and the
// next Open still finds a loss of what the index held.
func (e *Engine) syncLog() {
	l := e.syncing.Load()
	if l == nil || e.opts.NoSync {
		return // Open has not opened the log yet; or nothing is promised
	}
	e.aheadMu.Lock()
	defer e.aheadMu.Unlock()
	path := filepath.Join(e.dir, AheadFile)
	err := l.Sync()
	switch {
	case err == nil && e.aheadNoted:
		// Every record written is on disk now, so the index, which applies only
		// records written, is no longer ahead of the log on disk.
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			e.logger.Warn("pmd: cannot remove "+AheadFile+"; the next start checks the index against the log", "err", rerr)
			return
		}
		e.aheadNoted = false
		if serr := SyncFile(e.dir); serr != nil {
			e.logger.Warn("pmd: cannot sync the data directory after removing "+AheadFile, "err", serr)
		}
		return
	case err == nil || e.aheadNoted:
		return
	}
	if _, serr := os.Stat(filepath.Join(e.dir, RaftDir)); serr != nil {
		e.logger.Error("pmd: the log could not be synced before an index flush", "err", err)
		return
	}
	e.logger.Error("pmd: the log could not be synced before an index flush; the next start checks the index against the log", "err", err)
	// Empty, so that it can be made on a full disk.
	if werr := createSynced(path); werr != nil {
		e.logger.Error("pmd: cannot note that the index may go to disk ahead of the log", "err", werr)
		return
	}
	e.aheadNoted = true
}

// createSynced creates the empty file path, if it does not exist, durably.
func createSynced(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	err = pmdlog.AdoptOwner(f, filepath.Dir(path))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return SyncFile(filepath.Dir(path))
}

// indexDamaged records that a read or the scrub found the index damaged: it is reported
// as a problem, and the next Open rebuilds it from the log. Reads meanwhile fail where
// they meet the damage; the log itself is fine. Damage found while Open opens the index
// is openFound's to report.
func (e *Engine) indexDamaged(err error) {
	e.mu.Lock()
	if e.openingIndex {
		if e.openDamage == nil {
			e.openDamage = err
		}
		e.mu.Unlock()
		return
	}
	first := e.indexBad == nil
	if first {
		e.indexBad = err
	}
	e.mu.Unlock()
	if !first {
		return
	}
	e.logger.Error("pmd: the index is damaged; it is rebuilt from the log at the next start", "err", err)
	// Written and synced, file and directory, whatever NoSync says, as the marker of lost
	// records is: a marker lost in a power cut would let the next start trust the
	// damaged index.
	replace := ReplaceFile
	if e.opts.replaceFile != nil {
		replace = e.opts.replaceFile
	}
	if werr := replace(filepath.Join(e.dir, RebuildFile), []byte(err.Error()+"\n"), true); werr != nil {
		e.logger.Error("pmd: cannot mark the index for a rebuild", "err", werr)
	}
}

// rebuildIndex replaces the open index by an empty one in dir.
func (e *Engine) rebuildIndex(dir string) error {
	if err := e.Index.Close(); err != nil {
		return err
	}
	e.Index = nil
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	idx, err := e.openIndexDir(dir)
	if err != nil {
		return err
	}
	e.Index = idx
	return nil
}

// replayOrRebuild replays the log into the index in dir (replay), and rebuilds the index
// from the whole log when the replay finds it disagreeing with the log on a stream's
// version: a rebuild skips a damaged record and lets the later events of its stream keep
// the versions they carry, but a rebuild killed once the index had handed part of it to
// disk leaves the index past the damaged record, and the replay from there no longer
// sees the damage that explains the missing versions. Open failed at every start. A
// replay from position 1 that disagrees is returned: the log disagrees with itself.
func (e *Engine) replayOrRebuild(dir string) error {
	from := e.Index.Position() + 1
	err := e.replay()
	var gap *VersionGapError
	if from == 1 || !errors.As(err, &gap) {
		return err
	}
	e.logger.Warn("pmd: the index disagrees with the log, rebuilding it from the log", "dir", dir, "err", err)
	if err := e.rebuildIndex(dir); err != nil {
		return err
	}
	return e.replay()
}

// replay applies the log records after the index's position to it, logging progress
// when there are many, and flushes the index when it applied any, so that the next
// start does not replay them again whatever happens.
func (e *Engine) replay() error {
	from, last := e.Index.Position()+1, e.Log.LastPosition()
	skipped := filepath.Join(e.dir, SkippedFile)
	if from > last {
		// A replay that skipped records stopped after its last flush.
		return e.replayDone(skipped)
	}
	total := last - from + 1
	e.replayed = total
	const quiet = 100_000
	if total > quiet {
		e.logger.Info("pmd: indexing log", "from", from, "records", total)
	}
	start := time.Now()
	next := start.Add(2 * time.Second)
	b := NewBatch(e.Index, e.Log)
	ix := indexer{b: b, firstSkip: func() error {
		// Synced before the index can put anything after the skipped record on disk.
		return ReplaceFile(skipped, skippedMarker(last), true)
	}, jumped: e.versionsJumped}
	if from == 1 || e.staleSkipped(skipped, from-1) {
		// A marker left beside no index on disk (pmd repair or a person removed the
		// index, or this start rebuilds it) speaks of none: this replay sees every
		// record it would let versions jump after. Nor does a stale one speak of the
		// index on disk (staleSkipped).
		if err := removeSkipped(skipped); err != nil {
			return err
		}
	} else if _, err := os.Stat(skipped); err == nil {
		// The replay before this one skipped records below from and did not finish.
		ix.skipped = 1
	}
	var done uint64
	err := scanAround(context.Background(), e.Log, from, last, func(r *pmdlog.Record) error {
		if err := ix.apply(r); err != nil {
			return err
		}
		if e.opts.stopReplay != nil && e.opts.stopReplay(r.Position) {
			if err := e.Index.Apply(b); err != nil {
				return err
			}
			if err := e.Index.Flush(); err != nil {
				return err
			}
			return errReplayStopped
		}
		if done++; b.Len() >= 64<<10 {
			if err := e.Index.Apply(b); err != nil {
				return err
			}
		}
		if total > quiet && done%4096 == 0 && time.Now().After(next) {
			next = time.Now().Add(2 * time.Second)
			e.logger.Info("pmd: indexing log", "done", done, "of", total,
				"percent", fmt.Sprintf("%.0f", float64(done)*100/float64(total)))
		}
		return nil
	}, func(ce *pmdlog.CorruptError, pos uint64) error {
		// A damaged record: Open or the scrub reports it; the index skips it, so
		// everything after it stays readable.
		e.NoteDamage(ce)
		return ix.damaged(pos)
	})
	if err != nil {
		return err
	}
	if err := e.Index.Apply(b); err != nil {
		return err
	}
	if total > quiet {
		e.logger.Info("pmd: indexed log", "records", total, "took", time.Since(start).Round(time.Millisecond))
	}
	if err := e.flush(); err != nil {
		return err
	}
	return e.replayDone(skipped)
}

// skippedPrefix begins the SkippedFile a replay writes: "a replay to position <last>
// skipped records\n", last being the log's last position when the replay began.
const skippedPrefix = "a replay to position "

// skippedMarker returns the SkippedFile's bytes for a replay to the position last.
func skippedMarker(last uint64) []byte {
	return fmt.Appendf(nil, "%s%d skipped records\n", skippedPrefix, last)
}

// staleSkipped reports whether the SkippedFile at path, beside an index on disk at the
// position held, is stale: left by an Open of this version, killed or refused before it
// raised the directory's format, that a release of that format which ignores the file
// outlived, indexing the log since (see Format). Letting versions jump on its word would
// hide a disagreement between the index and the log that a rebuild mends. It is stale
// when the format is still to be raised, on a single node, and the index on disk holds
// the position the replay that wrote it was to run to: that replay put all it skipped on
// disk and would have removed the file (replayDone), so what the index holds past it
// some other release indexed. A marker that names no position (written by a release of
// format 3, or by this version before it wrote one) is not: that release's replay may
// not have finished. A cluster node keeps its marker past its replay (replayDone), so
// its marker is never stale here either.
func (e *Engine) staleSkipped(path string, held uint64) bool {
	if e.found >= Format {
		return false
	}
	if _, err := os.Stat(filepath.Join(e.dir, RaftDir)); err == nil {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// Missing, or unreadable: heeded as it was before it said a position (its
		// Stat in replay decides), which at worst lets a disagreement through.
		return false
	}
	rest, ok := strings.CutPrefix(string(b), skippedPrefix)
	if !ok {
		return false
	}
	num, _, _ := strings.Cut(rest, " ")
	to, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return false
	}
	if held >= to {
		e.logger.Warn("pmd: ignoring a stale "+SkippedFile+": the index holds the position its replay was to run to, and a release that ignores the file has indexed since",
			"index", held, "replay", to)
		return true
	}
	return false
}

// versionsJumped logs a stream's versions jumping over a skipped record (a damaged one,
// one a scavenge removed): a WARN, for the versions in between are gone, and where
// SkippedFile is kept (a cluster node) a jump is let through in any stream, so that one
// that is not a skipped record's would otherwise go unseen.
func (e *Engine) versionsJumped(gap *VersionGapError) {
	e.jumpsMu.Lock()
	held, ok := e.jumps.Log(time.Now())
	e.jumpsMu.Unlock()
	if ok {
		e.logger.Warn("pmd: a stream's versions jump after a skipped record (damaged, or removed by a scavenge): the versions in between are gone",
			"stream", gap.Stream, "from", gap.Derived, "to", gap.Record, "position", gap.Position,
			"suppressed", held, "note", "more jumps are counted, not logged, for a minute")
	}
}

// replayDone removes the SkippedFile at path once a replay has put the whole log in the
// index on disk (removeSkipped), but a cluster node's stays: its log grows by records
// copied from another replica too (Indexer), and the later events of a skipped record's
// stream may come in a copy after a restart.
func (e *Engine) replayDone(path string) error {
	if _, err := os.Stat(filepath.Join(e.dir, RaftDir)); err == nil {
		return nil
	}
	return removeSkipped(path)
}

// removeSkipped removes the SkippedFile at path once the index on disk holds the whole
// log: the versions the skipped records held are missing for good then, as a replay
// from the start leaves them, and later replays must find any other gap. So does a
// replay from position 1, which has no index on disk the file could speak of. The
// removal is synced: a file back after a power cut would loosen a later replay.
func removeSkipped(path string) error {
	err := os.Remove(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	}
	return SyncFile(filepath.Dir(path))
}

var (
	errStop          = errors.New("stop")
	errReplayStopped = errors.New("replay stopped (test)")
)

// scanAround calls each for every record of l from position from to last, in order, and
// damaged for every position whose record cannot be read, with the damage that explains
// it, going on past it: one damaged record never hides the rest of the log. A sealed
// segment that cannot be framed past a damaged record (its offset table is lost, as kill
// -9 can leave it, and a length prefix is damaged), or that holds fewer records than the
// next segment's name says (cut short, or a segment after it missing), hides the run of
// positions its error names (CorruptError.End): each gets that error, as a Read of it
// would, and the scan goes on past the run. It stops at the first error of a callback.
func scanAround(ctx context.Context, l *pmdlog.Log, from, last uint64, each func(*pmdlog.Record) error, damaged func(ce *pmdlog.CorruptError, pos uint64) error) error {
	for from <= last {
		err := l.Scan(ctx, from, func(r pmdlog.Record) error {
			if r.Position > last {
				return errStop
			}
			if err := each(&r); err != nil {
				return err
			}
			from = r.Position + 1
			return nil
		})
		var ce *pmdlog.CorruptError
		switch {
		case err == nil || errors.Is(err, errStop):
			return nil
		case !errors.As(err, &ce):
			return err
		case ce.End > from:
			// A damaged sealed segment hides the run from ce.Position (at or before
			// from, when the scan started inside it) to ce.End-1.
			for ; from < ce.End && from <= last; from++ {
				if err := damaged(ce, from); err != nil {
					return err
				}
			}
		case ce.Position == from:
			if err := damaged(ce, from); err != nil {
				return err
			}
			from++
		default:
			return err
		}
	}
	return nil
}

// Apply makes the batch b, whose records are durable in the log, visible in the index,
// and has the index flushed once FlushEvery records are applied that it does not hold
// on disk. A failure leaves the index behind the log: its caller must stop writing (and
// say so), and the next Open replays what is missing.
//
// The records counted are those above the index's durable point, not those since the
// last flush: the index hands a full overlay to disk by itself, which makes what it
// covered durable, and a flush counted from the one before came right after such a
// hand-off and wrote a table of a few thousand records. Each table the index hands to
// pebble lands in its level 0 and overlaps all of it, so pebble compacts level 0 into the
// level below after every second table, rewriting that level whole: the small tables
// doubled those compactions (bench/README.md, "Session 22").
func (e *Engine) Apply(b *index.Batch) error {
	if err := e.Index.Apply(b); err != nil {
		return err
	}
	if pos := e.Index.Position(); pos-max(e.Index.Durable(), e.kicked) >= uint64(e.opts.FlushEvery) {
		// One kick per FlushEvery records: a flush under way raises Durable only
		// when it is done, and the kicks meanwhile would queue another.
		e.kicked = pos
		select {
		case e.flushKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// flushLoop flushes the index when Apply asks, and FlushInterval after the durable point
// last moved; a log whose writes failed it syncs every FlushInterval, which clears the
// failure once the disk takes writes again (flush).
//
// What counts is the time since the index's durable point last moved, which it looks at
// every quarter FlushInterval: a busy index hands its full overlays to disk by itself,
// and a flush every FlushInterval whatever they did wrote a table of part of an overlay
// each time, one more table in pebble's level 0 to compact (see Apply).
func (e *Engine) flushLoop() {
	defer e.done.Done()
	tick := time.NewTicker(max(e.opts.FlushInterval/4, time.Millisecond))
	defer tick.Stop()
	// seen is the durable point when the loop last looked, since when it was first seen
	// there (or the start of the loop's last flush).
	seen, since := e.Index.Durable(), time.Now()
	// A full disk fails every flush, one each FlushInterval, for as long as it lasts:
	// the first is logged, the next ones of the minute counted. The first flush that
	// lands after them says so, with what was not logged, and a later run of failures
	// starts afresh.
	var failLog logevery.Line
	failing := false
	for {
		select {
		case <-e.flushKick:
		case now := <-tick.C:
			if d := e.Index.Durable(); d != seen {
				seen, since = d, now
			}
			if now.Sub(since) < e.opts.FlushInterval {
				continue
			}
		case <-e.stop:
			return
		}
		start := time.Now()
		err := e.flush()
		seen, since = e.Index.Durable(), start
		if err != nil {
			failing = true
			if suppressed, ok := failLog.Log(time.Now()); ok {
				e.logger.Error("pmd: index flush failed; the next start replays more of the log", "err", err, "suppressed", suppressed)
			}
		} else if failing {
			failing = false
			e.logger.Info("pmd: index flush resumed", "suppressed", failLog.Flush())
		}
		if e.opts.afterFlush != nil {
			e.opts.afterFlush()
		}
	}
}

// flush makes the index durable up to its position. The log is synced first, so the
// index never holds on disk a record the log could still lose.
func (e *Engine) flush() error {
	if e.Index.Position() == e.Index.Durable() {
		if e.Log.Err() != nil {
			// Writes failed, and none may come (a load balancer takes a degraded node
			// out): a Sync recovers the log and tells from a probe write whether the
			// disk takes writes again. Its error is the one Err reports already.
			_ = e.Log.Sync()
		}
		return nil
	}
	if err := e.Log.Sync(); err != nil {
		return fmt.Errorf("index flush: %w", err)
	}
	return e.Index.Flush()
}

// stopContext returns a context that is cancelled when the engine stops, for its
// background work.
func (e *Engine) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// warm loads the index into its cache in the background.
func (e *Engine) warm() {
	defer e.done.Done()
	ctx, cancel := e.stopContext()
	defer cancel()
	if err := e.Index.Warm(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, index.ErrDamaged) {
		// Damage was reported as it was found; anything else only costs speed.
		e.logger.Warn("pmd: loading the index into its cache failed", "err", err)
	}
}

// defaultScrubRate paces the background scrub: a 4 GiB log in about two minutes.
const defaultScrubRate = 32 << 20

// scrub reads every log record in the background and records the damaged ones.
func (e *Engine) scrub() {
	defer e.done.Done()
	defer close(e.scrubDone)
	ctx, cancel := e.stopContext()
	defer cancel()
	start := time.Now()
	pace := e.pacer(ctx, start)
	bad, err := e.Log.Scrub(ctx, func(done, total int64) {
		if done < total { // no wait after the last bytes
			pace(done)
		}
	})
	// The damage found is reported whatever the error: a segment the scrub could not
	// read (an I/O error) hides no damage found in the others.
	for _, ce := range bad {
		e.NoteDamage(ce)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		e.logger.Error("pmd: scrub of the log could not read every segment", "damaged", len(bad), "err", err)
	} else {
		e.logger.Info("pmd: scrubbed the log", "damaged", len(bad), "took", time.Since(start).Round(time.Millisecond))
	}
	start = time.Now()
	if err := e.Index.Check(ctx, e.pacer(ctx, start)); err != nil {
		switch {
		case ctx.Err() != nil:
			return
		case !errors.Is(err, index.ErrDamaged): // damage was reported as it was found
			e.logger.Error("pmd: check of the index failed", "err", err)
		}
	}
	e.logger.Info("pmd: checked the index", "took", time.Since(start).Round(time.Millisecond))
}

// pacer returns a function that waits until reading done bytes since start has taken
// as long as Options.ScrubBytesPerSecond allows, or until ctx is done. The scrub reads
// the whole log and then the whole index: unpaced, it takes a core and the disk's
// bandwidth from the writers for as long (at 30M events, 85 s of log in which 16
// writers made half their rate). Paced, it takes longer and they barely notice.
func (e *Engine) pacer(ctx context.Context, start time.Time) func(done int64) {
	rate := e.opts.ScrubBytesPerSecond
	if rate == 0 {
		rate = defaultScrubRate
	}
	return func(done int64) {
		if rate < 0 {
			return
		}
		ahead := time.Duration(float64(done)/float64(rate)*float64(time.Second)) - time.Since(start)
		if ahead <= 0 {
			return
		}
		t := time.NewTimer(ahead)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// Scrubbed returns a channel closed once the background scrub of the log and the index
// has finished or given up (never, with Options.NoScrub).
func (e *Engine) Scrubbed() <-chan struct{} { return e.scrubDone }

// NoteDamage records a damaged record once, and logs it: Open and the scrub call it, and
// the store for damage its reads meet.
func (e *Engine) NoteDamage(ce *pmdlog.CorruptError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.damage {
		// The log names every damage it finds by position (a hidden run by its
		// first); Position 0 is only a loss Open reports itself (records the index
		// held past the log's end), told apart by Segment and Offset.
		if d.Position == ce.Position && (ce.Position != 0 || d.Segment == ce.Segment && d.Offset == ce.Offset) {
			return
		}
	}
	e.damage = append(e.damage, ce)
	e.logger.Error("pmd: damaged log record", "segment", ce.Segment, "offset", ce.Offset, "position", ce.Position, "reason", ce.Reason)
}

// Damage lists the damaged log records found so far.
func (e *Engine) Damage() []*pmdlog.CorruptError {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*pmdlog.CorruptError(nil), e.damage...)
}

// Problems describes what is wrong with the data directory, for a health check: damaged
// records, a failed write the log has not yet recovered from, a damaged index. None means
// healthy.
func (e *Engine) Problems() []string {
	var out []string
	for _, d := range e.Damage() {
		out = append(out, d.Error())
	}
	if err := e.Log.Err(); err != nil {
		out = append(out, "writes failing: "+err.Error())
	}
	e.mu.Lock()
	if e.indexBad != nil {
		out = append(out, "index damaged, rebuilt from the log at the next start: "+e.indexBad.Error())
	}
	e.mu.Unlock()
	return out
}

// Replayed is the number of log records Open replayed into the index: those written
// after the index's durable point.
func (e *Engine) Replayed() uint64 { return e.replayed }

// Close flushes the index (so the next Open replays nothing), closes the index and the
// log and unlocks the directory.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	close(e.stop)
	e.done.Wait()
	err := e.flush()
	if cerr := e.Index.Close(); err == nil {
		err = cerr
	}
	if cerr := e.Log.Close(); err == nil {
		err = cerr
	}
	if cerr := e.lock.Unlock(); err == nil {
		err = cerr
	}
	return err
}

// indexer feeds log records to an index batch the way every rebuild of the index from the
// log does (Open's replay, Verify): a damaged record is skipped, and so is the void record
// a repair put in its place, and the later records of its stream keep the versions they
// carry, leaving the skipped one's version empty.
type indexer struct {
	b       *index.Batch
	skipped int // damaged and void records so far: versions may jump after them
	// firstSkip, if set, is called at the first skipped record, before anything after
	// it is added.
	firstSkip func() error
	// jumped, if set, is told of each version jump let through after a skipped record:
	// once SkippedFile is kept (a cluster node), jumps are let through in any stream,
	// so each is said.
	jumped func(gap *VersionGapError)
}

// skip counts a skipped record.
func (ix *indexer) skip() error {
	ix.skipped++
	if ix.skipped == 1 && ix.firstSkip != nil {
		return ix.firstSkip()
	}
	return nil
}

// damaged skips the damaged record at pos.
func (ix *indexer) damaged(pos uint64) error {
	if err := ix.skip(); err != nil {
		return err
	}
	return ix.b.Advance(pos)
}

// apply adds r, which was read whole.
func (ix *indexer) apply(r *pmdlog.Record) error {
	if r.Kind == pmdlog.KindVoid || r.Kind == pmdlog.KindGone {
		// The versions of its stream it held are gone with it.
		if err := ix.skip(); err != nil {
			return err
		}
	}
	err := ApplyRecord(ix.b, r, CausationOf(r.Event.Metadata))
	var gap *VersionGapError
	if errors.As(err, &gap) && ix.skipped > 0 && gap.Record > gap.Derived {
		// A skipped record of the stream held the versions in between.
		if err := ix.b.SkipVersions(gap.Stream, gap.Record); err != nil {
			return err
		}
		if ix.jumped != nil {
			ix.jumped(gap)
		}
		err = ApplyRecord(ix.b, r, CausationOf(r.Event.Metadata))
	}
	return err
}

// ApplyRecord adds the durable log record r to the batch b, checking first that the
// version the record carries is the one the index derives: a mismatch means the log and
// the index disagree, and fails with a *VersionGapError, adding nothing. cause is the
// causation id of an event record (uuid.Nil for none); when it names an event stored
// before r, that event becomes r's causation parent. The parent is looked up before the
// event is added, so an event never causes itself, and the write path and a replay find
// the same parent.
func ApplyRecord(b *index.Batch, r *pmdlog.Record, cause uuid.UUID) error {
	var stream string
	var want uint64
	switch r.Kind {
	case pmdlog.KindEvent:
		stream, want = r.Event.Stream, r.Event.Version
	case pmdlog.KindLink:
		stream, want = r.Link.Stream, r.Link.Version
	case pmdlog.KindDelete:
		// The deletion names the stream's next version: a scavenge may have removed
		// the events that held the versions before it.
		if err := b.SkipVersions(r.Delete.Stream, r.Delete.Before); err != nil {
			return err
		}
		return b.DeleteStream(r.Position, r.Delete.Stream)
	case pmdlog.KindRetention:
		x := &r.Retention
		return b.SetRetention(r.Position, x.Stream,
			index.Retention{MaxAge: x.MaxAge, MaxCount: x.MaxCount, TruncateBefore: x.TruncateBefore}, x.ExpiredBefore)
	case pmdlog.KindErase:
		return b.Erase(r.Position, r.Erase.Stream, r.Erase.Before)
	case pmdlog.KindGone:
		if r.Gone.ID != uuid.Nil {
			// The scavenged event's id stays taken, as in the index that saw it die.
			return b.AddGone(r.Position, r.Gone.ID)
		}
		return b.Advance(r.Position) // a link's, or written before gone records kept ids
	default:
		return b.Advance(r.Position)
	}
	st, err := b.Stream(stream)
	if err != nil {
		return err
	}
	if st.Next != want {
		return &VersionGapError{Position: r.Position, Stream: stream, Record: want, Derived: st.Next}
	}
	if r.Kind == pmdlog.KindLink {
		_, err := b.AddLink(r.Position, r.Link.Stream, r.Link.Event)
		return err
	}
	var parent uint64
	var found bool
	if cause != uuid.Nil {
		if parent, found, err = b.Lookup(cause); err != nil {
			return err
		}
	}
	if _, err := b.AddEvent(r.Position, r.Event.ID, r.Event.Stream, r.Event.Type); err != nil {
		return err
	}
	if found {
		return b.AddCausation(r.Position, parent)
	}
	return nil
}

// NewBatch returns a batch of x whose Origin reads the log l: the index asks it for the
// stream of an event that left a stream it was linked into. The record there may since
// have been replaced: by a scavenge's gone record once no stream showed the event (a
// replay after a crash applies the deletion that killed it again), or by a repair's void
// record; or it may be damaged. None of these may stop the batch: a store that cannot
// apply a deletion it already acknowledged would never open again.
func NewBatch(x *index.Index, l *pmdlog.Log) *index.Batch {
	b := x.NewBatch()
	b.Origin = func(pos uint64) (string, uint64, error) {
		r, err := l.Read(pos)
		var ce *pmdlog.CorruptError
		switch {
		case errors.As(err, &ce):
			// Reported by the read of it, the replay or the scrub.
			return "", 0, fmt.Errorf("%w: %w", index.ErrOriginUnknown, err)
		case err != nil:
			return "", 0, err
		case r.Kind == pmdlog.KindGone || r.Kind == pmdlog.KindVoid:
			return "", 0, fmt.Errorf("%w: a link points at position %d, a %s record", index.ErrOriginGone, pos, r.Kind)
		case r.Kind != pmdlog.KindEvent:
			return "", 0, fmt.Errorf("%w: a link points at position %d, a %s record", pmdlog.ErrCorrupt, pos, r.Kind)
		}
		return r.Event.Stream, r.Event.Version, nil
	}
	return b
}

// VersionGapError reports a record whose version is not the one the index derives: the
// log and the index disagree, unless a damaged record of the stream was skipped before.
// It matches log.ErrCorrupt.
type VersionGapError struct {
	Position        uint64
	Stream          string
	Record, Derived uint64 // the version the record carries, the one the index derives
}

func (e *VersionGapError) Error() string {
	return fmt.Sprintf("pmd: record at position %d puts stream %q at version %d, the index derives %d", e.Position, e.Stream, e.Record, e.Derived)
}

// Is makes errors.Is(err, log.ErrCorrupt) hold.
func (e *VersionGapError) Is(target error) bool { return target == pmdlog.ErrCorrupt }

// causationKey is the metadata key of the causation id, as it shows in msgpack bytes.
var causationKey = []byte("causation_id")

// CausationOf returns the id that the msgpack metadata meta names as causation_id: a
// string holding a UUID. It returns uuid.Nil if there is none. It decodes only metadata
// that holds the key's bytes, so events without a cause cost a byte search.
//
// Metadata the plain decode refuses (a map with keys that are not strings, which earlier
// versions wrote and DecodeMap now reads) names no cause here, as it named none for every
// index built before: an index built now must agree with those (pmd verify compares a
// rebuilt index with the live one, and cluster nodes of both versions index the same
// records).
func CausationOf(meta []byte) uuid.UUID {
	if !bytes.Contains(meta, causationKey) {
		return uuid.Nil
	}
	var m map[string]any
	if err := msgpack.Unmarshal(meta, &m); err != nil {
		return uuid.Nil
	}
	str, _ := m[string(causationKey)].(string)
	id, err := uuid.Parse(str)
	if err != nil {
		return uuid.Nil
	}
	return id
}
