package pm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/logevery"
)

// Options configures a Manager. The zero value is ready to use.
type Options struct {
	// Workers is how many processes are handled at once. The events of one process
	// always go to the same worker, in log order. 0 means 32: enough concurrent writes
	// for the store's group commit to share each fsync among many processes.
	Workers int
	// Clock is the time deadlines and delivery retries follow; nil is the wall clock. The
	// events' timestamps come from the store's clock: a deadline is decided on the events
	// stored before it (pm/doc.go, "Time") only while the two agree.
	Clock Clock
	// Logger receives skipped events and failed deliveries; nil means slog.Default().
	Logger *slog.Logger
	// CheckpointEvery is how far, in log positions, the resume checkpoint may lag behind
	// the handled events before it is written again; 0 means 1000. A lagging checkpoint
	// costs only re-reading on restart: handling an event twice is a no-op.
	CheckpointEvery int
	// Deliver, if set, is handed every issued command, at least once.
	Deliver Handler
	// Deliverers is how many deliveries to one receiver run at once while it answers;
	// 0 means 4. Each receiver has its own: one that hangs holds up its own commands,
	// never another receiver's. An attempt still running after HangAfter is taken for
	// hung, and no longer counts, when another process's command waits for a slot and
	// the receiver has answered no attempt since the hung one began: that command then
	// goes out beside it, so a process whose command hangs holds back only its own later
	// commands. A receiver that still answers, however slowly, is slow, not hung: it
	// gets Deliverers attempts at most. Up to 16·Deliverers attempts of one receiver run
	// in all, hung ones included; past that, its hung attempts do hold back its other
	// processes, until one ends. An attempt whose handler returned is an answer, and
	// holds its slot until its record is written: while the store cannot write (a full
	// disk), no more commands go out to the receiver than Deliverers, besides attempts
	// taken for hung before, which gave their slots away.
	Deliverers int
	// HangAfter is how long a delivery attempt runs before it may stop counting against
	// Deliverers (see there); 0 means 1s, negative never.
	HangAfter time.Duration
	// Receiver names the receiver a command goes to (a URL, a service); nil sends every
	// command to one receiver, "". A process's commands go out in the order issued,
	// whatever their receivers. A panic in it is logged with its stack, and the command
	// goes to the receiver "".
	Receiver func(Command) string
	// MaxAttempts is how many attempts in a row may fail before a command is parked:
	// no longer attempted, and holding back the later commands of its process, until
	// Retry or Skip. 0 means 10; negative retries for ever.
	MaxAttempts int
	// OnAttempt, if set, is called after every delivery attempt is recorded: for
	// metrics. It must be quick. A panic in it is logged with its stack and passed over.
	OnAttempt func(AttemptInfo)
	// QueueBytes bounds the data held in memory by the commands queued for delivery
	// (not delivered or skipped yet: waiting behind another, failing, parked), and by
	// those a read finds before they are queued: each holds its data as the store keeps
	// it (msgpack, pmd.EncodeData), counted so, and decoded at each attempt only. 0
	// means 64 MiB, negative holds none. A command queued past it holds its id and place
	// only, and each of its attempts reads its record again (one read by id): a receiver
	// that is down for long makes the queue grow by a few hundred bytes a command, not
	// by its data. A record that no longer reads (its process stream deleted, expired
	// by retention, damaged) or reads erased fails the attempt, which parks as any
	// ("read the command again: ..."), for Skip: it never goes out under its id with
	// another body. OnAttempt sees the command as the attempt handed it over.
	QueueBytes int
	// CacheSize is how many processes' states are kept in memory, those handled last.
	// An event of a cached process folds onto its state; an event of any other process
	// folds its stream once, from the newest snapshot on. 0 means 10,000; negative keeps
	// none, so that every event folds its process from the store.
	CacheSize int
	// SnapshotEvery is how many events a process stream grows by between two snapshots
	// of its state, written to the stream "<Name>.snapshots$<process id>": processes
	// shorter than it get none. 0 means 1,000; negative writes and reads none. A state
	// type that msgpack cannot encode and decode back to an equal value (see
	// Definition) gets no snapshots, whatever this says: its processes are cached in
	// memory and folded from their streams.
	SnapshotEvery int
	// RetryMin and RetryMax bound the back-off between delivery attempts of a command:
	// the n-th retry waits RetryMin·2^(n-1), at most RetryMax, less a random part of up to
	// half (jitter); a handler's error may ask for a longer wait, up to RetryMax (see
	// Handler). 0 means 100ms and 1 minute.
	RetryMin, RetryMax time.Duration
	// Retention says how long done processes are kept. The zero value keeps them for
	// ever.
	Retention Retention
}

// Retention says when the runtime removes processes. A removed process's stream, its
// deliveries and its snapshots are deleted (pmd.Store.DeleteStream; the handled facts
// stay in their own streams), and a marker "<Name>.removed$<process id>" is kept, so
// that a late event of the process starts nothing again: it is skipped, counted
// (Stats.Late) and logged.
type Retention struct {
	// Completed is how long after it is done a process is removed: done is having
	// issued a command with no deadline pending (status completed, or expired once no
	// other deadline is pending). A process whose commands are not all delivered or
	// skipped yet waits for them. 0 keeps done processes; negative is an error.
	Completed time.Duration
}

// Handler receives issued commands. It may be called more than once for a command
// (after a crash, or when an error was returned); Command.ID is stable, so it can drop
// duplicates. An error makes the command retried later, with back-off; so does a panic,
// recorded as the error "handler panicked: <value>" and logged with its stack. An error
// with a method RetryAfter() time.Duration in its chain (errors.As; package server's
// RetryAfterError, a webhook's Retry-After) has the next attempt wait at least that
// long, but no longer than Options.RetryMax for it. ctx ends
// when Run stops, and Run returns only once every attempt has: a handler that goes on
// past it keeps Run from returning.
type Handler func(ctx context.Context, c Command) error

// Errors of the runtime.
var (
	// ErrProcessNotFound: the process has no event.
	ErrProcessNotFound = errors.New("process not found")
	// ErrRunning: Run was called on a Manager that has run already.
	ErrRunning = errors.New("manager already ran")
)

