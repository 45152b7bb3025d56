package pm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd"
)

// Options configures a Manager. The zero value is ready to use.
type Options struct {
	// Workers is how many processes are handled at once. The events of one process
	// always go to the same worker, in log order. 0 means 32: enough concurrent writes
	// for the store's group commit to share each fsync among many processes.
	Workers int
	// Clock is the time deadlines and delivery retries follow; nil is the wall clock.
	Clock Clock
	// Logger receives skipped events and failed deliveries; nil means slog.Default().
	Logger *slog.Logger
	// CheckpointEvery is how far, in log positions, the resume checkpoint may lag behind
	// the handled events before it is written again; 0 means 1000. A lagging checkpoint
	// costs only re-reading on restart: handling an event twice is a no-op.
	CheckpointEvery int
	// Deliver, if set, is handed every issued command, at least once.
	Deliver Handler
	// Deliverers is how many deliveries run at once; 0 means 4.
	Deliverers int
	// RetryMin and RetryMax bound the back-off between delivery attempts of a command:
	// the n-th retry waits RetryMin·2^(n-1), at most RetryMax, less a random part of up to
	// half (jitter). 0 means 100ms and 1 minute.
	RetryMin, RetryMax time.Duration
}

// Handler receives issued commands. It may be called more than once for a command
// (after a crash, or when an error was returned); Command.ID is stable, so it can drop
// duplicates. An error makes the command retried later, with back-off.
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
	name    string
	handles []string
	opts    Options
	clock   Clock
	logger  *slog.Logger
	started atomic.Bool

	// Set by Run before its goroutines start.
	shards    []chan task
	wakeTimer chan struct{} // the deadline timer: an earlier deadline was set
	kickCkpt  chan struct{}
	delivery  *dispatcher

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change WaitIdle may wait for
	fatal    error
	counts   Counts
	inflight window
	seen     uint64 // position of the last event the reader took
	saved    uint64 // resume position last written
	timers   *timers
	sleeping time.Time // when the deadline timer wakes; zero when it has nothing to wait for
	ticks    int       // deadline checks queued or running
}

// task is one thing for a worker to do for a process: handle an event, or (ev nil)
// check its deadlines.
type task struct {
	pid string
	ev  *pmd.Event
}

// Streams of a manager besides the process streams "<Name>$<id>". The names cannot
// clash with another manager's process streams: a Name has no '.'.
func checkpointStream(name string) string     { return name + ".checkpoint" }
func deliveriesStream(name, id string) string { return name + ".deliveries$" + id }

// Record types of those streams.
const (
	checkpointType      = "Checkpoint"
	deliveredType       = "CommandDelivered"
	deliveryFailedType  = "CommandDeliveryFailed"
	maxWriteAttempts    = 64
	defaultWorkers      = 32
	defaultCheckpoint   = 1000
	defaultDeliverers   = 4
	defaultRetryMin     = 100 * time.Millisecond
	defaultRetryMax     = time.Minute
	streamsPageSize     = 1000
	shardQueueCapacity  = 64
	deliveryQueueLength = 64
)

// New returns a Manager running def on store. Nothing happens until Run.
func New[S any](store *pmd.Store, def Definition[S], opts Options) (*Manager, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("pm: %s: the store is nil", def.Name)
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
	if opts.RetryMin <= 0 {
		opts.RetryMin = defaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = defaultRetryMax
	}
	m := &Manager{
		store:   store,
		def:     def,
		name:    def.Name,
		handles: append([]string(nil), def.Handles...),
		opts:    opts,
		clock:   opts.Clock,
		logger:  opts.Logger,
		changed: make(chan struct{}),
		timers:  newTimers(),
	}
	if m.clock == nil {
		m.clock = systemClock{}
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	return m, nil
}

// Name is the process manager's name.
func (m *Manager) Name() string { return m.name }

// Run handles events until ctx is done, then writes the resume checkpoint and returns
// nil; it returns early with an error if the store fails or closes, or if the
// definition decides something the runtime refuses (ErrInvalidDefinition). A Manager
// runs once.
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
		m.delivery.start(ctx, spawn)
	}
	<-ctx.Done()
	wg.Wait()

	m.mu.Lock()
	fatal := m.fatal
	m.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	if err := m.saveCheckpoint(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pmd.ErrClosed) {
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
		if err != nil {
			return fmt.Errorf("pm: %s: subscription: %w", m.name, err)
		}
		pid, ok := m.processOf(&ev)
		m.mu.Lock()
		m.seen = ev.Position
		if ok {
			m.inflight.add(ev.Position)
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
	}
	return nil
}

