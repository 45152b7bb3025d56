package pmd

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd/index"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// Options configures a Store. The zero value is a durable store with default sizes.
type Options struct {
	// NoSync turns fsync off: an acknowledged write can be lost in a power cut (never in
	// a process crash). For tests and benchmarks; never the default.
	NoSync bool
	// SegmentSize is the target size of a log segment file; 0 means 1 MiB. tidwall/wal
	// keeps the whole newest segment in memory, in one slice that grows with it by a
	// quarter at a time, and Open parses it: larger segments cost RAM, open time and, each
	// time that slice grows, a stall of the writers while the runtime copies it into fresh
	// memory and the garbage collector makes the allocation pay for its work (about 15 ms
	// per MiB of segment on a VM; bench/README.md, "Session 6"). A store opens with any
	// size; a new one applies from the next segment on.
	SegmentSize int
	// CacheSize bounds, in bytes, the index blocks kept in memory; 0 means 64 MiB. The
	// index lives on disk: this, not the number of events, sets the store's memory. An
	// index that fits in it whole is read into it in the background after Open.
	CacheSize int64
	// Logger receives repairs, index rebuild progress, damage and flush failures;
	// nil means slog.Default().
	Logger *slog.Logger
	// IndexFlushEvery is the number of log records the index may hold above its
	// durable point (what it has on disk) before it is flushed; 0 means 100,000. Open
	// replays at most about this many records, or what came in the last 10 seconds.
	IndexFlushEvery int
	// NoScrub skips the background check of every log record that Open starts, which
	// finds damage in old segments (see Problems).
	NoScrub bool
	// ScrubBytesPerSecond paces that check, which reads the whole log and then the whole
	// index, so that it takes little from the writers; 0 means 32 MiB/s (a 30M-event log of 11 GB in about six
	// minutes), negative means as fast as it goes.
	ScrubBytesPerSecond int64
	// OnCommit, if set, is called by the committer after each group commit that wrote to
	// the log: for metrics. It runs on the write path, so it must be quick.
	OnCommit func(CommitInfo)
}

// CommitInfo describes one group commit: one log write and, unless NoSync, one fsync.
type CommitInfo struct {
	Requests int           // writes served by this commit
	Records  int           // log records written
	Duration time.Duration // time spent in the log write, fsync included
	// Sync is the part of Duration spent waiting for the disk's fsyncs: a commit that
	// is slow while Sync is short was slow in pmd, not on the disk.
	Sync time.Duration
}

// Store is an open event store. It is safe for concurrent use.
type Store struct {
	opts Options
	eng  *engine.Engine
	log  *pmdlog.Log
	idx  *index.Index

	chMu    sync.Mutex
	changed chan struct{} // closed and replaced each time idx moves on

	closeMu  sync.RWMutex // write side held by Close while it flips isClosed
	isClosed bool

	reqs      chan *request
	closing   chan struct{} // closed by Close: no new requests
	stopped   chan struct{} // closed when the committer has drained and exited
	closeOnce sync.Once
	closeErr  error

	acked atomic.Uint64 // the last position acknowledged to a writer; see visible

	retainMu sync.Mutex // serialises SetRetention and SetRetentionIf (its check, then its write)
	kept     kept       // the streams owners keep whole (Keep)

	writeFailures atomic.Uint64
	scavenges     atomic.Uint64 // Scavenge calls that finished
	scavenged     atomic.Uint64 // disk bytes they freed

	// The write pipeline (see stage): the committer hands each batch it wrote to the
	// applier on applying and takes the stages to plan in from free.
	applying chan *stage
	free     chan *stage
	applied  chan struct{} // closed when the applier has answered its last batch

	failMu sync.Mutex
	failed error // the index could not take a durable batch: writes stop
	// writesStopped is closed when failed is set (WritesStopped).
	writesStopped chan struct{}

	// Owned by the committer goroutine.
	next   uint64 // the position of the next record
	lastTS int64
	known  map[string]index.StreamState // see learn
	last   *stage                       // the batch handed to the applier last

	ibatch *index.Batch // owned by the applier

	repl atomic.Pointer[replication] // set when the store is a cluster's replica (replicate.go)

	// Test hooks, nil outside tests: beforeIndex runs in the applier after it answered a
	// batch's writers and before it indexes the batch; waitIndex runs in visible when a
	// reader is about to wait for the applier.
	beforeIndex, waitIndex func()
}