// Manager runs one process manager on a store: it handles events, fires deadlines,
// delivers commands and answers queries about its processes. Its methods are safe for
// concurrent use.
type Manager struct {
	store   *pmd.Store
	def     machine
	ns      uuid.UUID // of the ids of the records it writes: see storeNamespace
	name    string
	handles []string
	opts    Options
	clock   Clock
	logger  *slog.Logger
	started atomic.Bool
	// unwritable is the WARN that the store cannot write now (a full disk, an I/O
	// error), so that the manager's writes wait (untilWritable) or are made later (a
	// checkpoint): at most once a minute. Guarded by mu.
	unwritable logevery.Line

	// trust says which records of its streams are its own: set by Run's load (nil
	// before; see trustNow).
	trust atomic.Pointer[trust]
	// markPending says that the store holds no legacy mark yet: the next checkpoint
	// carries it (see load). Used by the checkpoint writer only, after load.
	markPending bool

	// The folds of the processes handled last, and what snapshots need.
	cache       *cache
	fingerprint string
	noSnapshots atomic.Bool // set when the state type turns out not to survive msgpack
	// damagedParked holds the ids (uuid.UUID) of the parked commands whose damaged record
	// Parked has logged, so that it logs each once however often the page is read.
	damagedParked sync.Map
	// damagedViewed holds the damaged records (damagedRecord) of process streams that a
	// view of their process passed over and logged (passOver), the linked facts among
	// them as linkedFact, and the damaged snapshots a fold passed over (findSnapshot), so
	// that each is logged once.
	damagedViewed sync.Map

	// Set by Run before its goroutines start.
	shards    []chan task
	wakeTimer chan struct{} // the deadline timer: an earlier deadline was set
	kickCkpt  chan struct{}
	delivery  *dispatcher    // nil without Options.Deliver
	cmdsrc    *commandSource // delivery's source

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change WaitIdle may wait for
	fatal   error
	counts  Counts
	// counted is where Counts has each process whose status its stream no longer tells
	// once erased (see countErased): those with deadlines pending when last counted, and
	// the erased ones. The others stood where the types of their erased records say.
	counted  map[string]Status
	inflight window
	seen     uint64 // position of the last event the reader took
	queued   uint64 // position of the last event the reader put in a worker queue, or skipped
	barrier  uint64 // position the deadline timer waits for queued to reach; 0 when it does not wait
	saved    uint64 // resume position last written
	timers   *timers[string]
	sleeping time.Time // when the deadline timer wakes; zero when it has nothing to wait for
	ticks    int       // deadline checks queued or running
	// stalled, when not nil, is why the reader stopped at the event at position
	// stalledAt: ProcessID or NoProcessID panicked at it (see stall).
	stalled   error
	stalledAt uint64

	unmatchedByType map[string]uint64 // see Stats.Unmatched
	unmatchedLog    map[string]logevery.Line
	removed         uint64        // see Stats.Removed
	late            uint64        // see Stats.Late
	undeliverable   uint64        // see Stats.Undeliverable
	lateLog         logevery.Line // of the late events logged

	// held has the processes a callback of the definition panicked for, with what the
	// views show of the panic (no stack: see hold): nothing more is done for them until
	// Run starts again. heldFrom is the
	// position of the first event held (theirs, or one ProcessID panicked at), 0 for
	// none: the checkpoint stays below it, so that the next start handles it again.
	held     map[string]*PanicError
	heldFrom uint64
	panics   uint64        // see Stats.Panics
	panicLog logevery.Line // of the processes held

	// hooks are for tests, set (export_test.go) before Run starts: the zero value,
	// which runs none, outside them.
	hooks hooks
}

// hooks are a Manager's test hooks, each nil (false) unless a test set it.
type hooks struct {
	// beforeDecisionWrite runs between decide's erasure check and its write, with the
	// process stream (SetBeforeDecisionWrite).
	beforeDecisionWrite func(stream string)
	// afterProcessWrite runs once a write to a process stream landed, before what
	// follows it: the read back, the check for an erasure since, the snapshot
	// (SetAfterProcessWrite).
	afterProcessWrite func(stream string)
	// factsChecked runs each time checkFactsErased reads a cached fold's facts
	// (SetFactsChecked).
	factsChecked func(stream string)
	// alwaysCheckFacts makes checkFactsErased read the facts whether or not the store
	// erased anything since: for the benchmark that measures what the count saves
	// (BenchmarkDecisions; SetAlwaysCheckFacts).
	alwaysCheckFacts bool
	// afterRemovalMarker runs once remove wrote a removal marker, with its stream,
	// before the deletes (SetAfterRemovalMarker).
	afterRemovalMarker func(marker string)
	// eventByID, when set, reads the record of a command in place of the store's Event
	// (SetParkedLookup): set while the manager runs, so it is loaded atomically.
	eventByID atomic.Pointer[func(s *pmd.Store, ctx context.Context, id uuid.UUID) (pmd.Event, error)]
}

// task is one thing for a worker to do for a process: handle an event, or (ev nil)
// check its deadlines as of at, the clock when the timer found the first one due.
type task struct {
	pid string
	ev  *pmd.Event
	at  time.Time
}

// Streams of a manager besides the process streams "<Name>$<id>". The names cannot
// clash with another manager's process streams: a Name has no '.'.
func checkpointStream(name string) string     { return name + ".checkpoint" }
func deliveriesStream(name, id string) string { return name + ".deliveries$" + id }

// Record types of those streams.
const (
	checkpointType     = "Checkpoint"
	defaultMaxAttempts = 10
	maxWriteAttempts   = 64
	defaultWorkers     = 32
	defaultCheckpoint  = 1000
	defaultDeliverers  = 4
	defaultHangAfter   = time.Second
	defaultRetryMin    = 100 * time.Millisecond
	defaultRetryMax    = time.Minute
	streamsPageSize    = 1000
	shardQueueCapacity = 64
	defaultCacheSize   = 10_000
	defaultSnapshot    = 1000
	defaultQueueBytes  = 64 << 20
	// maxBatch is how many queued events of a worker it handles at once: the events of
	// one process among them go into as few writes as their decisions allow.
	maxBatch = shardQueueCapacity
)

// New returns a Manager running def on store. Nothing happens until Run. It has the
// store keep the manager's streams whole (Keep): retention settings hiding their records
// are refused from then on.
func New[S any](store *pmd.Store, def Definition[S], opts Options) (*Manager, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("pm: %s: the store is nil", def.Name)
	}
	if opts.Retention.Completed < 0 {
		return nil, fmt.Errorf("pm: %s: Options.Retention.Completed is negative: %s", def.Name, opts.Retention.Completed)
	}
	if err := Keep(store, def.Name); err != nil {
		return nil, fmt.Errorf("pm: %s: %w", def.Name, err)
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = defaultCheckpoint
	}
	if opts.Deliverers <= 0 {
		opts.Deliverers = defaultDeliverers
	}
	if opts.HangAfter == 0 {
		opts.HangAfter = defaultHangAfter
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = defaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = defaultRetryMax
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = defaultCacheSize
	}
	if opts.SnapshotEvery == 0 {
		opts.SnapshotEvery = defaultSnapshot
	}
	if opts.QueueBytes == 0 {
		opts.QueueBytes = defaultQueueBytes
	}
	m := &Manager{
		store:   store,
		def:     def,
		ns:      storeNamespace(store.ID()),
		name:    def.Name,
		handles: append([]string(nil), def.Handles...),
		opts:    opts,
		clock:   opts.Clock,
		logger:  opts.Logger,
		changed: make(chan struct{}),
		timers:  newTimers(strings.Compare),
		counted: make(map[string]Status),
		held:    make(map[string]*PanicError),
		cache:   newCache(opts.CacheSize),

		unmatchedByType: make(map[string]uint64),
		unmatchedLog:    make(map[string]logevery.Line),

		fingerprint: def.fingerprint(),
	}
	if m.clock == nil {
		m.clock = systemClock{}
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if reason := def.snapshots(); reason != "" && opts.SnapshotEvery > 0 {
		m.noSnapshots.Store(true)
		m.logger.Info("pm: no snapshots: processes are folded from their streams and cached in memory",
			"manager", def.Name, "reason", reason)
	}
	return m, nil
}

