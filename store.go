package pmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// Options configures a Store. The zero value is a durable store with default sizes.
type Options struct {
	// NoSync turns fsync off: an acknowledged write can be lost in a power cut (never in
	// a process crash). For tests and benchmarks; never the default.
	NoSync bool
	// SegmentSize is the target size of a log segment file; 0 means 16 MiB. tidwall/wal
	// keeps the whole newest segment in memory, and Open parses it, so larger segments
	// cost RAM and open time.
	SegmentSize int
	// Logger receives repairs, index rebuild progress and checkpoint failures;
	// nil means slog.Default().
	Logger *slog.Logger
	// CheckpointEvery is the number of log records between background index
	// checkpoints; 0 means 100,000. Open replays at most this many records.
	CheckpointEvery int
	// OnCommit, if set, is called by the committer after each group commit that wrote to
	// the log: for metrics. It runs on the write path, so it must be quick.
	OnCommit func(CommitInfo)
}

// CommitInfo describes one group commit: one log write and, unless NoSync, one fsync.
type CommitInfo struct {
	Requests int           // writes served by this commit
	Records  int           // log records written
	Duration time.Duration // time spent in the log write, fsync included
}

// Layout of a store directory.
const (
	logDir         = "log"
	checkpointFile = "index.ckpt"
	lockFile       = "LOCK"
)

// Store is an open event store. It is safe for concurrent use.
type Store struct {
	dir    string
	opts   Options
	logger *slog.Logger
	log    *pmdlog.Log
	lock   *os.File

	// mu guards idx and changed. The committer is the only writer of idx and takes the
	// write lock only to apply a batch that is already durable; readers take the read lock
	// just long enough to copy positions out.
	mu      sync.RWMutex
	idx     *index.Index
	changed chan struct{} // closed and replaced each time idx moves on

	closeMu  sync.RWMutex // write side held by Close while it flips isClosed
	isClosed bool

	reqs      chan *request
	closing   chan struct{} // closed by Close: no new requests
	stopped   chan struct{} // closed when the committer has drained and exited
	ckptKick  chan struct{}
	ckptDone  chan struct{}
	closeOnce sync.Once
	closeErr  error

	// Owned by the committer goroutine.
	lastTS     int64
	sinceCkpt  int
	failed     error
	overlay    overlay
	batchRecs  []pmdlog.Record
	batchState []*request
}

// Open opens the store in dir, creating it if needed. It repairs a torn log tail, loads
// the index checkpoint and replays the log written after it; a missing, stale or damaged
// checkpoint is rebuilt from the log, with progress logged. Only one Store may have a
// directory open at a time.
func Open(dir string, opts Options) (*Store, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 16 << 20
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 100_000
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("pmd: open %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		logger:   logger,
		lock:     lock,
		changed:  make(chan struct{}),
		reqs:     make(chan *request, 256),
		closing:  make(chan struct{}),
		stopped:  make(chan struct{}),
		ckptKick: make(chan struct{}, 1),
		ckptDone: make(chan struct{}),
	}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	go s.commitLoop()
	go s.checkpointLoop()
	return s, nil
}

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("pmd: open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("pmd: %s is in use by another process: %w", dir, err)
	}
	return f, nil
}

// load opens the log and brings the index up to its end.
func (s *Store) load() error {
	ckptPath := filepath.Join(s.dir, checkpointFile)
	idx, err := index.LoadCheckpoint(ckptPath)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		idx = nil
	default:
		s.logger.Warn("pmd: index checkpoint unusable, rebuilding the index from the log", "path", ckptPath, "err", err)
		idx = nil
	}
	var keep uint64
	if idx != nil {
		keep = idx.Position()
	}
	l, err := pmdlog.Open(filepath.Join(s.dir, logDir), pmdlog.Options{
		NoSync:      s.opts.NoSync,
		SegmentSize: s.opts.SegmentSize,
		Logger:      s.logger,
		Keep:        keep,
	})
	if err != nil {
		return fmt.Errorf("pmd: open %s: %w", s.dir, err)
	}
	last := l.LastPosition()
	if idx != nil && idx.Position() > last {
		s.logger.Warn("pmd: index checkpoint is ahead of the log, rebuilding the index from the log",
			"checkpoint", idx.Position(), "log", last)
		idx = nil
	}
	if idx == nil {
		idx = index.New()
	}
	if err := s.replay(l, idx); err != nil {
		l.Close()
		return fmt.Errorf("pmd: open %s: %w", s.dir, err)
	}
	s.log, s.idx = l, idx
	if s.opts.NoSync {
		s.logger.Warn("pmd: syncing is off: acknowledged writes can be lost in a power cut", "dir", s.dir)
	}
	return nil
}