// Open opens the store in dir, creating it if needed. It repairs a torn log tail, opens
// the index and replays the log written after the index's durable point; an index that
// cannot be used is rebuilt from the log, and a data directory of an older pmd is
// upgraded, with progress logged. Only one Store may have a directory open at a time: Open
// fails with ErrLocked while another has it, ErrFormat for a directory a later pmd wrote,
// and a *LostLogError for a store whose log is gone.
func Open(dir string, opts Options) (*Store, error) {
	eng, err := engine.Open(dir, engine.Options{
		NoSync:              opts.NoSync,
		SegmentSize:         opts.SegmentSize,
		CacheSize:           opts.CacheSize,
		Logger:              opts.Logger,
		FlushEvery:          opts.IndexFlushEvery,
		NoScrub:             opts.NoScrub,
		ScrubBytesPerSecond: opts.ScrubBytesPerSecond,
	})
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:          opts,
		eng:           eng,
		log:           eng.Log,
		idx:           eng.Index,
		changed:       make(chan struct{}),
		reqs:          make(chan *request, 256),
		closing:       make(chan struct{}),
		stopped:       make(chan struct{}),
		writesStopped: make(chan struct{}),
		applying:      make(chan *stage, 1),
		free:          make(chan *stage, 2),
		applied:       make(chan struct{}),
		next:          eng.Index.Position() + 1,
		known:         make(map[string]index.StreamState),
		ibatch:        engine.NewBatch(eng.Index, eng.Log),
	}
	if s.lastTS, err = s.LastEventTime(); err != nil {
		eng.Close()
		return nil, err
	}
	for range cap(s.free) {
		s.free <- &stage{durable: make(chan struct{}, 1)}
	}
	go s.applyLoop()
	go s.commitLoop()
	return s, nil
}

// Close stops taking writes, waits for the ones in flight, flushes the index and closes
// the log. Reads and subscriptions still running end with ErrClosed at their next
// event, with two exceptions that serve correct events first: a forward ReadAll
// without a type filter goes on to the end the log had when the read began, and ends
// with no error, as the scan of the log it reads by holds the files it started with;
// and a subscription catching up serves the rest of the page of $all it is reading
// before its ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.isClosed = true
		s.closeMu.Unlock()
		close(s.closing)
		<-s.stopped
		s.closeErr = s.eng.Close()
	})
	return s.closeErr
}

// closed reports whether Close has begun.
func (s *Store) closed() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.isClosed
}

// LastPosition is the position of the last record in the log, 0 for an empty store.
func (s *Store) LastPosition() uint64 {
	// An index that failed stays where it got to: so does the answer.
	_ = s.visible(context.Background())
	return s.idx.Position()
}

// Problems describes what is wrong with the store, for a health check: damaged log
// records (found at Open or by the background scrub), a failed write the log has not yet
// recovered from, an index that could not keep up. An empty list means healthy.
func (s *Store) Problems() []string {
	out := s.eng.Problems()
	if err := s.failure(); err != nil {
		out = append(out, "writes stopped until a restart: "+err.Error())
	}
	return out
}

// WritesStopped returns a channel closed once the store stopped writing until it is
// opened again (every write fails matching ErrNeedsRestart; Problems says why): a
// daemon can stop then, for its supervisor to start it again, whether or not a write
// of its own meets the refusal.
func (s *Store) WritesStopped() <-chan struct{} { return s.writesStopped }

