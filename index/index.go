package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/dedup"
	"github.com/pmd-dev/pmd/internal/logevery"
)

// MaxPosition is the largest log position the index takes: a version entry keeps a
// position and a link bit in one varint.
const MaxPosition = 1<<62 - 1

// DefaultCacheSize is the block cache of an index whose Options leave CacheSize at 0.
const DefaultCacheSize = 64 << 20

// Options configures an Index. The zero value is a usable configuration.
type Options struct {
	// CacheSize bounds, in bytes, the cache of index blocks kept in memory; 0 means
	// DefaultCacheSize. Memtables (MemTableSize, at most four) come on top.
	CacheSize int64
	// MemTableSize is the size of the in-memory table that takes writes before they are
	// flushed to disk; 0 means 16 MiB.
	MemTableSize int64
	// Logger receives the storage engine's own messages; nil means slog.Default().
	Logger *slog.Logger
	// OnDamage, if set, is called with every error of a read or check that found the
	// index damaged (a block failing its checksum, an entry breaking the layout), so
	// that its owner can rebuild it. Such errors also match ErrDamaged.
	OnDamage func(error)
	// ReadOnly opens an existing index for reading only (pmd verify). Its caller keeps
	// writers out: pebble's LOCK is taken only where this user may open it for writing.
	ReadOnly bool
	// BeforeFlush, if set, is called before entries applied in memory go to disk: before
	// every hand-off of an overlay to pebble, Flush's and the background ones (when an
	// overlay fills). Its owner syncs the log there, so that the position the index holds
	// on disk is never ahead of what the log holds on disk, even when the log's writes are
	// not synced. It runs during a hand-off: it must not call the index.
	BeforeFlush func()

	// holdCompactions, set by tests, opens the index with compactions held back until
	// its gate's start.
	holdCompactions bool
}

// Index maps streams, event ids, categories, event types and event relations to log
// positions, kept on disk in a github.com/cockroachdb/pebble LSM under a bounded block
// cache. It is safe for concurrent use: readers run at any time; the writer (one at a
// time) applies batches with Apply.
type Index struct {
	dir string
	db  *pebble.DB

	pos     atomic.Uint64 // last position applied
	durable atomic.Uint64 // a position known to be on disk: Flush moves it

	onDamage  func(error)
	readOnly  bool
	cacheSize int64 // the block cache's bound (Options.CacheSize)
	gate      *compactionGate

	flushMu sync.Mutex // one Flush at a time

	// erased says which streams have an E entry: every event read asks (see eraseMarks).
	erased eraseMarks
	// erasures counts the batches applied with an erase record (Erasures).
	erasures atomic.Uint64

	cnt counter // see Counts

	openL0   *levelZeroAtOpen // level 0's tables at the open, which Warm waits for
	warmHook func(round int)  // set by tests: called after each read of Warm

	ov ovState // the newest entries (overlay.go)

	// life is held shared by every call that uses db and exclusively by Close, so that
	// no call meets a closed db (pebble panics then): they get ErrClosed.
	life   sync.RWMutex
	closed bool
}

// enter starts a call that uses db; exit ends it.
func (x *Index) enter() error {
	x.life.RLock()
	if x.closed {
		x.life.RUnlock()
		return ErrClosed
	}
	return nil
}

func (x *Index) exit() { x.life.RUnlock() }

// ErrClosed is returned by every call on a closed index.
var ErrClosed = errors.New("index: closed")

// ErrDamaged is matched by the errors of reads and checks that found the index damaged.
// The index is derived from the log: its owner rebuilds it.
var ErrDamaged = errors.New("index: damaged")

// damaged wraps an error that says the index is damaged so that it matches ErrDamaged.
type damaged struct{ err error }

func (d damaged) Error() string        { return d.err.Error() }
func (d damaged) Unwrap() error        { return d.err }
func (d damaged) Is(target error) bool { return target == ErrDamaged }

// errorf makes the error of a read, marking and reporting damage.
func (x *Index) errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if !pebble.IsCorruptionError(err) && !errors.Is(err, ErrFormat) {
		return err
	}
	err = damaged{err}
	if x.onDamage != nil {
		x.onDamage(err)
	}
	return err
}

// Check reads every entry of every table of the index, which verifies the checksum of
// every block it loads: a background scrub. Damage fails it with an error matching
// ErrDamaged. pace, if not nil, is called with the bytes of entries read so far after
// every checkStep of them, and may wait: the check of a large index then takes little
// from the store's readers and writers. Check stops when ctx is done, with ctx's error.
func (x *Index) Check(ctx context.Context, pace func(read int64)) error {
	_, err := x.check(ctx, pace, checkRound)
	return err
}

// Warm reads the whole index once, so that as much of it as the cache holds is in
// memory, unless ctx ends first. An index read this way answers its first lookups as
// fast as later ones: without it, the first thousands after an open each miss the
// cache, on a VM at tens of microseconds a miss.
//
// An index opened with a compaction of level 0 due (one closed with level 0 full)
// compacts right after the open, and the tables a compaction writes start out of the
// cache while those it replaces leave it: Warm then waits until compactions have taken
// every table level 0 held at the open, and for a few that follow them (warmFollowers),
// and reads the index a second time. It never reads it more than twice: the compactions
// that later writes cause do not make it read again.
func (x *Index) Warm(ctx context.Context) error {
	settled := x.openL0.settled()
	if err := x.warmRound(ctx, 1); err != nil || settled {
		return err
	}
	if err := x.waitOpenCompactions(ctx); err != nil {
		return err
	}
	return x.warmRound(ctx, 2)
}