// Name is the process manager's name.
func (m *Manager) Name() string { return m.name }

// Run handles events until ctx is done, then writes the resume checkpoint and returns
// nil; it returns early with an error if the store fails or closes, or if the
// definition decides something the runtime refuses (ErrInvalidDefinition). A write the
// store refuses as unavailable (a full disk, an I/O error: the store recovers by itself
// once the cause is gone) is waited out, not a failure: a decision, a delivery record,
// a removal or an erasure made again waits for its write to land, its process holding
// meanwhile, and a checkpoint or a snapshot is written later. A store that stopped
// writing until it is opened again (pmd.ErrNeedsRestart) is not waited for: whatever the
// write it refuses, a snapshot's too, Run returns its error. A Manager runs once.
//
// Run first loads what the log says: the resume position, the pending deadlines, the
// commands not delivered yet and the counts of processes. Then it subscribes to the
// handled event types from the resume position on.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return fmt.Errorf("pm: %s: %w", m.name, ErrRunning)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resume, err := m.load(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while loading
		}
		m.fail(err) // WaitIdle and WaitHandled return it
		return err
	}
	m.shards = make([]chan task, m.opts.Workers)
	for i := range m.shards {
		m.shards[i] = make(chan task, shardQueueCapacity)
	}
	m.wakeTimer = make(chan struct{}, 1)
	m.kickCkpt = make(chan struct{}, 1)

	var wg sync.WaitGroup
	spawn := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				m.fail(err)
				cancel()
			}
		}()
	}
	for i := range m.shards {
		spawn(func(ctx context.Context) error { return m.work(ctx, m.shards[i]) })
	}
	spawn(func(ctx context.Context) error { return m.read(ctx, resume) })
	spawn(m.runTimer)
	spawn(m.runCheckpoints)
	if m.delivery != nil {
		m.delivery.start(spawn)
	}
	<-ctx.Done()
	wg.Wait()

	m.mu.Lock()
	fatal := m.fatal
	m.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	err = m.saveCheckpoint(context.WithoutCancel(ctx))
	switch {
	case waitable(err) && !diskCause(err):
		// A cluster node that stops, lost its leadership or was removed (which stopped
		// the manager): routine, and no WARN (stoppedUnwritable).
		m.logger.Info(stoppedUnwritable+"the checkpoint is not written (the events after the last one written are read again at the next start, which changes nothing)",
			"manager", m.name, "err", err)
	case waitable(err):
		m.warnUnwritable(err, "the checkpoint is not written (the events after the last one written are read again at the next start, which changes nothing)")
	case err != nil && !errors.Is(err, pmd.ErrClosed):
		return err
	}
	return nil
}

func (m *Manager) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fatal == nil {
		m.fatal = err
	}
	m.broadcastLocked()
}

func (m *Manager) broadcastLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// shard is the worker queue of process pid: FNV-1a of the id.
func (m *Manager) shard(pid string) chan task {
	h := uint32(2166136261)
	for i := 0; i < len(pid); i++ {
		h = (h ^ uint32(pid[i])) * 16777619
	}
	return m.shards[h%uint32(len(m.shards))]
}

// read feeds the workers the handled events from resume on, in log order.
func (m *Manager) read(ctx context.Context, resume uint64) error {
	sub := m.store.Subscribe(ctx, pmd.SubscribeOptions{Types: m.handles, From: resume})
	for ev, err := range sub {
		var ce *pmd.CorruptError
		if errors.As(err, &ce) {
			// The store lists the damage in its problems (/healthz) until a repair;
			// the processes after it must not wait for that. The record's process, if
			// it had one, goes on without the fact.
			m.logger.Error("pmd: process manager skipped a damaged record", "pm", m.name, "position", ce.Position, "err", err)
			m.mu.Lock()
			m.seen, m.queued = ce.Position, ce.Position
			m.broadcastLocked()
			m.mu.Unlock()
			continue
		}
		if err != nil {
			return fmt.Errorf("pm: %s: subscription: %w", m.name, err)
		}
		pid, ok, pe := m.processOf(&ev)
		if pe != nil {
			m.stall(&ev, pe)
			return nil
		}
		m.mu.Lock()
		m.seen = ev.Position
		if ok {
			m.inflight.add(ev.Position)
		} else {
			m.queued = ev.Position
		}
		m.broadcastLocked()
		m.mu.Unlock()
		if !ok {
			continue
		}
		select {
		case m.shard(pid) <- task{pid: pid, ev: &ev}:
		case <-ctx.Done():
			return nil
		}
		m.mu.Lock()
		m.queued = ev.Position
		if m.barrier > 0 && m.queued >= m.barrier {
			m.broadcastLocked()
		}
		m.mu.Unlock()
	}
	return nil
}

// processOf returns the process of a handled event. An event that belongs to no
// process (no process id: typically the correlation field is missing; one that cannot
// name a stream, or is "." or ".." (but for a process of such an id a store already
// holds: checkID); or one written to the process stream itself, by a producer writing to
// the category the manager is named like) is counted and logged, and skipped. A record
// the manager wrote itself (trust.own: its id, not its metadata, says so) in its process
// stream is skipped silently. One that ProcessID or NoProcessID panics at is returned
// with the panic, for the reader to stop at (stall).
func (m *Manager) processOf(ev *pmd.Event) (string, bool, *PanicError) {
	pid, ok, pe := m.processID(ev)
	reason := "it has no process id"
	if why, explains := m.def.(interface{ noProcessID(pmd.Event) string }); explains && !ok && pe == nil {
		func() {
			defer catch("", "NoProcessID", -1, &pe)
			reason = why.noProcessID(*ev)
		}()
	}
	if pe != nil {
		return "", false, pe
	}
	if ok {
		reason = m.checkID(pid)
		switch {
		case reason == "" && ev.Stream == m.name+"$"+pid && m.trust.Load().own(ev.Stream, ev):
			// The manager's own record: a command of a type it handles, issued by a Go
			// definition (a config file cannot). It is no fact, and no mistake.
			return "", false, nil
		case reason == "" && ev.Stream == m.name+"$"+pid:
			// It cannot be linked into the stream it was written to; taken for a link
			// made before a crash, it would silently never count.
			reason = "it was written to its own process stream " + strconv.Quote(ev.Stream) +
				": a process manager must not be named like the category of the streams its events are written to"
		case reason == "":
			return pid, true, nil
		default:
			reason = "its process id " + strconv.Quote(pid) + " " + reason
		}
	}
	m.unmatched(ev, reason)
	return "", false, nil
}