// Scrubbed returns a channel closed once the background check of every log record and
// of the index that Open starts has finished; damage it found is in Problems by then.
// With Options.NoScrub it is never closed.
func (s *Store) Scrubbed() <-chan struct{} { return s.eng.Scrubbed() }

// changes returns the channel closed at the next change of the index.
func (s *Store) changes() <-chan struct{} {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	return s.changed
}

// notify wakes everybody waiting on changes.
func (s *Store) notify() {
	s.chMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.chMu.Unlock()
}

// Stats are the store's figures for monitoring.
type Stats struct {
	LastPosition   uint64 // the last record in the log
	IndexDurable   uint64 // the index is on disk up to here: a crash replays the log after it
	Replayed       uint64 // log records Open replayed into the index (those after its durable point)
	DamagedRecords int    // damaged log records found (see Problems)
	WriteFailures  uint64 // writes refused with ErrUnavailable since Open
	WritesFailing  bool   // the last write failed and the log has not yet recovered
	Scavenges      uint64 // scavenges finished since Open
	ScavengedBytes uint64 // disk bytes they freed

	// Events counts the events written (links are not events), dead ones included
	// (those a scavenge removed until the index is rebuilt from the log, or, for those
	// past IndexDurable, until a crash: the restart replays them as records without ids);
	// Streams the streams that exist (written to, not deleted). Both are known once a
	// background pass over the index, started by the first call of Stats, has counted
	// them (about a second per few million events): Counted says so, and they are 0
	// until then. After it, every write keeps them current.
	Events, Streams uint64
	Counted         bool

	LogSegments  int    // segment files of the log
	LogDiskBytes uint64 // bytes of their records

	IndexDiskBytes     uint64 // the index's files on disk
	IndexCacheBytes    int64  // index blocks cached in memory (bounded by Options.CacheSize)
	IndexCacheLimit    int64  // that bound: Options.CacheSize, or its default
	IndexCacheHits     int64
	IndexCacheMisses   int64
	IndexMemTableBytes uint64 // bytes in the index's memtables (its newest entries are in its overlays)
	IndexL0Files       int64  // many mean the index's compactions are behind

	IndexOverlayEntries  int    // index entries in the overlay taking batches, not yet on disk
	IndexOverlaysFrozen  int    // full overlays waiting for their hand-off to disk (at most 4)
	IndexOverlayBytes    uint64 // an estimate of the memory of the index's overlays
	IndexHandOffFailures int64  // hand-offs of an overlay to disk that failed since the open
}

// Stats returns the store's figures. It reads nothing from disk.
func (s *Store) Stats() Stats {
	m := s.idx.Metrics()
	counts, counted := s.idx.Counts()
	segs := s.log.Segments()
	var logBytes uint64
	for _, seg := range segs {
		logBytes += uint64(seg.Size)
	}
	return Stats{
		Events:             counts.Events,
		Streams:            counts.Streams,
		Counted:            counted,
		LogSegments:        len(segs),
		LogDiskBytes:       logBytes,
		LastPosition:       s.LastPosition(),
		IndexDurable:       s.idx.Durable(),
		Replayed:           s.eng.Replayed(),
		DamagedRecords:     len(s.eng.Damage()),
		WriteFailures:      s.writeFailures.Load(),
		WritesFailing:      s.log.Err() != nil,
		Scavenges:          s.scavenges.Load(),
		ScavengedBytes:     s.scavenged.Load(),
		IndexDiskBytes:     m.DiskBytes,
		IndexCacheBytes:    m.CacheBytes,
		IndexCacheLimit:    m.CacheLimit,
		IndexCacheHits:     m.CacheHits,
		IndexCacheMisses:   m.CacheMisses,
		IndexMemTableBytes: m.MemTable,
		IndexL0Files:       m.L0Files,

		IndexOverlayEntries:  m.OverlayEntries,
		IndexOverlaysFrozen:  m.OverlaysFrozen,
		IndexOverlayBytes:    m.OverlayBytes,
		IndexHandOffFailures: m.HandOffFailures,
	}
}