// processOf returns the process of a handled event, logging and skipping an event whose
// process id cannot name a stream.
func (m *Manager) processOf(ev *pmd.Event) (string, bool) {
	pid, ok := m.def.processID(*ev)
	if !ok {
		return "", false
	}
	if reason := checkProcessID(m.name, pid); reason != "" {
		m.logger.Warn("pm: skipping an event whose process id cannot name a stream",
			"manager", m.name, "event", ev.ID, "type", ev.Type, "position", ev.Position,
			"process", pid, "reason", reason)
		return "", false
	}
	return pid, true
}

func (m *Manager) work(ctx context.Context, tasks <-chan task) error {
	for {
		select {
		case t := <-tasks:
			if err := m.handle(ctx, t); err != nil {
				if ctx.Err() != nil {
					return nil // stopped mid-write: the event stays in flight, so it is not checkpointed
				}
				return err
			}
			m.mu.Lock()
			if t.ev != nil {
				m.inflight.finish(t.ev.Position)
				if m.low() >= m.saved+uint64(m.opts.CheckpointEvery) {
					select {
					case m.kickCkpt <- struct{}{}:
					default:
					}
				}
			} else {
				m.ticks--
			}
			m.broadcastLocked()
			m.mu.Unlock()
		case <-ctx.Done():
			return nil
		}
	}
}

// handle runs one task to completion, retrying when another writer got to the process
// stream first.
func (m *Manager) handle(ctx context.Context, t task) error {
	var err error
	for range maxWriteAttempts {
		err = m.try(ctx, t)
		if !errors.Is(err, pmd.ErrWrongExpectedVersion) && !errors.Is(err, pmd.ErrDuplicateEvent) {
			return err
		}
	}
	return fmt.Errorf("pm: %s$%s: gave up after %d conflicting writes: %w", m.name, t.pid, maxWriteAttempts, err)
}

// try replays the process stream, and writes the link to the task's event together with
// what the process decides, in one write expecting the version it replayed.
func (m *Manager) try(ctx context.Context, t task) error {
	stream := m.name + "$" + t.pid
	p := m.def.start(t.pid)
	exists := false
	for e, err := range m.store.ReadStream(ctx, stream, pmd.ReadOptions{}) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("pm: read %s: %w", stream, err)
		}
		exists = true
		p.apply(&e)
	}
	l := p.ledger()
	before := l.status()
	expected, next := pmd.NoStream, uint64(0)
	if exists {
		expected, next = pmd.AtVersion(uint64(l.last)), uint64(l.last+1)
	} else {
		// Never written, or deleted: versions go on from the last one ever assigned.
		info, err := m.store.StreamInfo(stream)
		if err != nil {
			return fmt.Errorf("pm: %s: %w", stream, err)
		}
		next = uint64(info.Version + 1)
	}
	var changes []pmd.Change
	if t.ev != nil {
		if p.has(t.ev.ID) {
			m.settle(t.pid, l) // a redelivery: linked before a crash or a restart
			return nil
		}
		link := *t.ev
		link.Link, link.Version = true, next
		p.apply(&link)
		next++
		changes = append(changes, pmd.LinkTo(t.ev.ID))
	}
	writes, cmds, err := p.plan(t.ev, m.clock.Now(), next)
	if err != nil {
		return err
	}
	if len(changes)+len(writes) == 0 {
		m.settle(t.pid, l)
		return nil
	}
	for _, w := range writes {
		changes = append(changes, pmd.NewEvent(w))
	}
	res, err := m.store.Write(ctx, stream, expected, changes...)
	if errors.Is(err, pmd.ErrInvalidArgument) {
		// The link and the metadata are the runtime's own; the store refused what the
		// definition decided, and will refuse it again.
		return &DecideError{Stream: stream, Reason: "the store refused what it decided: " + err.Error()}
	}
	if err != nil {
		return fmt.Errorf("pm: write %s: %w", stream, err)
	}
	for i, w := range writes {
		l.observe(stream, &pmd.Event{ID: w.ID, Type: w.Type, Data: w.Data, Metadata: w.Metadata,
			Stream: stream, Version: next + uint64(i)})
	}
	m.mu.Lock()
	if exists {
		m.counts.add(before, -1)
	}
	m.counts.add(l.status(), 1)
	m.mu.Unlock()
	m.settle(t.pid, l)
	if len(cmds) > 0 && m.delivery != nil {
		m.delivery.notify(res.LastPosition)
	}
	return nil
}