// warmRound reads the whole index once, as Warm's round-th read.
func (x *Index) warmRound(ctx context.Context, round int) error {
	if err := x.warmRead(ctx); err != nil {
		return err
	}
	if x.warmHook != nil {
		x.warmHook(round)
	}
	return nil
}

// warmFollowers bounds the compactions Warm waits for once level 0's tables at the open
// are taken: one of level 0 often leads to some of the levels below it, but under writes
// a compaction nearly always runs or waits.
const warmFollowers = 4

// warmRecheck is how often a wait of Warm looks again whether any compaction runs or
// waits: the DB says nothing when a compaction stops being due.
const warmRecheck = 100 * time.Millisecond

// waitOpenCompactions waits until compactions have taken level 0's tables at the open,
// then for those that follow (up to warmFollowers of them ending). It ends as well once no
// compaction runs or waits: pebble compacts level 0 only while it is due, and may leave
// some of the open's tables behind in a level 0 no longer due, for later writes to
// compact.
func (x *Index) waitOpenCompactions(ctx context.Context) error {
	tick := time.NewTicker(warmRecheck)
	defer tick.Stop()
	for taken := false; !taken; {
		ended, busy := x.gate.activity()
		if !busy {
			return nil
		}
		select {
		case <-x.openL0.done:
			taken = true
		case <-ended:
		case <-tick.C:
		case <-x.gate.stop:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for followed := 0; followed < warmFollowers; {
		ended, busy := x.gate.activity()
		if !busy {
			return nil
		}
		select {
		case <-ended:
			followed++
		case <-tick.C:
		case <-x.gate.stop:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// warmRead reads the whole index once.
func (x *Index) warmRead(ctx context.Context) error {
	if err := x.enter(); err != nil {
		return err
	}
	defer x.exit()
	it, err := x.db.NewIter(nil)
	if err != nil {
		return x.errorf("index: warm: %w", err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if _, err := it.ValueAndErr(); err != nil {
			it.Close()
			return x.errorf("index: warm: %w", err)
		}
		if n++; n%4096 == 0 && ctx.Err() != nil {
			it.Close()
			return ctx.Err()
		}
	}
	if err := it.Close(); err != nil {
		return x.errorf("index: warm: %w", err)
	}
	return nil
}

// levelZeroAtOpen follows the tables level 0 held at the open when a compaction of level 0
// was due then: done is closed once compactions have taken them all (at once if none was
// due).
type levelZeroAtOpen struct {
	mu     sync.Mutex
	tables map[uint64]bool // file numbers of the tables not compacted yet
	done   chan struct{}
}

func newLevelZeroAtOpen() *levelZeroAtOpen {
	return &levelZeroAtOpen{done: make(chan struct{})}
}

// follow starts following tables, the file numbers of level 0's tables at the open, which
// a compaction of level 0 is due to take; nil or empty means none was due. It is called
// before any compaction may run.
func (l *levelZeroAtOpen) follow(tables []uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(tables) == 0 {
		close(l.done)
		return
	}
	l.tables = make(map[uint64]bool, len(tables))
	for _, t := range tables {
		l.tables[t] = true
	}
}

// compacted is pebble's CompactionEnd: the level-0 tables it took are no longer followed.
func (l *levelZeroAtOpen) compacted(info pebble.CompactionInfo) {
	if info.Err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tables == nil {
		return
	}
	for _, in := range info.Input {
		if in.Level != 0 {
			continue
		}
		for _, t := range in.Tables {
			delete(l.tables, uint64(t.FileNum))
		}
	}
	if len(l.tables) == 0 {
		l.tables = nil
		close(l.done)
	}
}

// settled says whether done is closed.
func (l *levelZeroAtOpen) settled() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// dueLevelZero returns the file numbers of level 0's tables if a compaction of level 0 is
// due, nil if none is.
func dueLevelZero(db *pebble.DB) ([]uint64, error) {
	if m := db.Metrics(); m.Levels[0].TablesCount == 0 || m.Levels[0].Score < 1 {
		return nil, nil
	}
	levels, err := db.SSTables()
	if err != nil {
		return nil, err
	}
	var tables []uint64
	for _, t := range levels[0] {
		tables = append(tables, uint64(t.FileNum))
	}
	return tables, nil
}

// check is Check with a fresh iterator every round bytes; it returns the bytes read.
func (x *Index) check(ctx context.Context, pace func(read int64), round int64) (int64, error) {
	if err := x.enter(); err != nil {
		return 0, err
	}
	defer x.exit()
	var read, paced int64
	var from []byte
	for {
		// A fresh iterator every checkRound bytes: one iterator pins the tables it
		// started with, and a check of a large index takes minutes while compactions
		// replace them.
		next, n, err := x.checkRound(from, round, func(read int64) error {
			if read-paced < checkStep {
				return nil
			}
			paced = read
			if pace != nil {
				pace(read)
			}
			return ctx.Err()
		}, read)
		read += n
		if err != nil {
			return read, x.errorf("index: check: %w", err)
		}
		if next == nil {
			return read, nil
		}
		from = next
	}
}

const (
	checkStep  = 1 << 20  // bytes of entries between two calls of Check's pace
	checkRound = 64 << 20 // bytes of entries read with one iterator
)

// checkRound reads the entries from the key from on (the first if nil) for up to
// round bytes, calling step with the running total (base plus what it read), which
// stops it with an error. It returns the key to go on from, nil at the end, and the
// bytes it read.
func (x *Index) checkRound(from []byte, round int64, step func(int64) error, base int64) (next []byte, read int64, err error) {
	it, err := x.db.NewIter(nil)
	if err != nil {
		return nil, 0, err
	}
	ok := it.First()
	if from != nil {
		ok = it.SeekGE(from)
	}
	for ; ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, read, err
		}
		read += int64(len(it.Key()) + len(v))
		if err := step(base + read); err != nil {
			it.Close()
			return nil, read, err
		}
		if read >= round {
			next = append([]byte(nil), it.Key()...)
			next = append(next, 0) // the key right after it
			break
		}
	}
	if err := it.Close(); err != nil {
		return nil, read, err
	}
	return next, read, nil
}

// Open opens (or creates) the index in dir. An index written in another format version
// fails with ErrFormat: it cannot be read and is to be rebuilt from the log.
func Open(dir string, opts Options) (*Index, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.MemTableSize <= 0 {
		opts.MemTableSize = 16 << 20
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if !opts.ReadOnly {
		if err := tightenExisting(dir, logger); err != nil {
			return nil, fmt.Errorf("index: open %s: %w", dir, err)
		}
	}
	cache := pebble.NewCache(opts.CacheSize)
	x := &Index{dir: dir, onDamage: opts.OnDamage, readOnly: opts.ReadOnly, cacheSize: opts.CacheSize, openL0: newLevelZeroAtOpen()}
	x.cnt.stop = make(chan struct{})
	bg := &bgErrors{logger: logger, now: time.Now}
	po := &pebble.Options{
		// Pebble's default stops the process on a damaged table; the index is derived
		// data, so damage is reported and the owner rebuilds it from the log.
		EventListener: &pebble.EventListener{BackgroundError: bg.report, DataCorruption: func(info pebble.DataCorruptionInfo) {
			x.errorf("index: damaged table %s: %w", info.Path, errors.Join(pebble.ErrCorruption, info.Details))
		}, CompactionEnd: x.openL0.compacted},
		Cache: cache,
		FS:    indexFS(opts.ReadOnly, logger),
		// The log is the source of truth: the index records the last position it holds,
		// and its owner replays the log after it. Pebble's own WAL would write every
		// entry a second time for nothing.
		DisableWAL:   true,
		MemTableSize: uint64(opts.MemTableSize),
		// Writers must never wait for the index's housekeeping (contract section 7):
		// pebble stops writes when memtables queue up for a flush or level 0 piles up
		// tables; let them queue further (the memory is bounded: four memtables) and let
		// level 0 grow (reads pay a little more until compactions catch up).
		MemTableStopWritesThreshold: 4,
		L0StopWritesThreshold:       1000,
		FormatMajorVersion:          pebble.FormatTableFormatV6,
		Logger:                      pebbleLogger{logger},
		MaxOpenFiles:                500,
		ReadOnly:                    opts.ReadOnly,
	}
	// An ingest that overlaps the memtable (which holds nothing but the format version,
	// and that only until load has flushed it) waits for its flush instead of joining
	// the flush queue: a table in that queue is only recorded in pebble's write-ahead
	// log, which is off.
	po.Experimental.DisableIngestAsFlushable = func() bool { return true }
	bottom := len(po.Levels) - 1
	for i := range po.Levels[:bottom] {
		// Lookups of ids that are not stored (every new event's) and of streams that do
		// not exist yet skip a table on its bloom filter.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Pebble never reads the bottom level's filters (a Get, and an iterator without
	// UseL6Filters, skip them), and every compaction into it built one per table: CPU
	// beside the writers and bytes on disk for nothing. Tables written with one by an
	// older version keep it.
	po.Levels[bottom].FilterPolicy = pebble.NoFilterPolicy
	gate := newCompactionGate()
	po.Experimental.CompactionScheduler = gate
	db, err := pebble.Open(dir, po)
	cache.Unref() // the DB holds its own reference
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	var due []uint64
	if !opts.ReadOnly {
		// No compaction runs before the gate starts: level 0 is as the open left it.
		if due, err = dueLevelZero(db); err != nil {
			db.Close()
			return nil, fmt.Errorf("index: open %s: %w", dir, err)
		}
	}
	x.openL0.follow(due)
	if !opts.holdCompactions {
		gate.start()
	}
	x.db, x.gate = db, gate
	if err := x.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	if !opts.ReadOnly {
		// A hand-off's table not yet ingested when the process stopped: its overlay
		// is replayed from the log.
		leftovers, _ := filepath.Glob(filepath.Join(dir, "overlay-*.sst.tmp"))
		for _, f := range leftovers {
			os.Remove(f)
		}
	}
	x.ov.active = newOverlay(x.Position())
	x.ov.limit = handOffEntries
	x.ov.kick = make(chan struct{}, 1)
	x.ov.stop = make(chan struct{})
	x.ov.done = make(chan struct{})
	x.ov.before = opts.BeforeFlush
	x.ov.retry = handOffRetry
	x.ov.report = bg.report
	po.EnsureDefaults()
	x.ov.wopts = po.MakeWriterOptions(0, db.TableFormat())
	x.ov.fs = po.FS
	if opts.ReadOnly {
		close(x.ov.done) // nothing to hand off
	} else {
		go x.handOffLoop()
	}
	return x, nil
}

// load checks the format version of a used index, or writes it into a new one, and reads
// the position.
func (x *Index) load() error {
	v, err := x.get(keyFormat)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if _, err := x.get(keyPosition); !errors.Is(err, pebble.ErrNotFound) {
			return formatErr("no format version, but a position")
		}
		x.erased.reset(nil)
		if x.readOnly {
			return nil
		}
		if err := x.db.Set(keyFormat, appendUvs(nil, FormatVersion), pebble.NoSync); err != nil {
			return err
		}
		// Written out now: pebble's write-ahead log is off, and Close drops a memtable
		// that holds only this key. The hand-offs ingest tables, which flush it only
		// when they overlap it: those of an index of retention records alone did not,
		// and the next open found a position without a format version and had the
		// index rebuilt, at every start.
		return x.db.Flush()
	case err != nil:
		return err
	}
	n, err := decodeUint(v)
	switch {
	case err == nil && n < FormatVersion:
		return fmt.Errorf("%w: %w: version %d, this version reads %d", ErrFormat, ErrOlderFormat, n, FormatVersion)
	case err != nil || n != FormatVersion:
		return formatErr("format version %x, this version reads %d", v, FormatVersion)
	}
	p, err := x.get(keyPosition)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return x.loadErased()
	case err != nil:
		return err
	}
	pos, err := decodeUint(p)
	if err != nil {
		return err
	}
	x.pos.Store(pos)
	x.durable.Store(pos) // what was read from disk is on disk
	return x.loadErased()
}

// get returns a copy of the value of key.
func (x *Index) get(key []byte) ([]byte, error) {
	v, closer, err := x.db.Get(key)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, nil
}

// Close closes the index without flushing: what was applied since the last Flush is
// lost, and the owner replays it from the log. Call Flush first for a quick next open.
func (x *Index) Close() error {
	x.stopCounting()
	x.ov.stopOnce.Do(func() { close(x.ov.stop) })
	<-x.ov.done // a hand-off under way finishes first
	x.life.Lock()
	defer x.life.Unlock()
	if x.closed {
		return ErrClosed
	}
	x.closed = true
	if err := x.db.Close(); err != nil {
		return fmt.Errorf("index: close %s: %w", x.dir, err)
	}
	return nil
}

// Position is the last log position applied (0 for a new index).
func (x *Index) Position() uint64 { return x.pos.Load() }

// Durable is a position at or below which everything applied is on disk: a crash loses
// nothing up to it. Flush raises it; the storage engine's own flushes may have made more
// durable than it says.
func (x *Index) Durable() uint64 { return x.durable.Load() }

// Flush writes everything applied so far to disk and returns once it is there. Writers
// and readers go on meanwhile: they only wait for the switch to a new overlay.
func (x *Index) Flush() error {
	if err := x.enter(); err != nil {
		return err
	}
	defer x.exit()
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	pos := x.Position()
	if pos == x.Durable() {
		return nil
	}
	// The frozen overlays go first: freezing the active one while maxFrozen wait
	// would pass the bound. A failed hand-off counts as one of handOffLoop does: on a
	// full disk, with writes refused, Flush is the only one that tries.
	if err := x.handOff(); err != nil {
		x.ov.failures.Add(1)
		return fmt.Errorf("index: flush: %w", err)
	}
	x.freeze()
	if err := x.handOff(); err != nil {
		x.ov.failures.Add(1)
		return fmt.Errorf("index: flush: %w", err)
	}
	x.raiseDurable(pos)
	return nil
}

// raiseDurable moves Durable up to pos, never down.
func (x *Index) raiseDurable(pos uint64) {
	for {
		d := x.durable.Load()
		if d >= pos || x.durable.CompareAndSwap(d, pos) {
			return
		}
	}
}

// Metrics are the storage engine's figures, for monitoring.
type Metrics struct {
	DiskBytes   uint64 // bytes of the index's files on disk
	CacheBytes  int64  // bytes in the block cache
	CacheLimit  int64  // the bound on CacheBytes (Options.CacheSize)
	CacheHits   int64
	CacheMisses int64
	MemTable    uint64 // bytes in pebble's memtables (the overlays hold the newest entries)
	L0Files     int64  // files in level 0: many mean compactions are behind

	OverlayEntries  int    // entries in the active overlay, which takes the batches
	OverlaysFrozen  int    // full overlays waiting for their hand-off to pebble (at most maxFrozen)
	OverlayBytes    uint64 // an estimate of the memory of the overlays, active and frozen
	HandOffFailures int64  // hand-offs of an overlay to pebble that failed since the open
}

// Metrics returns the storage engine's figures.
func (x *Index) Metrics() Metrics {
	if x.enter() != nil {
		return Metrics{}
	}
	defer x.exit()
	m := x.db.Metrics()
	active, frozen, bytes := x.ovMetrics()
	return Metrics{
		OverlayEntries:  active,
		OverlaysFrozen:  frozen,
		OverlayBytes:    bytes,
		HandOffFailures: x.ov.failures.Load(),

		DiskBytes:   m.DiskSpaceUsage(),
		CacheBytes:  m.BlockCache.Size,
		CacheLimit:  x.cacheSize,
		CacheHits:   m.BlockCache.Hits,
		CacheMisses: m.BlockCache.Misses,
		MemTable:    m.MemTable.Size,
		L0Files:     m.Levels[0].TablesCount,
	}
}

// StreamState is what the index knows of a stream.
type StreamState struct {
	Exists bool   // has versions that are not deleted (retention may hide them all)
	Last   int64  // last version ever assigned (-1 if none), including hidden ones
	Next   uint64 // version the next append or link gets (= Last+1)
	// First is the first visible version: the deletion point, or the lowest version the
	// stream's retention still shows, whichever is higher. Nothing is visible when it is
	// at or above Next.
	First     uint64
	Retention Retention // the stream's retention settings
}

// Stream returns the state of stream; a stream never written is at Last -1, Next 0.
func (x *Index) Stream(stream string) (StreamState, error) {
	if err := x.enter(); err != nil {
		return StreamState{}, err
	}
	defer x.exit()
	return x.stream(stream)
}

func (x *Index) stream(stream string) (StreamState, error) {
	r, err := x.streamRec(stream)
	if err != nil {
		return StreamState{}, err
	}
	return r.state(), nil
}

// streamRec returns the stored state of stream, from the overlays or pebble; a stream
// never written has the zero state.
func (x *Index) streamRec(stream string) (streamRec, error) {
	if r, ok := x.ovStreamRec(stream); ok {
		return r, nil
	}
	var kb [64]byte
	v, closer, err := x.db.Get(stateKey(kb[:0], stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return streamRec{}, nil
	}
	if err != nil {
		return streamRec{}, x.errorf("index: stream %q: %w", stream, err)
	}
	r, err := decodeStream(v)
	closer.Close()
	if err != nil {
		return streamRec{}, x.errorf("index: stream %q: %w", stream, err)
	}
	return r, nil
}

// Entry is one visible version of a stream.
type Entry struct {
	Version  uint64
	Position uint64 // the position of the event, also when it is linked
	Link     bool   // the event is in the stream through a link
}

// Versions returns the state of stream and appends to dst up to limit of its visible
// versions, starting at version from (inclusive), ascending, or with backward descending
// from min(from, last version). limit <= 0 means no limit. The state and the versions
// come from one iteration over the stream's keys (its state sorts right before its
// versions), so they are consistent and a read of a short stream costs one seek.
func (x *Index) Versions(dst []Entry, stream string, from uint64, backward bool, limit int) (StreamState, []Entry, error) {
	if err := x.enter(); err != nil {
		return StreamState{}, dst, err
	}
	defer x.exit()
	r, inOverlay, segs, low := x.ovVersions(stream)
	if !inOverlay {
		// All in pebble: the state and the versions in one iteration.
		sk := stateKey(nil, stream)
		it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: sk, UpperBound: upper(sk)})
		if err != nil {
			return StreamState{}, dst, x.errorf("index: versions of %q: %w", stream, err)
		}
		st, dst, err := readVersions(it, stream, sk, dst, from, backward, limit)
		if cerr := it.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return st, dst, x.errorf("index: versions of %q: %w", stream, err)
		}
		return st, dst, nil
	}
	st := r.state()
	lo, hi, ok := visibleRange(st, from, backward)
	if !ok {
		return st, dst, nil
	}
	n := unlimited(limit)
	// The overlays hold the versions from low on, pebble those below it.
	if backward {
		for i := len(segs) - 1; i >= 0 && n > 0; i-- {
			vs := segs[i]
			j, _ := slices.BinarySearchFunc(vs, hi, func(e ovEntry, v uint64) int { return cmpU(e.version, v) })
			for j--; j >= 0 && n > 0 && vs[j].version >= lo; j-- {
				dst = append(dst, Entry{Version: vs[j].version, Position: vs[j].pos, Link: vs[j].link})
				n--
			}
		}
		if n > 0 && lo < low {
			var err error
			if dst, err = x.pebbleVersions(dst, stream, lo, min(hi, low), true, n); err != nil {
				return st, dst, err
			}
		}
		return st, dst, nil
	}
	if lo < low {
		var err error
		before := len(dst)
		if dst, err = x.pebbleVersions(dst, stream, lo, min(hi, low), false, n); err != nil {
			return st, dst, err
		}
		n -= len(dst) - before
	}
	for _, vs := range segs {
		if n <= 0 {
			break
		}
		j, _ := slices.BinarySearchFunc(vs, lo, func(e ovEntry, v uint64) int { return cmpU(e.version, v) })
		for ; j < len(vs) && n > 0 && vs[j].version < hi; j++ {
			dst = append(dst, Entry{Version: vs[j].version, Position: vs[j].pos, Link: vs[j].link})
			n--
		}
	}
	return st, dst, nil
}

// visibleRange returns the versions [lo, hi) of a stream in state st that a read from
// from, in direction backward, covers; ok is false if none.
func visibleRange(st StreamState, from uint64, backward bool) (lo, hi uint64, ok bool) {
	if !st.Exists {
		return 0, 0, false
	}
	lo, hi = st.First, st.Next
	if backward {
		if from < lo {
			return 0, 0, false
		}
		if from < hi {
			hi = from + 1
		}
	} else {
		lo = max(lo, from)
	}
	return lo, hi, lo < hi
}

// pebbleVersions appends up to n of the versions [lo, hi) of stream that pebble holds,
// ascending or descending with backward.
func (x *Index) pebbleVersions(dst []Entry, stream string, lo, hi uint64, backward bool, n int) ([]Entry, error) {
	it, err := x.db.NewIter(&pebble.IterOptions{
		LowerBound: namedKey(nil, spaceVersion, stream, lo),
		UpperBound: namedKey(nil, spaceVersion, stream, hi),
	})
	if err != nil {
		return dst, x.errorf("index: versions of %q: %w", stream, err)
	}
	ok := it.First()
	if backward {
		ok = it.Last()
	}
	for ; ok && n > 0; n-- {
		if dst, err = appendEntry(dst, suffix64(it.Key()), it.Value()); err != nil {
			break
		}
		if backward {
			ok = it.Prev()
		} else {
			ok = it.Next()
		}
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return dst, x.errorf("index: versions of %q: %w", stream, err)
	}
	return dst, nil
}

// readVersions is Versions on an iterator over the keys of stream, whose state key is sk.
func readVersions(it *pebble.Iterator, stream string, sk []byte, dst []Entry, from uint64, backward bool, limit int) (StreamState, []Entry, error) {
	if !it.First() || !bytes.Equal(it.Key(), sk) {
		return StreamState{Last: -1}, dst, nil // never written (or an error, which Close returns)
	}
	r, err := decodeStream(it.Value())
	if err != nil {
		return StreamState{}, dst, err
	}
	st := r.state()
	lo, hi, ok := visibleRange(st, from, backward) // visible versions are [lo, hi)
	if !ok {
		return st, dst, nil
	}
	n := unlimited(limit)
	if backward {
		for ok := it.SeekLT(namedKey(nil, spaceVersion, stream, hi)); ok && n > 0 && len(it.Key()) > len(sk); ok, n = it.Prev(), n-1 {
			v := suffix64(it.Key())
			if v < lo {
				break
			}
			if dst, err = appendEntry(dst, v, it.Value()); err != nil {
				return st, dst, err
			}
		}
		return st, dst, nil
	}
	ok = it.Next() // the first version, which is where a read from the start begins
	if ok && suffix64(it.Key()) < lo {
		ok = it.SeekGE(namedKey(nil, spaceVersion, stream, lo))
	}
	for ; ok && n > 0; ok, n = it.Next(), n-1 {
		v := suffix64(it.Key())
		if v >= hi {
			break
		}
		if dst, err = appendEntry(dst, v, it.Value()); err != nil {
			return st, dst, err
		}
	}
	return st, dst, nil
}

func appendEntry(dst []Entry, version uint64, value []byte) ([]Entry, error) {
	pos, link, err := decodeEntry(value)
	if err != nil {
		return dst, err
	}
	return append(dst, Entry{Version: version, Position: pos, Link: link}), nil
}

// Contains reports whether the event at position event is a visible version of stream, as
// its own event or through a link.
func (x *Index) Contains(stream string, event uint64) (bool, error) {
	if err := x.enter(); err != nil {
		return false, err
	}
	defer x.exit()
	version, ok, err := x.member(stream, event)
	if err != nil || !ok {
		return false, err
	}
	st, err := x.stream(stream)
	return err == nil && version >= st.First && version < st.Next, err
}

// Member returns the version at which the event at position event was last put into
// stream, visible or not; ok is false if it never was.
func (x *Index) Member(stream string, event uint64) (version uint64, ok bool, err error) {
	if err := x.enter(); err != nil {
		return 0, false, err
	}
	defer x.exit()
	return x.member(stream, event)
}

// member returns the version at which the event at position event was last put into
// stream, visible or not.
func (x *Index) member(stream string, event uint64) (version uint64, ok bool, err error) {
	if version, ok := x.ovMember(stream, event); ok {
		return version, true, nil
	}
	var kb [80]byte
	v, closer, err := x.db.Get(namedKey(kb[:0], spaceMember, stream, event))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, x.errorf("index: stream %q, position %d: %w", stream, event, err)
	}
	version, err = decodeUint(v)
	closer.Close()
	if err != nil {
		return 0, false, x.errorf("index: stream %q, position %d: %w", stream, event, err)
	}
	return version, true, nil
}

// Lookup returns the position of the event with id id; a dead event is not found.
func (x *Index) Lookup(id uuid.UUID) (pos uint64, ok bool, err error) {
	if err := x.enter(); err != nil {
		return 0, false, err
	}
	defer x.exit()
	pos, ok, err = x.lookup(id)
	if err != nil || !ok {
		return 0, false, err
	}
	if dead, err := x.dead(pos); err != nil || dead {
		return 0, false, err
	}
	return pos, true, nil
}

// LookupAny is Lookup that finds dead events too: an id stays taken while its event is
// in the log.
func (x *Index) LookupAny(id uuid.UUID) (pos uint64, ok bool, err error) {
	if err := x.enter(); err != nil {
		return 0, false, err
	}
	defer x.exit()
	return x.lookup(id)
}

func (x *Index) lookup(id uuid.UUID) (pos uint64, ok bool, err error) {
	if pos, ok := x.ovLookup(id); ok {
		return pos, true, nil
	}
	var kb [17]byte
	v, closer, err := x.db.Get(idKey(kb[:0], id))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, x.errorf("index: event %s: %w", id, err)
	}
	pos, err = decodeUint(v)
	closer.Close()
	if err != nil {
		return 0, false, x.errorf("index: event %s: %w", id, err)
	}
	return pos, true, nil
}