// processID is the definition's ProcessID of ev, or the panic it recovers from.
func (m *Manager) processID(ev *pmd.Event) (pid string, ok bool, pe *PanicError) {
	defer catch("", "ProcessID", -1, &pe)
	pid, ok = m.def.processID(*ev)
	return pid, ok, pe
}

// stall stops the manager at ev, at which ProcessID or NoProcessID panicked (pe): its
// process cannot be told, and any later event may be of that process, so no later
// event is handled (nor a deadline checked, nor a process removed: the timer waits for
// the reader, see queuedAll) until Run starts again, which may run a fixed definition
// and reads ev again (the checkpoint stays below it). Handling the later events would
// link ev after them at the next start, out of order, or skip it as late if retention
// removed its process meanwhile. The panic is counted and logged with its stack (once:
// the reader stops); WaitIdle and WaitHandled return it. Called by the reader, which
// then returns.
func (m *Manager) stall(ev *pmd.Event, pe *PanicError) {
	m.logger.Error("pm: the definition panicked at an event whose process it cannot tell: the manager handles no event from it on until it starts again",
		"manager", m.name, "event", ev.ID, "type", ev.Type, "position", ev.Position,
		"callback", pe.Callback, "panic", pe.Value, "stack", pe.Stack)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.panics++
	m.holdLocked(ev.Position)
	m.stalled = fmt.Errorf("pm: %s: the event at position %d, and every later one, wait until Run starts again: %w", m.name, ev.Position, pe)
	m.stalledAt = ev.Position
	m.broadcastLocked()
}

// checkID is checkProcessID for a process of this manager, but for a process that a
// store written before the rules for "." and ".." and for the room of the other streams
// already holds (checkStoredProcessID passes it): that one goes on as before. Only HTTP
// cannot name a dot one; a long one goes on without the streams that cannot be named
// (fits): no snapshots, no removal marker, and its commands are not delivered
// (commandSource.deliverable).
func (m *Manager) checkID(id string) string {
	reason := checkProcessID(m.name, id)
	if reason != "" && checkStoredProcessID(m.name, id) == "" {
		if info, err := m.store.StreamInfo(m.name + "$" + id); err == nil && info.Exists {
			return ""
		}
	}
	return reason
}

// unmatched counts ev as an event of no process, and logs it unless an event of its
// type was logged less than a minute ago (a producer that leaves the correlation field
// out of every event must not flood the log, and the count in Stats is exact anyway);
// the line says how many were not logged since. Called by the reader goroutine only.
func (m *Manager) unmatched(ev *pmd.Event, reason string) {
	now := m.clock.Now()
	m.mu.Lock()
	m.unmatchedByType[ev.Type]++
	u := m.unmatchedLog[ev.Type]
	quiet, log := u.Log(now)
	m.unmatchedLog[ev.Type] = u
	m.mu.Unlock()
	if log {
		m.logger.Warn("pm: skipping a handled event that belongs to no process", "manager", m.name,
			"event", ev.ID, "type", ev.Type, "position", ev.Position, "reason", reason,
			"suppressed", quiet)
	}
}

// Stats are a manager's figures for monitoring.
type Stats struct {
	// Lag is how far the manager is behind the log, in log positions: from the oldest
	// event of a handled type not done yet to the newest one in the store, both
	// included; 0 when every one is done, or when it could not be read (LagErr).
	Lag uint64
	// LagErr is why the lag could not be read (the index's read of the newest handled
	// event failed: a damaged index, which the store reports); nil when Lag is right.
	// The other figures hold either way.
	LagErr error
	// Unmatched counts, by event type, the handled events that belonged to no process
	// since Run started: without a process id (the correlation field missing), or with
	// one that cannot name a stream.
	Unmatched map[string]uint64
	// Parked is how many commands are parked (see Options.MaxAttempts).
	Parked int
	// Removed counts the processes removed by retention (Options.Retention) since Run
	// started.
	Removed uint64
	// Late counts the handled events of removed processes, and of processes whose
	// stream was erased, since Run started: each was skipped, and started nothing.
	Late uint64
	// Undeliverable counts the commands, issued or found awaiting delivery since Run
	// started, that are not handed to Deliver because the deliveries stream of their
	// process cannot be named: processes of ids that a store written by an earlier
	// version holds, too long for "<Name>.deliveries$<id>" to fit in 256 bytes (see
	// the package doc). Each process is logged once.
	Undeliverable uint64
	// Panics counts the panics of the definition's callbacks since Run started. Each
	// holds its process (or, for ProcessID and NoProcessID, the whole manager, at the
	// event) until Run starts again: see the package doc, "When the definition panics".
	Panics uint64
}

// Stats returns the manager's figures. The lag costs one read of the index; if that
// read fails (but for ctx, a closed store or one that cannot serve it, such as a
// cluster follower), the figures say so in LagErr rather than failing: the others are
// known without it.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	newest, lagErr := m.lastHandled(ctx, m.store.LastPosition())
	if lagErr != nil && (ctx.Err() != nil || errors.Is(lagErr, pmd.ErrClosed) || errors.Is(lagErr, pmd.ErrUnavailable)) {
		return Stats{}, lagErr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Stats{Unmatched: maps.Clone(m.unmatchedByType), Removed: m.removed, Late: m.late, Undeliverable: m.undeliverable, Panics: m.panics, LagErr: lagErr}
	if low := m.low(); lagErr == nil && newest >= low {
		st.Lag = newest - low + 1
	}
	if m.delivery != nil {
		st.Parked = m.delivery.parkedLocked()
	}
	return st, nil
}