// settle makes the deadline timer follow the process's pending deadlines.
func (m *Manager) settle(pid string, l *ledger) {
	ds := l.deadlines()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(ds) == 0 {
		m.timers.remove(pid)
		return
	}
	if m.timers.set(pid, ds[0].Due) && (m.sleeping.IsZero() || ds[0].Due.Before(m.sleeping)) {
		select {
		case m.wakeTimer <- struct{}{}:
		default:
		}
	}
}

// runTimer queues a deadline check for each process whose first deadline is due.
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
		for _, pid := range due {
			select {
			case m.shard(pid) <- task{pid: pid}:
			case <-ctx.Done():
				return nil
			}
		}
		var fire <-chan time.Time
		if ok {
			fire = m.clock.Until(next)
		}
		select {
		case <-fire:
		case <-m.wakeTimer:
		case <-ctx.Done():
			return nil
		}
	}
}

// low is the resume position: every handled event below it is done. Call with mu held.
func (m *Manager) low() uint64 {
	if m.inflight.empty() {
		return m.seen + 1
	}
	return m.inflight.first()
}

func (m *Manager) runCheckpoints(ctx context.Context) error {
	for {
		select {
		case <-m.kickCkpt:
			if err := m.saveCheckpoint(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// saveCheckpoint writes the resume position if it moved.
func (m *Manager) saveCheckpoint(ctx context.Context) error {
	m.mu.Lock()
	low := m.low()
	moved := low > m.saved
	m.mu.Unlock()
	if !moved {
		return nil
	}
	_, err := m.store.Append(ctx, checkpointStream(m.name), pmd.Any, pmd.EventData{
		Type: checkpointType,
		Data: map[string]any{"position": low},
	})
	if err != nil {
		return fmt.Errorf("pm: %s: write checkpoint: %w", m.name, err)
	}
	m.mu.Lock()
	m.saved = max(m.saved, low)
	m.mu.Unlock()
	return nil
}

// WaitHandled returns once every handled event at or below position pos has been
// handled, or when ctx is done. Use it after an append to wait for its effects.
func (m *Manager) WaitHandled(ctx context.Context, pos uint64) error {
	last, err := m.lastHandled(ctx, pos)
	if err != nil {
		return err
	}
	return m.wait(ctx, func() bool {
		return m.seen >= last && (m.inflight.empty() || m.inflight.first() > last)
	})
}

// WaitIdle returns once the manager has nothing left to do for now: every handled event
// in the store is handled, no deadline is due, and (with a Deliver handler) every
// command is delivered or waiting for its next retry. It returns early when ctx is
// done or the manager failed.
func (m *Manager) WaitIdle(ctx context.Context) error {
	for {
		last, err := m.lastHandled(ctx, m.store.LastPosition())
		if err != nil {
			return err
		}
		err = m.wait(ctx, func() bool {
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