// Category appends to dst up to limit positions of the events written to streams of
// category, from position from (inclusive), ascending, or with backward descending from the
// last position not above from. limit <= 0 means no limit.
func (x *Index) Category(dst []uint64, category string, from uint64, backward bool, limit int) ([]uint64, error) {
	return x.merge(dst, spaceCategory, []string{category}, from, backward, limit)
}

// Types appends to dst up to limit positions of the events of any of types, in
// position order, from position from (inclusive), ascending, or with backward descending
// from the last position not above from. Unknown types match nothing, and so do no types.
// limit <= 0 means no limit.
func (x *Index) Types(dst []uint64, types []string, from uint64, backward bool, limit int) ([]uint64, error) {
	return x.merge(dst, spaceType, types, from, backward, limit)
}

// merge pages the union of the position lists of names in space: a k-way merge of one
// iterator per name, each list ascending by position and no position in two lists.
func (x *Index) merge(dst []uint64, space byte, names []string, from uint64, backward bool, limit int) ([]uint64, error) {
	if err := x.enter(); err != nil {
		return dst, err
	}
	defer x.exit()
	// Each iterator sees the index as of its creation, and batches land between them: a
	// later iterator may see a position an earlier one does not, and the merge would
	// return the later position and skip the other for good. Everything up to Position
	// as of now is visible to every iterator made from here on, so the merge stops there.
	top := x.Position()
	if !backward && from > top {
		return dst, nil
	}
	from = min(from, top)
	lo, hi := from, top // positions in [lo, hi]
	if backward {
		lo, hi = 0, from
	}
	seen := make(map[string]bool, len(names))
	var curs []*posCursor
	defer func() {
		for _, c := range curs {
			c.close()
		}
	}()
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		// Pebble's positions up to the cut, the overlays' after it.
		segs, cut := x.ovPositions(space, name)
		segs = clipSegs(segs, lo, hi)
		var it *pebble.Iterator
		itOK := false
		if phi := min(hi, cut); lo <= phi {
			var err error
			it, err = x.db.NewIter(&pebble.IterOptions{LowerBound: namedKey(nil, space, name, lo), UpperBound: namedKey(nil, space, name, phi+1)})
			if err != nil {
				return dst, x.errorf("index: %q: %w", name, err)
			}
			if backward {
				itOK = it.Last()
			} else {
				itOK = it.First()
			}
			if !itOK {
				err := it.Close()
				it = nil
				if err != nil {
					return dst, x.errorf("index: %q: %w", name, err)
				}
			}
		}
		c := newPosCursor(it, itOK, segs, backward)
		if c.valid() {
			curs = append(curs, c)
		}
	}
	skip, err := x.newDeadSkipper(backward)
	if err != nil {
		return dst, x.errorf("index: list: %w", err)
	}
	defer skip.close()
	for n := unlimited(limit); n > 0 && len(curs) > 0; {
		// Few lists are merged (a filter names a handful of types): a scan for the head
		// is as quick as a heap.
		best := 0
		for i := 1; i < len(curs); i++ {
			a, b := curs[i].pos(), curs[best].pos()
			if backward && a > b || !backward && a < b {
				best = i
			}
		}
		c := curs[best]
		if pos := c.pos(); !skip.dead(pos) {
			dst = append(dst, pos)
			n--
		}
		c.next()
		if !c.valid() {
			err := c.close()
			curs = append(curs[:best], curs[best+1:]...)
			if err != nil {
				return dst, x.errorf("index: list: %w", err)
			}
		}
	}
	return dst, nil
}