// replay applies the log records after idx.Position() to idx, logging progress when
// there are many.
func (s *Store) replay(l *pmdlog.Log, idx *index.Index) error {
	from, last := idx.Position()+1, l.LastPosition()
	if from > last {
		return nil
	}
	total := last - from + 1
	const quiet = 100_000
	if total > quiet {
		s.logger.Info("pmd: indexing log", "from", from, "records", total)
	}
	start := time.Now()
	next := start.Add(2 * time.Second)
	var done uint64
	err := l.Scan(context.Background(), from, func(r pmdlog.Record) error {
		if err := applyRecord(idx, &r, causeIn(r.Event.Metadata)); err != nil {
			return err
		}
		done++
		if total > quiet && done%4096 == 0 && time.Now().After(next) {
			next = time.Now().Add(2 * time.Second)
			s.logger.Info("pmd: indexing log", "done", done, "of", total,
				"percent", fmt.Sprintf("%.0f", float64(done)*100/float64(total)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if total > quiet {
		s.logger.Info("pmd: indexed log", "records", total, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// applyRecord adds a durable record to the index, checking that the version the record
// carries is the one the index derives: a mismatch means the log and the index disagree.
// cause is the causation id of an event record (uuid.Nil for none).
func applyRecord(idx *index.Index, r *pmdlog.Record, cause uuid.UUID) error {
	var version, want uint64
	var stream string
	switch r.Kind {
	case pmdlog.KindEvent:
		stream, want = r.Event.Stream, r.Event.Version
		version = addEvent(idx, r, cause)
	case pmdlog.KindLink:
		stream, want = r.Link.Stream, r.Link.Version
		version = idx.AddLink(r.Position, r.Link.Stream, r.Link.Event)
	case pmdlog.KindDelete:
		idx.DeleteStream(r.Position, r.Delete.Stream)
		return nil
	default:
		idx.Advance(r.Position)
		return nil
	}
	if version != want {
		return fmt.Errorf("pmd: record at position %d puts stream %q at version %d, the index derives %d: %w",
			r.Position, stream, want, version, pmdlog.ErrCorrupt)
	}
	return nil
}

// Close stops taking writes, waits for the ones in flight, writes the index checkpoint
// and closes the log. Reads and subscriptions still running end with ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.isClosed = true
		s.closeMu.Unlock()
		close(s.closing)
		<-s.stopped
		<-s.ckptDone
		err := s.checkpoint()
		if cerr := s.log.Close(); err == nil {
			err = cerr
		}
		if cerr := s.lock.Close(); err == nil {
			err = cerr
		}
		s.closeErr = err
	})
	return s.closeErr
}

// LastPosition is the position of the last record in the log, 0 for an empty store.
func (s *Store) LastPosition() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.Position()
}

// checkpointLoop writes the index checkpoint when the committer asks for one.
func (s *Store) checkpointLoop() {
	defer close(s.ckptDone)
	for {
		select {
		case <-s.ckptKick:
			if err := s.checkpoint(); err != nil {
				s.logger.Error("pmd: index checkpoint failed; the next open replays more of the log", "err", err)
			}
		case <-s.stopped:
			return
		}
	}
}

// checkpoint persists the index. The log is synced first, so that a checkpoint never
// covers a record that could still be lost: Open relies on that to refuse to cut
// checkpointed records off a damaged log.
func (s *Store) checkpoint() error {
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("pmd: checkpoint: %w", err)
	}
	var buf bytes.Buffer
	s.mu.RLock()
	_, err := s.idx.WriteTo(&buf)
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("pmd: checkpoint: %w", err)
	}
	if err := index.WriteCheckpointFile(filepath.Join(s.dir, checkpointFile), buf.Bytes()); err != nil {
		return fmt.Errorf("pmd: checkpoint: %w", err)
	}
	return nil
}