func (m *Manager) work(ctx context.Context, tasks <-chan task) error {
	batch := make([]task, 0, maxBatch)
	for {
		select {
		case t := <-tasks:
			batch = append(batch[:0], t)
		more:
			for len(batch) < maxBatch {
				select {
				case t := <-tasks:
					batch = append(batch, t)
				default:
					break more
				}
			}
			for _, group := range byProcess(batch) {
				err := m.handle(ctx, group)
				var pe *PanicError
				switch {
				case errors.As(err, &pe):
					m.hold(group[0].pid, pe, group)
				case err != nil && ctx.Err() != nil:
					return nil // stopped mid-write: the events stay in flight, so they are not checkpointed
				case err != nil:
					return err
				}
				m.done(group)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// byProcess splits tasks into the tasks of each process, each in the order given.
func byProcess(tasks []task) [][]task {
	var groups [][]task
	index := make(map[string]int, len(tasks))
	for _, t := range tasks {
		i, ok := index[t.pid]
		if !ok {
			i = len(groups)
			index[t.pid] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], t)
	}
	return groups
}

// hold holds process pid, for which a callback of the definition panicked (pe), with
// the events of tasks, which are not handled (all of them: those written already, with
// a decision made before the panic, are found linked at the next start): the panic is
// counted the first time, and the checkpoint stays below the events, so that the next
// start, which may run a fixed definition, tries them again. A panic leaves the state
// half-applied, or the decision unmade: nothing is decided for the process, and none of
// its commands issued, until then. The others go on. Of the panic only what the views
// show is kept (held), not its stack nor the value it panicked with: many processes
// may panic alike. The first panic of a process is logged with its stack unless one was
// logged less than a minute ago (an event no process expects may hold them all), the
// line counting those not logged since.
func (m *Manager) hold(pid string, pe *PanicError, tasks []task) {
	m.mu.Lock()
	first := m.held[pid] == nil
	if first {
		m.held[pid] = &PanicError{Stream: pe.Stream, Callback: pe.Callback, Version: pe.Version, Value: fmt.Sprint(pe.Value)}
	}
	for _, t := range tasks {
		if t.ev != nil {
			m.holdLocked(t.ev.Position)
		}
	}
	var quiet uint64
	log := false
	if first {
		m.panics++
		quiet, log = m.panicLog.Log(m.clock.Now())
	}
	m.mu.Unlock()
	if log {
		m.logger.Error("pm: the definition panicked: the process is held until the manager starts again",
			"manager", m.name, "process", pid, "callback", pe.Callback, "version", pe.Version,
			"panic", pe.Value, "stack", pe.Stack, "suppressed", quiet)
	}
}

// holdLocked keeps the checkpoint below the held event at pos. Call with mu held.
func (m *Manager) holdLocked(pos uint64) {
	if m.heldFrom == 0 || pos < m.heldFrom {
		m.heldFrom = pos
	}
}

// done records that tasks were handled.
func (m *Manager) done(tasks []task) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range tasks {
		if t.ev == nil {
			m.ticks--
			continue
		}
		m.inflight.finish(t.ev.Position)
	}
	if m.low() >= m.saved+uint64(m.opts.CheckpointEvery) {
		select {
		case m.kickCkpt <- struct{}{}:
		default:
		}
	}
	m.broadcastLocked()
}

// handle runs the tasks of one process to completion, retrying when another writer got
// to the process stream first.
func (m *Manager) handle(ctx context.Context, tasks []task) error {
	m.mu.Lock()
	pe := m.held[tasks[0].pid]
	m.mu.Unlock()
	if pe != nil {
		return pe
	}
	var err error
	for attempt := range maxWriteAttempts {
		err = m.try(ctx, tasks, attempt > 0)
		if !errors.Is(err, pmd.ErrWrongExpectedVersion) && !errors.Is(err, pmd.ErrDuplicateEvent) &&
			!errors.Is(err, errErasedSince) && !errors.Is(err, errFactErasedSince) {
			return err
		}
	}
	return fmt.Errorf("pm: %s$%s: gave up after %d conflicting writes: %w", m.name, tasks[0].pid, maxWriteAttempts, err)
}

// try folds the tasks' events onto the state of their process, from the cache or from
// the store, and writes the links to them together with what the process decides,
// expecting the version it folded. Links accumulate into one write until a decision
// writes records: those are read back before the next event folds, so that Apply sees
// them exactly as a replay would (with their timestamps and positions). The fold goes
// back into the cache only once everything is written; any error leaves it out.
//
// Whether an event is linked already (a redelivery after a restart) is known without
// reading the stream: events are handled in log order, so one past the highest position
// the fold has linked is new, and the write's expected version proves the fold current.
// Below it, and after a conflict (verify), the store's index answers.
func (m *Manager) try(ctx context.Context, tasks []task, verify bool) error {
	pid := tasks[0].pid
	stream := m.name + "$" + pid
	e, ok := m.cache.take(pid)
	if !ok {
		var err error
		if e, err = m.fold(ctx, pid); err != nil {
			return err
		}
		if l := e.p.ledger(); e.exists && l.erased {
			m.countErased(pid, l)
		}
	}
	if pe := e.p.failure(); pe != nil {
		return pe // the fold panicked (foundErased caches such a fold too)
	}
	if !e.exists {
		// A new process, or one retention removed: a late event must not start it again.
		gone, err := m.wasRemoved(pid)
		if err != nil {
			return err
		}
		if gone {
			for _, t := range tasks {
				if t.ev != nil {
					m.lateEvent(t.ev, pid, lateRemoved)
				}
			}
			return nil
		}
	}
	now := m.clock.Now()
	tick := false
	var changes []pmd.Change
	for _, t := range tasks {
		if t.ev == nil {
			// Decided as of when the timer queued the check, behind the events stored
			// by then, not as of now: the worker may get to it late, and a deadline
			// due since then is decided on the events stored before it, some of which
			// may be queued behind this check. It has a check of its own (settle).
			tick = true
			if err := m.decide(ctx, e, nil, t.at, now, &changes); err != nil {
				return err
			}
			continue
		}
		if t.ev.Position <= e.p.ledger().linked || verify {
			in, err := m.store.Contains(stream, t.ev.Position)
			if err != nil {
				return fmt.Errorf("pm: %s: %w", stream, err)
			}
			if in {
				continue // linked before a crash or a restart
			}
		}
		if e.p.ledger().erased {
			// Its stream was erased: the process ended, and a late event starts
			// nothing again; it is not linked either.
			m.lateEvent(t.ev, pid, lateErased)
			continue
		}
		// An event is decided at the time the store wrote it, whatever the clock says
		// now: a deadline due by then fires before it is linked, decided on the events
		// stored before it; one due later waits, even if the clock is past it, for the
		// deadline check, which runs after every event stored before it (queuedAll).
		at := t.ev.Timestamp
		if d, ok := e.p.ledger().firstDeadline(); ok && !d.Due.After(at) {
			if err := m.decide(ctx, e, nil, at, now, &changes); err != nil {
				return err
			}
		}
		ev, err := m.asStored(t.ev)
		if err != nil {
			return fmt.Errorf("pm: %s: %w", stream, err)
		}
		link := *ev
		link.Link, link.Version = true, e.next+uint64(len(changes))
		e.p.apply(&link)
		if pe := e.p.failure(); pe != nil {
			return pe // nothing of what is pending is written: the next start handles it again
		}
		changes = append(changes, pmd.LinkTo(t.ev.ID))
		if err := m.decide(ctx, e, ev, at, now, &changes); err != nil {
			return err
		}
	}
	if len(changes) > 0 {
		if err := m.write(ctx, e, changes, nil, nil); err != nil {
			return err
		}
	}
	if tick && e.exists && m.removalDue(e.p.ledger(), now) {
		return m.remove(ctx, e, now)
	}
	m.settle(pid, e.p.ledger())
	if err := m.snapshot(ctx, e); err != nil {
		return err
	}
	m.cache.put(e)
	return nil
}

// asStored returns ev, read by the subscription, as the store has it now: erased
// (Erased set, no Data or Metadata, as every read and every fold from the store shows
// it) when its stream was erased since it was read, while it waited in a worker queue.
// Folded and decided on with its data, it would put erased data into the decision; the
// erasure count (checkFactsErased) cannot tell, as a fold made after the erasure
// counts it already. The store answers from memory for a stream never erased.
func (m *Manager) asStored(ev *pmd.Event) (*pmd.Event, error) {
	if ev.Erased {
		return ev, nil
	}
	erased, err := m.store.Erased(ev.Stream, ev.Version)
	if err != nil {
		return nil, fmt.Errorf("is event %d of %s erased: %w", ev.Position, ev.Stream, err)
	}
	if !erased {
		return ev, nil
	}
	c := *ev
	c.Data, c.Metadata, c.Erased = nil, nil, true
	return &c, nil
}

// decide asks process e what it does at time at on trigger (nil: its deadlines due by
// then). If that writes records, they are written together with the changes pending
// before them, which are then done; now is the clock, for ProcessCompleted.
func (m *Manager) decide(ctx context.Context, e *entry, trigger *pmd.Event, at, now time.Time, changes *[]pmd.Change) error {
	writes, cmds, err := e.p.plan(m.ns, trigger, at, e.next+uint64(len(*changes)))
	if err != nil || len(writes) == 0 {
		return err
	}
	// A cached fold does not see an erasure that came after it: before anything is
	// decided, the first record of the stream says (one read).
	if l := e.p.ledger(); l.own >= 0 {
		gone, err := m.erasedSince(ctx, e.pid, l)
		if err != nil {
			return err
		}
		if gone {
			return m.foundErased(ctx, e, l.status())
		}
	}
	// Nor the erasure of a fact's stream, when the store erased anything since the
	// fold: the first fact it folded with its data from each stream says (one read per
	// stream). The process is then folded again, and decides on the facts as every
	// fold from the store has them (checkFactsErased).
	if err := m.checkFactsErased(ctx, e); err != nil {
		return err
	}
	if l := e.p.ledger(); m.opts.Retention.Completed > 0 && !l.done() && l.doneAfter(writes) {
		version := e.next + uint64(len(*changes)+len(writes))
		writes = append(writes, completedRecord(m.ns, m.name+"$"+e.pid, version, now, writes[len(writes)-1]))
	}
	for _, w := range writes {
		*changes = append(*changes, pmd.NewEvent(w))
	}
	if f := m.hooks.beforeDecisionWrite; f != nil {
		f(m.name + "$" + e.pid)
	}
	if err := m.write(ctx, e, *changes, writes, cmds); err != nil {
		return err
	}
	*changes = (*changes)[:0]
	return nil
}

// foundErased is what a worker does when it finds that the stream of process e was
// erased since e was folded: it folds the process again (completed, erased), moves it in
// Counts from counted, where Counts has it, to where the new fold stands (only write and
// remove count, and neither runs for a process that decides nothing), and caches the
// new fold for the retry that its error (errErasedSince) asks handle for, which then
// skips the tasks' events as late.
func (m *Manager) foundErased(ctx context.Context, e *entry, counted Status) error {
	f, err := m.fold(ctx, e.pid)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.counts.add(counted, -1)
	delete(m.counted, e.pid)
	if f.exists {
		m.counts.add(f.p.ledger().status(), 1)
		m.noteCountedLocked(e.pid, f.p.ledger())
	}
	m.mu.Unlock()
	m.cache.put(f)
	return fmt.Errorf("pm: %s$%s: %w", m.name, e.pid, errErasedSince)
}

// countErased moves process pid, which a fold from the store (it was not cached) found
// erased, in Counts from where Counts has it to completed, once: the fold cannot say
// where the process stood before the erasure, and whoever folded it last may not have
// been this manager's cache (no cache, or evicted), so nothing else moves it until a
// restart counts it again. Where Counts has it is in counted for a process with
// deadlines pending when it was last counted (their keys went with the metadata) and
// for one counted erased already; any other stood where the types of its erased
// records say (ledger.erasedStatus).
func (m *Manager) countErased(pid string, l *ledger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	from, ok := m.counted[pid]
	if !ok {
		from = l.erasedStatus()
	}
	m.counts.add(from, -1)
	m.counts.add(l.status(), 1)
	m.noteCountedLocked(pid, l)
}

// noteCountedLocked keeps in counted where Counts has process pid, whose fold is l, if
// its stream could not tell once erased (see countErased). Call with mu held.
func (m *Manager) noteCountedLocked(pid string, l *ledger) {
	if l.erased || len(l.pending) > 0 {
		m.counted[pid] = l.status()
		return
	}
	delete(m.counted, pid)
}

// write writes changes to the process stream of e, expecting the version e folded, then
// folds the records among them (writes, the last len(writes) changes) as the store has
// them.
func (m *Manager) write(ctx context.Context, e *entry, changes []pmd.Change, writes []pmd.EventData, cmds []Command) error {
	stream := m.name + "$" + e.pid
	l := e.p.ledger()
	before, existed, own := l.status(), e.exists, l.own
	expected := pmd.NoStream
	if e.exists {
		expected = pmd.AtVersion(e.next - 1)
	}
	// Refused as unavailable, the write wrote nothing: the same write is made again once
	// the store writes, the process holding meanwhile, so that nothing is decided twice
	// and its events stay in order.
	var res pmd.WriteResult
	err := m.untilWritable(ctx, "its process waits until its decision is written", func() (err error) {
		res, err = m.store.Write(ctx, stream, expected, changes...)
		return err
	})
	if errors.Is(err, pmd.ErrInvalidArgument) {
		// The link and the metadata are the runtime's own; the store refused what the
		// definition decided, and will refuse it again.
		return &DecideError{Stream: stream, Reason: "the store refused what it decided: " + err.Error()}
	}
	if err != nil {
		return fmt.Errorf("pm: write %s: %w", stream, err)
	}
	first := e.next + uint64(len(changes)-len(writes))
	e.next += uint64(len(changes))
	e.exists = true
	if f := m.hooks.afterProcessWrite; f != nil {
		f(stream)
	}
	if len(writes) > 0 {
		i := 0
		for ev, err := range m.store.ReadStream(ctx, stream, pmd.ReadOptions{From: first, Limit: len(writes)}) {
			if err != nil {
				return fmt.Errorf("pm: read back %s: %w", stream, err)
			}
			if ev.ID != writes[i].ID {
				return fmt.Errorf("pm: read back %s: version %d is %s, not the %s just written", stream, ev.Version, ev.ID, writes[i].ID)
			}
			e.p.apply(&ev)
			i++
		}
		if i != len(writes) {
			return fmt.Errorf("pm: read back %s: %d of the %d records just written", stream, i, len(writes))
		}
		if own >= 0 {
			// An erasure does not change the stream's version, so one that came
			// after decide checked the stream let this write through, after it: what
			// was decided on the erased state is erased too, before its commands are
			// handed over (the dispatcher may still read them in between if another
			// process's write wakes it), and the process folds again, ended.
			gone, err := m.erasedSince(ctx, e.pid, l)
			if err != nil {
				return err
			}
			if gone {
				if err := m.untilWritable(ctx, "its process waits until its stream is erased again", func() error {
					return m.store.EraseStream(ctx, stream)
				}); err != nil {
					return fmt.Errorf("pm: erase %s again: %w", stream, err)
				}
				return m.foundErased(ctx, e, before)
			}
		}
	}
	m.mu.Lock()
	if existed {
		m.counts.add(before, -1)
	}
	m.counts.add(l.status(), 1)
	m.noteCountedLocked(e.pid, l)
	m.mu.Unlock()
	if len(cmds) > 0 && m.cmdsrc != nil {
		m.cmdsrc.notify(res.LastPosition)
	}
	// Apply panicked at a record just written: what was decided before stands (the
	// next start folds it), and nothing more is decided on the half-applied state.
	if pe := e.p.failure(); pe != nil {
		return pe
	}
	return nil
}

// settle makes the timer follow the process's first pending deadline, or its removal.
func (m *Manager) settle(pid string, l *ledger) {
	at, ok := m.wakeAt(l)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !ok {
		m.timers.remove(pid)
		return
	}
	m.setTimerLocked(pid, at)
}

// wakeAt is when the timer must next look at a process: its first pending deadline,
// or, when it is done and retention is on, when it is to be removed. A process has
// never both: done means no deadline pending.
func (m *Manager) wakeAt(l *ledger) (time.Time, bool) {
	if d, ok := l.firstDeadline(); ok {
		return d.Due, true
	}
	if m.opts.Retention.Completed > 0 && l.done() {
		if at := l.completedAt(); !at.IsZero() {
			return at.Add(m.opts.Retention.Completed), true
		}
	}
	return time.Time{}, false
}

// setTimerLocked makes the timer check process pid at at, waking it if that is
// earlier than it sleeps until. Call with mu held.
func (m *Manager) setTimerLocked(pid string, at time.Time) {
	if m.timers.set(pid, at) && (m.sleeping.IsZero() || at.Before(m.sleeping)) {
		select {
		case m.wakeTimer <- struct{}{}:
		default:
		}
	}
}

// runTimer queues a deadline check for each process whose first deadline is due, behind
// the events stored before it (see queuedAll).
func (m *Manager) runTimer(ctx context.Context) error {
	for {
		m.mu.Lock()
		now := m.clock.Now()
		var due []string
		for {
			pid, ok := m.timers.pop(now)
			if !ok {
				break
			}
			due = append(due, pid)
		}
		m.ticks += len(due)
		next, ok := m.timers.next()
		m.sleeping = time.Time{}
		if ok {
			m.sleeping = next
		}
		m.broadcastLocked()
		m.mu.Unlock()
		if len(due) > 0 {
			if err := m.queuedAll(ctx); err != nil {
				return err
			}
		}
		for _, pid := range due {
			select {
			case m.shard(pid) <- task{pid: pid, at: now}:
			case <-ctx.Done():
				return nil
			}
		}
		var fire <-chan time.Time
		stop := func() {}
		if ok {
			fire, stop = wakeAt(m.clock, next)
		}
		select {
		case <-fire:
		case <-m.wakeTimer:
		case <-ctx.Done():
			stop()
			return nil
		}
		stop()
	}
}

// barrierRecheck is how often queuedAll looks again at the event it waits for.
const barrierRecheck = time.Second

// queuedAll returns once the reader has put every handled event in the store now into
// the worker queues. A deadline check queued after that runs after every event stored
// before the deadline was due: the timer found it due by the clock, so an event stored
// later bears a later timestamp, and an event in the queues stored after the deadline
// fires it before it is linked (try). A worker handles the tasks of one process in
// queue order, so the check cannot overtake them.
//
// The event waited for may be deleted before the reader gets to it, and then never
// queued: every barrierRecheck, queuedAll asks the store again for the last handled
// event up to it.
func (m *Manager) queuedAll(ctx context.Context) error {
	last, err := m.lastHandled(ctx, m.store.LastPosition())
	if err != nil {
		return err
	}
	recheck, stop := wakeAt(m.clock, m.clock.Now().Add(barrierRecheck))
	defer func() { stop() }()
	for {
		m.mu.Lock()
		done, fatal, changed := m.queued >= last, m.fatal, m.changed
		m.barrier = 0
		if !done && fatal == nil {
			m.barrier = last
		}
		m.mu.Unlock()
		switch {
		case fatal != nil:
			return fatal
		case done:
			return nil
		}
		select {
		case <-changed:
		case <-recheck:
			if last, err = m.lastHandled(ctx, last); err != nil {
				return err
			}
			recheck, stop = wakeAt(m.clock, m.clock.Now().Add(barrierRecheck))
		case <-ctx.Done():
			return nil
		}
	}
}

// low is the resume position: every handled event below it is done. Call with mu held.
func (m *Manager) low() uint64 {
	low := m.seen + 1
	if !m.inflight.empty() {
		low = m.inflight.first()
	}
	if m.heldFrom > 0 {
		low = min(low, m.heldFrom)
	}
	return low
}

func (m *Manager) runCheckpoints(ctx context.Context) error {
	for {
		select {
		case <-m.kickCkpt:
			err := m.saveCheckpoint(ctx)
			switch {
			case waitable(err):
				// Best effort: a lagging checkpoint costs only reading again after a
				// restart. The next handled event kicks it again.
				m.warnUnwritable(err, "the checkpoint is written later (the events after the last one written are read again at the next start, which changes nothing)")
			case err != nil && ctx.Err() == nil:
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// untilWritable calls write, a write to the store, until it does not fail as waitable
// (a full disk, an I/O error, which the store recovers from by itself once the cause is
// gone; nothing of a refused write is stored), backing off from ownRetryMin up to
// unwritableRetryMax between tries, and logging a WARN at most once a minute that
// says then, what waits. It returns write's last error, or, when ctx ends first,
// ctx's: Run's ctx, so that Close stays prompt.
func (m *Manager) untilWritable(ctx context.Context, then string, write func() error) error {
	wait := ownRetryMin
	for {
		err := write()
		if !waitable(err) {
			return err
		}
		m.warnUnwritable(err, then)
		if err := pause(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, unwritableRetryMax)
	}
}

// pause waits d, or until ctx ends: ctx's error then.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitable reports whether err, a write's, is the store's refusal of a write it cannot
// make now (pmd.ErrUnavailable: a full disk) and recovers from by itself, so that the
// write is made again later: not one from a store that stopped writing until it is
// opened again (pmd.ErrNeedsRestart), which would never land. On that one Run fails, so
// that pmd serve exits and its supervisor's restart rebuilds the store's index.
func waitable(err error) bool {
	return errors.Is(err, pmd.ErrUnavailable) && !errors.Is(err, pmd.ErrNeedsRestart)
}

// warnUnwritable logs, at most once a minute, that the store cannot write now, so that
// the manager's write err waits, or is made later (then says which), with the advice
// that fits err's cause (unwritableAdvice).
func (m *Manager) warnUnwritable(err error, then string) {
	m.mu.Lock()
	held, ok := m.unwritable.Log(m.clock.Now())
	m.mu.Unlock()
	if !ok {
		return
	}
	m.logger.Warn("pm: the store cannot write now, so the process manager cannot write: "+then+"; "+unwritableAdvice(err),
		"manager", m.name, "suppressed", held, "err", err)
}

// diskCause reports whether err, a write the store refused as unavailable, failed on a
// file of the store (a file operation's error: a full disk, an I/O error), which freeing
// the disk may cure, rather than for a cause of a cluster's, which it does not: a node
// that has no leader, is not the leader (any more, as when it stops) or was removed
// refuses the write with the reason cluster gives, naming no file.
func diskCause(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// unwritableAdvice is what an operator does about a write the store refused for err
// now: to free the disk only when its cause is one (diskCause).
func unwritableAdvice(err error) string {
	if diskCause(err) {
		return "free the disk (the store says why in its problems, /healthz)"
	}
	return "err says why (a cluster node writes only while it is the leader, which runs the process managers)"
}

// stoppedUnwritable starts the INFO line, in place of a WARN, about the last write of
// a manager or subscription that stopped, refused for a cause that is not the disk's
// (diskCause): a cluster node that stops, lost its leadership or was removed stops them,
// and then refuses their writes; the next start, on the next leader, reads again.
const stoppedUnwritable = "pm: stopped while the store cannot write (not for its disk): "

// handledTypes is the handled types, sorted, without duplicates: what a checkpoint
// carries.
func (m *Manager) handledTypes() []string {
	types := slices.Clone(m.handles)
	slices.Sort(types)
	return slices.Compact(types)
}

// saveCheckpoint writes the resume position, and the handled types it is for, if it
// moved.
func (m *Manager) saveCheckpoint(ctx context.Context) error {
	m.mu.Lock()
	low := m.low()
	moved := low > m.saved
	m.mu.Unlock()
	if !moved && !m.markPending {
		return nil
	}
	if err := m.writeCheckpoint(ctx, low, m.handledTypes()); err != nil {
		return err
	}
	m.mu.Lock()
	m.saved = max(m.saved, low)
	m.mu.Unlock()
	return nil
}

// writeCheckpoint appends a checkpoint at position for the handled types (nil: none
// recorded, as one written before checkpoints carried them). While the store holds no
// legacy mark (markPending), the checkpoint is the mark: it has the id legacyMarkID and
// the manager's legacy cutoff in legacy_before.
func (m *Manager) writeCheckpoint(ctx context.Context, position uint64, types []string) error {
	rec := pmd.EventData{Type: checkpointType, Data: map[string]any{"position": position}}
	if types != nil {
		rec.Data["types"] = types
	}
	if m.markPending {
		rec.ID = legacyMarkID(m.ns, m.name)
		rec.Data[legacyField] = m.trust.Load().legacyBefore
	}
	_, err := m.store.Append(ctx, checkpointStream(m.name), pmd.Any, rec)
	if m.markPending && errors.Is(err, pmd.ErrDuplicateEvent) {
		// The mark is stored already (dead if its stream was deleted or retention hides
		// it since, which readLegacyMark finds too): it stands.
		m.markPending = false
		return m.writeCheckpoint(ctx, position, types)
	}
	if err != nil {
		return fmt.Errorf("pm: %s: write checkpoint: %w", m.name, err)
	}
	m.markPending = false
	return nil
}

// WaitHandled returns once every handled event at or below position pos has been
// handled, or when ctx is done. Use it after an append to wait for its effects. If
// ProcessID or NoProcessID panicked at one of those events, so that the manager handles
// none from it on until Run starts again, it returns that (an error matching
// *PanicError) once the events before it are handled.
func (m *Manager) WaitHandled(ctx context.Context, pos uint64) error {
	last, err := m.lastHandled(ctx, pos)
	if err != nil {
		return err
	}
	if err := m.wait(ctx, func() bool {
		if m.stalled != nil && m.stalledAt <= last {
			return m.inflight.empty()
		}
		return m.seen >= last && (m.inflight.empty() || m.inflight.first() > last)
	}); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stalled != nil && m.stalledAt <= last {
		return m.stalled
	}
	return nil
}

// WaitIdle returns once the manager has nothing left to do for now: every handled event
// in the store is handled, no deadline is due, and (with a Deliver handler) every
// command is delivered or waiting for its next retry. It returns early when ctx is
// done or the manager failed. If ProcessID or NoProcessID panicked at an event, so that
// the manager handles none from it on until Run starts again, it returns that (an error
// matching *PanicError) once the events before it are handled and the commands
// delivered or waiting for their retries.
func (m *Manager) WaitIdle(ctx context.Context) error {
	for {
		last, err := m.lastHandled(ctx, m.store.LastPosition())
		if err != nil {
			return err
		}
		err = m.wait(ctx, func() bool {
			if m.stalled != nil {
				return m.inflight.empty() && (m.delivery == nil || m.delivery.idleLocked(m.clock.Now()))
			}
			if m.seen < last || !m.inflight.empty() || m.ticks > 0 {
				return false
			}
			if next, ok := m.timers.next(); ok && !next.After(m.clock.Now()) {
				return false
			}
			return m.delivery == nil || m.delivery.idleLocked(m.clock.Now())
		})
		if err != nil {
			return err
		}
		m.mu.Lock()
		stalled := m.stalled
		m.mu.Unlock()
		if stalled != nil {
			return stalled
		}
		again, err := m.lastHandled(ctx, m.store.LastPosition())
		if err != nil || again == last {
			return err
		}
	}
}

// lastHandled is the position of the last event at or below pos of a handled type, 0
// if none.
func (m *Manager) lastHandled(ctx context.Context, pos uint64) (uint64, error) {
	if pos == 0 {
		return 0, nil
	}
	for e, err := range m.store.ReadAll(ctx, pmd.ReadOptions{From: pos, Backward: true, Limit: 1, Types: m.handles}) {
		var ce *pmd.CorruptError
		if errors.As(err, &ce) {
			return ce.Position, nil // the reader skips it as it would handle it (read)
		}
		if err != nil {
			return 0, fmt.Errorf("pm: %s: %w", m.name, err)
		}
		return e.Position, nil
	}
	return 0, nil
}

// wait blocks until cond, called with mu held, holds.
func (m *Manager) wait(ctx context.Context, cond func() bool) error {
	for {
		m.mu.Lock()
		ok, fatal, changed := cond(), m.fatal, m.changed
		m.mu.Unlock()
		switch {
		case fatal != nil:
			return fatal
		case ok:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Counts returns how many processes are open, completed and expired. It is loaded by
// Run from the log and kept up to date as the manager writes; zero before Run.
func (m *Manager) Counts() Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts
}