// StreamInfo names a stream and gives its state.
type StreamInfo struct {
	Name string
	StreamState
}

// StreamNames returns up to limit streams whose name starts with prefix and is above after,
// in byte order of their names, with their state. Deleted streams are listed too, with
// Exists false. limit <= 0 means no limit.
func (x *Index) StreamNames(prefix, after string, limit int) ([]StreamInfo, error) {
	if err := x.enter(); err != nil {
		return nil, err
	}
	defer x.exit()
	// The overlays' streams, merged by name with pebble's: an overlay's state is newer.
	// They are taken before pebble is read: an overlay dropped meanwhile is in pebble then.
	ov := x.ovNames(prefix, after, limit)
	pk := nameKey(nil, spaceVersion, prefix)
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: pk, UpperBound: upper(pk)})
	if err != nil {
		return nil, x.errorf("index: stream names: %w", err)
	}
	var out []StreamInfo
	ok := it.First()
	if after >= prefix {
		ok = it.SeekGE(pastState(stateKey(nil, after)))
	}
	// A stream's state is its first key; its versions follow, and are skipped with a seek.
	for n := unlimited(limit); (ok || len(ov) > 0) && n > 0; n-- {
		if !ok {
			out, ov = append(out, ov[0]), ov[1:]
			continue
		}
		k := it.Key()
		if !isStateKey(k) {
			it.Close()
			return out, x.errorf("index: stream names: %w", formatErr("%s without the stream's state", describeKey(k)))
		}
		name := k[1 : len(k)-1]
		if len(ov) > 0 && ov[0].Name <= string(name) {
			if ov[0].Name == string(name) {
				ok = it.SeekGE(pastState(k))
			}
			out, ov = append(out, ov[0]), ov[1:]
			continue
		}
		r, err := decodeStream(it.Value())
		if err != nil {
			it.Close()
			return out, x.errorf("index: stream names: %w", err)
		}
		out = append(out, StreamInfo{Name: string(name), StreamState: r.state()})
		ok = it.SeekGE(pastState(k))
	}
	if err := it.Close(); err != nil {
		return out, x.errorf("index: stream names: %w", err)
	}
	return out, nil
}

// pastState returns, in a new slice (sk may be an iterator's key, which must not change),
// the smallest key above every key of the stream whose state key is sk: its state and its
// versions.
func pastState(sk []byte) []byte {
	return append(sk[:len(sk)-1:len(sk)-1], 1)
}

// LinkedInto appends to dst the names of the streams that the event at position event
// was linked into and that still hold it as a visible version through that link: a link
// hidden by a deletion of its stream is left out. They come in the order of their links.
// The stream the event was written to is not among them, unless the event was linked
// back into it after a deletion.
func (x *Index) LinkedInto(dst []string, event uint64) ([]string, error) {
	if err := x.enter(); err != nil {
		return dst, err
	}
	defer x.exit()
	start := len(dst)
	links, err := x.links(event)
	if err != nil {
		return dst, err
	}
	for _, l := range links {
		st, err := x.stream(l.stream)
		if err != nil {
			return dst, err
		}
		if l.version >= st.First && l.version < st.Next {
			dst = append(dst, l.stream)
		}
	}
	// Linked twice while visible (the store never does, the index does not check): the
	// stream comes once, at its last link.
	found := dedup.KeepLast(dst[start:])
	return dst[:start+len(found)], nil
}

// Link is a link of an event into a stream, as Links gives it.
type Link struct {
	Stream string
	// Position is the link record's position in the log: Links after it gives the
	// links after this one.
	Position uint64
	// Hidden says that the stream no longer holds the event through this link: it
	// was deleted or its retention dropped the link's version since.
	Hidden bool
	// State is the stream's state as Links found it.
	State StreamState
}

// Links calls fn with each link of the event at position event whose record is after
// position after (0 for all), in log order, until fn returns false or an error, which
// Links returns. A link whose stream no longer holds the event through it comes too,
// Hidden: the caller counts what it keeps, and can stop (a context done) however many
// links are hidden. Each link costs a lookup of its stream's state, given with it. Its
// overlays' links are taken from position after on only, so that a page of an event's
// links costs in proportion to the page, not to every link of the event.
//
// fn runs while Links holds the index's shared lock, so it must not call the Index
// (see Caused).
func (x *Index) Links(event, after uint64, fn func(Link) (more bool, err error)) error {
	if err := x.enter(); err != nil {
		return err
	}
	defer x.exit()
	ov, cut := x.ovLinksAfter(event, after)
	visit := func(l ovLink) (bool, error) {
		st, err := x.stream(l.stream)
		if err != nil {
			return false, err
		}
		hidden := l.version < st.First || l.version >= st.Next
		return fn(Link{Stream: l.stream, Position: l.pos, Hidden: hidden, State: st})
	}
	if after < cut {
		it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: pairKey(nil, spaceLinked, event, after+1), UpperBound: pairKey(nil, spaceLinked, event, cut+1)})
		if err != nil {
			return x.errorf("index: links of %d: %w", event, err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			version, stream, err := decodeLinked(it.Value())
			if err != nil {
				it.Close()
				return x.errorf("index: links of %d: %w", event, err)
			}
			more, err := visit(ovLink{pos: suffix64(it.Key()), version: version, stream: stream})
			if err != nil || !more {
				it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return x.errorf("index: links of %d: %w", event, err)
		}
	}
	for _, l := range ov {
		if more, err := visit(l); err != nil || !more {
			return err
		}
	}
	return nil
}

// links returns the links of the event at position event, in log order: pebble's up to
// the cut, then the overlays'.
func (x *Index) links(event uint64) ([]ovLink, error) {
	ov, cut := x.ovLinks(event)
	lo := pairKey(nil, spaceLinked, event, 0)
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: pairKey(nil, spaceLinked, event, cut+1)})
	if err != nil {
		return nil, x.errorf("index: links of %d: %w", event, err)
	}
	var out []ovLink
	for ok := it.First(); ok; ok = it.Next() {
		version, stream, err := decodeLinked(it.Value())
		if err != nil {
			it.Close()
			return nil, x.errorf("index: links of %d: %w", event, err)
		}
		out = append(out, ovLink{pos: suffix64(it.Key()), version: version, stream: stream})
	}
	if err := it.Close(); err != nil {
		return nil, x.errorf("index: links of %d: %w", event, err)
	}
	return append(out, ov...), nil
}

// Caused calls fn with the position of each event caused by the event at position
// event (see Batch.AddCausation) after position after (0 for all), in log order, dead
// ones left out, until fn returns
// false or an error, which Caused returns. The caller counts what it keeps: it may leave
// out what the index cannot tell (an erased event, whose causation went with its
// metadata), and still fill a page.
//
// fn runs while Caused holds the index's shared lock and an open iterator, so it must
// not call the Index: once Close waits for the lock, no new reader gets it, and such a
// call would wait for Close while Close waits for Caused.
func (x *Index) Caused(event, after uint64, fn func(child uint64) (more bool, err error)) error {
	if err := x.enter(); err != nil {
		return err
	}
	defer x.exit()
	// Pebble's children up to the cut, the overlays' after it; those up to after left out
	// (the bound, and the loop for the overlays').
	segs, cut := x.ovCaused(event)
	lo := pairKey(nil, spaceCaused, event, min(after, cut)+1)
	if after >= cut {
		lo = pairKey(nil, spaceCaused, event, cut) // below the upper bound; the loop skips it
	}
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: pairKey(nil, spaceCaused, event, cut+1)})
	if err != nil {
		return x.errorf("index: caused by %d: %w", event, err)
	}
	c := newPosCursor(it, it.First(), segs, false)
	skip, err := x.newDeadSkipper(false)
	if err != nil {
		c.close()
		return x.errorf("index: caused by %d: %w", event, err)
	}
	defer skip.close()
	for more := true; c.valid() && more; c.next() {
		if child := c.pos(); child > after && !skip.dead(child) {
			if more, err = fn(child); err != nil {
				c.close()
				return err
			}
		}
	}
	if err := c.close(); err != nil {
		return x.errorf("index: caused by %d: %w", event, err)
	}
	return nil
}

// CategoryOf returns the category of stream: the part of its name before the first '$', or
// the whole name if it has none.
func CategoryOf(stream string) string {
	if i := strings.IndexByte(stream, '$'); i >= 0 {
		return stream[:i]
	}
	return stream
}

// unlimited turns the "limit <= 0 means no limit" convention into a count.
func unlimited(limit int) int {
	if limit <= 0 {
		return int(^uint(0) >> 1)
	}
	return limit
}

// pebbleLogger passes the storage engine's messages to slog. Fatalf is an engine
// invariant violation: it panics, as pebble's own logger would exit.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("index: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("index: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	panic("index: " + fmt.Sprintf(format, args...))
}

// bgErrors logs pebble's background errors (failed flushes and compactions). Pebble
// retries a failing compaction at once, so one damaged table can raise the same error
// dozens of times in a few milliseconds: each distinct error is logged at most once a
// minute, with the number of repeats left out since it was last logged.
type bgErrors struct {
	logger *slog.Logger
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]logevery.Line
}

func (b *bgErrors) report(err error) {
	msg := err.Error()
	now := b.now()
	b.mu.Lock()
	if b.seen == nil || len(b.seen) > 64 {
		b.seen = make(map[string]logevery.Line) // bounded: forget old errors
	}
	line := b.seen[msg]
	repeated, log := line.Log(now)
	b.seen[msg] = line
	b.mu.Unlock()
	if !log {
		return
	}
	if repeated > 0 {
		b.logger.Error("index: background error", "err", err, "suppressed", repeated)
	} else {
		b.logger.Error("index: background error", "err", err)
	}
}
