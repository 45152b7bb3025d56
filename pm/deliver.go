package pm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// Record types of the deliveries stream "<Name>.deliveries$<process id>"; see FORMAT.md.
const (
	deliveredType      = "CommandDelivered"
	deliveryFailedType = "CommandDeliveryFailed"
	parkedType         = "CommandParked"
	retriedType        = "CommandRetried"
	skippedType        = "CommandSkipped"
)

// Outcomes of a Delivery record.
const (
	OutcomeDelivered = "delivered" // the handler returned nil
	OutcomeFailed    = "failed"    // the handler failed; retried at RetryAt
	OutcomeParked    = "parked"    // MaxAttempts failures in a row: no more attempts until Retry
	OutcomeRetried   = "retried"   // Retry queued a parked or failing command again
	OutcomeSkipped   = "skipped"   // Skip gave the command up
)

// Errors of Retry and Skip.
var (
	// ErrNoDelivery: the manager has no Deliver handler, or is not running.
	ErrNoDelivery = errors.New("process manager is not delivering commands")
	// ErrCommandNotFound: the process has no command of that id awaiting delivery (it
	// was delivered or skipped, or never issued).
	ErrCommandNotFound = errors.New("command not awaiting delivery")
	// ErrCommandNotStuck: the command is being delivered, or waits behind an earlier
	// command of its process; only a parked or failing command can be retried or
	// skipped.
	ErrCommandNotStuck = errors.New("command is neither parked nor failing")
)

// AttemptInfo describes one delivery attempt, for metrics (Options.OnAttempt).
type AttemptInfo struct {
	Receiver string
	Command  Command
	Attempt  int // 1 for the first
	Duration time.Duration
	Err      error // nil when delivered
	Parked   bool  // the attempt failed and parked the command
}

// ParkedCommand is a command that failed Options.MaxAttempts times in a row and waits
// for Retry or Skip.
type ParkedCommand struct {
	Command  Command
	Receiver string
	Attempts int    // recorded so far
	Err      string // of the last attempt
}

// dispatcher hands issued commands to Options.Deliver. It reads them from the process
// streams (category <Name>) and keeps, for every process, its undelivered commands in
// the order they were issued: only the first of them (the head) is in play, so a
// process's commands go out in order. A head waits in the ready queue of its receiver
// (Options.Receiver) and runs on a goroutine of its own once fewer than
// Options.Deliverers attempts of that receiver are running: a receiver that hangs or
// fails holds up its own commands and nobody else's. A failed head waits for its retry
// time, or is parked after Options.MaxAttempts failures, still holding back the
// commands behind it until Retry or Skip. Every attempt and operator action is
// appended to the deliveries stream of the process before it takes effect in memory,
// so that load rebuilds exactly this state after a restart.
type dispatcher struct {
	m     *Manager
	spawn func(func(context.Context) error)
	wake  chan struct{} // commands were written, or a delivery changed state
	ops   sync.Mutex    // serialises Retry and Skip

	// Guarded by m.mu.
	cursor    uint64                 // next position of category <Name> to read
	notified  uint64                 // last position of a command write a worker told about
	seq       uint64                 // order of addition, for listings
	procs     map[string][]*delivery // undelivered commands of each process, in issue order
	byID      map[uuid.UUID]*delivery
	receivers map[string]*receiver
	retries   *timers // failed heads, by command id, due at their retry times
	busy      int     // attempts running
}

type receiver struct {
	ready    []*delivery // heads to start, in this order
	inflight int
}

type deliveryState int

const (
	stateQueued   deliveryState = iota // behind an earlier command of its process
	stateReady                         // the head of its process, waiting for its receiver
	stateInflight                      // being handed to the handler
	stateWaiting                       // failed; due again at retryAt
	stateParked                        // failed MaxAttempts times; waits for Retry or Skip
	stateHeld                          // Retry or Skip is recording what it does
)

type delivery struct {
	cmd         Command
	correlation string
	receiver    string
	seq         uint64
	state       deliveryState
	attempts    int // recorded, so the next is attempts+1
	failures    int // in a row since it was issued or retried: it parks at MaxAttempts
	lastErr     string
	retryAt     time.Time
}

func newDispatcher(m *Manager) *dispatcher {
	return &dispatcher{
		m:         m,
		wake:      make(chan struct{}, 1),
		procs:     make(map[string][]*delivery),
		byID:      make(map[uuid.UUID]*delivery),
		receivers: make(map[string]*receiver),
		retries:   newTimers(),
	}
}

// add queues x behind the commands of its process. Call before start, or with mu held.
func (d *dispatcher) add(x *delivery) {
	if _, dup := d.byID[x.cmd.ID]; dup {
		return
	}
	d.seq++
	x.seq = d.seq
	if d.m.opts.Receiver != nil {
		x.receiver = d.m.opts.Receiver(x.cmd)
	}
	d.byID[x.cmd.ID] = x
	q := append(d.procs[x.cmd.ProcessID], x)
	d.procs[x.cmd.ProcessID] = q
	if len(q) == 1 {
		d.headLocked(x)
	}
}

// headLocked puts x, now the first undelivered command of its process, in play.
func (d *dispatcher) headLocked(x *delivery) {
	switch x.state {
	case stateWaiting:
		d.retries.set(x.cmd.ID.String(), x.retryAt)
	case stateParked:
	default:
		d.readyLocked(x)
	}
}

func (d *dispatcher) readyLocked(x *delivery) {
	x.state = stateReady
	r := d.receivers[x.receiver]
	if r == nil {
		r = &receiver{}
		d.receivers[x.receiver] = r
	}
	r.ready = append(r.ready, x)
}

// doneLocked removes x, delivered or skipped, and puts the next command of its
// process in play.
func (d *dispatcher) doneLocked(x *delivery) {
	delete(d.byID, x.cmd.ID)
	q := d.procs[x.cmd.ProcessID]
	if i := slices.Index(q, x); i >= 0 {
		q = slices.Delete(q, i, i+1)
	}
	if len(q) == 0 {
		delete(d.procs, x.cmd.ProcessID)
		return
	}
	d.procs[x.cmd.ProcessID] = q
	if q[0].state == stateQueued {
		d.headLocked(q[0])
	}
}

// notify tells the dispatcher that commands were written up to position pos.
func (d *dispatcher) notify(pos uint64) {
	d.m.mu.Lock()
	d.notified = max(d.notified, pos)
	d.m.mu.Unlock()
	d.kick()
}

func (d *dispatcher) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// idleLocked reports whether nothing is left to deliver before the next retry is due:
// parked commands wait for an operator, not for the manager.
func (d *dispatcher) idleLocked(now time.Time) bool {
	if d.cursor <= d.notified || d.busy > 0 {
		return false
	}
	for _, r := range d.receivers {
		if len(r.ready) > 0 {
			return false
		}
	}
	next, ok := d.retries.next()
	return !ok || next.After(now)
}

func (d *dispatcher) start(spawn func(func(context.Context) error)) {
	d.m.mu.Lock()
	d.spawn = spawn
	d.m.mu.Unlock()
	spawn(d.schedule)
}

// schedule moves due retries to their receivers' queues, starts the attempts the
// receivers have room for, and reads newly written commands.
func (d *dispatcher) schedule(ctx context.Context) error {
	m := d.m
	var fire <-chan time.Time
	var fireAt time.Time
	for {
		m.mu.Lock()
		now := m.clock.Now()
		for {
			id, ok := d.retries.pop(now)
			if !ok {
				break
			}
			if x := d.byID[uuid.MustParse(id)]; x != nil && x.state == stateWaiting {
				d.readyLocked(x)
			}
		}
		d.startLocked()
		if next, ok := d.retries.next(); !ok {
			fire, fireAt = nil, time.Time{}
		} else if !next.Equal(fireAt) {
			fire, fireAt = m.clock.Until(next), next
		}
		read := d.cursor <= d.notified
		m.broadcastLocked()
		m.mu.Unlock()

		if read {
			if err := d.readCommands(ctx); err != nil {
				return err
			}
			continue
		}
		select {
		case <-fire:
			fire, fireAt = nil, time.Time{}
		case <-d.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// startLocked starts an attempt for each ready head whose receiver has room.
func (d *dispatcher) startLocked() {
	for _, r := range d.receivers {
		for r.inflight < d.m.opts.Deliverers && len(r.ready) > 0 {
			x := r.ready[0]
			r.ready[0] = nil
			r.ready = r.ready[1:]
			x.state = stateInflight
			r.inflight++
			d.busy++
			d.spawn(func(ctx context.Context) error { return d.attempt(ctx, x) })
		}
	}
}

// backoff is the wait after the n-th failed attempt: RetryMin·2^(n-1), at most RetryMax,
// of which the upper half is random, so that receivers that failed together (a webhook
// that was down) are not retried in lockstep when they come back.
func (d *dispatcher) backoff(n int) time.Duration {
	wait := d.m.opts.RetryMin
	for i := 1; i < n && wait < d.m.opts.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, d.m.opts.RetryMax)
	return wait/2 + rand.N(wait/2+1)
}

// readCommands queues the commands written since the cursor.
func (d *dispatcher) readCommands(ctx context.Context) error {
	m := d.m
	m.mu.Lock()
	from := d.cursor
	m.mu.Unlock()
	end := m.store.LastPosition()
	var found []*delivery
	for e, err := range m.store.ReadCategory(ctx, m.name, pmd.ReadOptions{From: from}) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pm: %s: read commands: %w", m.name, err)
		}
		end = max(end, e.Position)
		id, _ := strings.CutPrefix(e.Stream, m.name+"$")
		if c, ok := commandOf(e.Stream, id, &e); ok {
			corr, _ := e.Metadata[pmd.CorrelationID].(string)
			found = append(found, &delivery{cmd: c, correlation: corr})
		}
	}
	m.mu.Lock()
	for _, x := range found {
		d.add(x)
	}
	d.cursor = max(d.cursor, end+1)
	m.mu.Unlock()
	return nil
}

// attempt hands x to the handler once and records the outcome: delivered, failed and
// due again later, or failed and parked.
func (d *dispatcher) attempt(ctx context.Context, x *delivery) error {
	m := d.m
	began := time.Now()
	err := m.opts.Deliver(ctx, x.cmd)
	took := time.Since(began)
	if ctx.Err() != nil {
		return nil // stopped: the attempt is not recorded, and is made again after a restart
	}
	m.mu.Lock()
	n, failures := x.attempts+1, x.failures
	m.mu.Unlock()
	rec := Delivery{CommandID: x.cmd.ID, CommandType: x.cmd.Type, Receiver: x.receiver, Attempt: n, Outcome: OutcomeDelivered}
	var park *Delivery
	if err != nil {
		failures++
		rec.Outcome, rec.Err = OutcomeFailed, err.Error()
		if rec.Err == "" {
			rec.Err = "handler failed"
		}
		if m.opts.MaxAttempts > 0 && failures >= m.opts.MaxAttempts {
			park = &Delivery{CommandID: x.cmd.ID, CommandType: x.cmd.Type, Receiver: x.receiver, Attempt: n, Outcome: OutcomeParked, Err: rec.Err}
			m.logger.Error("pm: command parked: it failed every attempt; retry or skip it", "manager", m.name,
				"process", x.cmd.ProcessID, "command", x.cmd.ID, "type", x.cmd.Type, "receiver", x.receiver,
				"attempts", failures, "err", err)
		} else {
			rec.RetryAt = m.clock.Now().Add(d.backoff(failures))
			m.logger.Warn("pm: command delivery failed", "manager", m.name, "process", x.cmd.ProcessID,
				"command", x.cmd.ID, "type", x.cmd.Type, "receiver", x.receiver, "attempt", n, "retry_at", rec.RetryAt, "err", err)
		}
	}
	recs := []Delivery{rec}
	if park != nil {
		recs = append(recs, *park)
	}
	if werr := d.record(ctx, x, recs...); werr != nil {
		if ctx.Err() != nil || errors.Is(werr, pmd.ErrClosed) {
			return nil
		}
		return werr
	}
	m.mu.Lock()
	x.attempts = n
	r := d.receivers[x.receiver]
	r.inflight--
	d.busy--
	switch {
	case err == nil:
		d.doneLocked(x)
	case park != nil:
		x.state, x.failures, x.lastErr = stateParked, failures, rec.Err
	default:
		x.state, x.failures, x.lastErr, x.retryAt = stateWaiting, failures, rec.Err, rec.RetryAt
		d.retries.set(x.cmd.ID.String(), rec.RetryAt)
	}
	m.broadcastLocked()
	m.mu.Unlock()
	d.kick()
	if m.opts.OnAttempt != nil {
		m.opts.OnAttempt(AttemptInfo{Receiver: x.receiver, Command: x.cmd, Attempt: n, Duration: took, Err: err, Parked: park != nil})
	}
	return nil
}

// record appends records about x to the deliveries stream of its process, in one write.
func (d *dispatcher) record(ctx context.Context, x *delivery, recs ...Delivery) error {
	corr := x.correlation
	if corr == "" {
		corr = x.cmd.ID.String()
	}
	changes := make([]pmd.Change, len(recs))
	for i, rec := range recs {
		changes[i] = pmd.NewEvent(pmd.EventData{
			Type: rec.recordType(),
			Data: rec.data(),
			Metadata: map[string]any{
				pmd.CausationID:   x.cmd.ID.String(),
				pmd.CorrelationID: corr,
			},
		})
	}
	stream := deliveriesStream(d.m.name, x.cmd.ProcessID)
	if _, err := d.m.store.Write(ctx, stream, pmd.Any, changes...); err != nil {
		return fmt.Errorf("pm: %s: record delivery: %w", stream, err)
	}
	return nil
}

// Retry queues the parked or failing command id of process processID for delivery at
// once, its count of failures towards Options.MaxAttempts started again. The retry is
// recorded in the deliveries stream (CommandRetried) first.
func (m *Manager) Retry(ctx context.Context, processID string, id uuid.UUID) error {
	return m.operate(ctx, processID, id, OutcomeRetried)
}

// Skip gives up the parked or failing command id of process processID: it is never
// attempted again, and the commands behind it go out. The skip is recorded in the
// deliveries stream (CommandSkipped) first.
func (m *Manager) Skip(ctx context.Context, processID string, id uuid.UUID) error {
	return m.operate(ctx, processID, id, OutcomeSkipped)
}

func (m *Manager) operate(ctx context.Context, processID string, id uuid.UUID, outcome string) error {
	m.mu.Lock()
	d := m.delivery
	running := d != nil && d.spawn != nil
	m.mu.Unlock()
	if !running {
		return fmt.Errorf("pm: %s: %w", m.name, ErrNoDelivery)
	}
	d.ops.Lock()
	defer d.ops.Unlock()
	m.mu.Lock()
	x := d.byID[id]
	if x == nil || x.cmd.ProcessID != processID {
		m.mu.Unlock()
		return fmt.Errorf("pm: %s$%s: command %s: %w", m.name, processID, id, ErrCommandNotFound)
	}
	was := x.state
	if was != stateParked && was != stateWaiting {
		m.mu.Unlock()
		return fmt.Errorf("pm: %s$%s: command %s: %w", m.name, processID, id, ErrCommandNotStuck)
	}
	// Held, it is neither retried by its timer nor started while the record is written.
	x.state = stateHeld
	d.retries.remove(id.String())
	m.mu.Unlock()

	rec := Delivery{CommandID: id, CommandType: x.cmd.Type, Receiver: x.receiver, Attempt: x.attempts, Outcome: outcome}
	err := d.record(ctx, x, rec)

	m.mu.Lock()
	switch {
	case err != nil:
		x.state = was
		if was == stateWaiting {
			d.retries.set(id.String(), x.retryAt)
		}
	case outcome == OutcomeSkipped:
		d.doneLocked(x)
	default:
		x.failures = 0
		d.readyLocked(x)
	}
	m.broadcastLocked()
	m.mu.Unlock()
	d.kick()
	if err != nil {
		return err
	}
	m.logger.Info("pm: command "+outcome+" by hand", "manager", m.name, "process", processID, "command", id, "type", x.cmd.Type)
	return nil
}

// Parked lists the parked commands, in the order they were issued. It is empty
// unless Run runs with a Deliver handler.
func (m *Manager) Parked() []ParkedCommand {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.delivery
	if d == nil {
		return nil
	}
	var xs []*delivery
	for _, x := range d.byID {
		if x.state == stateParked {
			xs = append(xs, x)
		}
	}
	slices.SortFunc(xs, func(a, b *delivery) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]ParkedCommand, len(xs))
	for i, x := range xs {
		out[i] = ParkedCommand{Command: x.cmd, Receiver: x.receiver, Attempts: x.attempts, Err: x.lastErr}
	}
	return out
}

// parkedLocked counts the parked commands.
func (d *dispatcher) parkedLocked() int {
	n := 0
	for _, x := range d.byID {
		if x.state == stateParked {
			n++
		}
	}
	return n
}

func (rec Delivery) recordType() string {
	switch rec.Outcome {
	case OutcomeDelivered:
		return deliveredType
	case OutcomeParked:
		return parkedType
	case OutcomeRetried:
		return retriedType
	case OutcomeSkipped:
		return skippedType
	default:
		return deliveryFailedType
	}
}

func (rec Delivery) data() map[string]any {
	data := map[string]any{
		"command_id":   rec.CommandID.String(),
		"command_type": rec.CommandType,
		"attempt":      rec.Attempt,
	}
	if rec.Receiver != "" {
		data["receiver"] = rec.Receiver
	}
	if rec.Err != "" {
		data["error"] = rec.Err
	}
	if !rec.RetryAt.IsZero() {
		data["retry_at"] = rec.RetryAt.UTC().Format(time.RFC3339Nano)
	}
	return data
}

// deliveryOf reads a record of a deliveries stream.
func deliveryOf(e *pmd.Event) (Delivery, bool) {
	var outcome string
	switch e.Type {
	case deliveredType:
		outcome = OutcomeDelivered
	case deliveryFailedType:
		outcome = OutcomeFailed
	case parkedType:
		outcome = OutcomeParked
	case retriedType:
		outcome = OutcomeRetried
	case skippedType:
		outcome = OutcomeSkipped
	default:
		return Delivery{}, false
	}
	s, _ := e.Data["command_id"].(string)
	id, err := uuid.Parse(s)
	if err != nil {
		return Delivery{}, false
	}
	n, _ := asUint64(e.Data["attempt"])
	d := Delivery{CommandID: id, Attempt: int(n), At: e.Timestamp, Outcome: outcome}
	d.CommandType, _ = e.Data["command_type"].(string)
	d.Receiver, _ = e.Data["receiver"].(string)
	d.Err, _ = e.Data["error"].(string)
	if at, ok := e.Data["retry_at"].(string); ok {
		d.RetryAt, _ = time.Parse(time.RFC3339Nano, at)
	}
	if (outcome == OutcomeFailed || outcome == OutcomeParked) && d.Err == "" {
		d.Err = "handler failed"
	}
	return d, true
}

// history is what the deliveries stream says about one command, folded in order.
type history struct {
	done     bool // delivered or skipped
	parked   bool
	attempts int
	failures int // in a row since it was issued or retried
	lastErr  string
	retryAt  time.Time // of the last failure, when it is due again
}

func (h *history) observe(d Delivery) {
	if h.done {
		return
	}
	h.attempts = max(h.attempts, d.Attempt)
	switch d.Outcome {
	case OutcomeDelivered, OutcomeSkipped:
		h.done = true
	case OutcomeFailed:
		h.failures++
		h.lastErr, h.retryAt = d.Err, d.RetryAt
	case OutcomeParked:
		h.parked, h.lastErr = true, d.Err
	case OutcomeRetried:
		h.parked, h.failures, h.retryAt = false, 0, time.Time{}
	}
}

// resume is the delivery of command c as its history leaves it.
func (h *history) resume(c Command, correlation string) *delivery {
	x := &delivery{cmd: c, correlation: correlation}
	if h == nil {
		return x
	}
	x.attempts, x.failures, x.lastErr = h.attempts, h.failures, h.lastErr
	switch {
	case h.parked:
		x.state = stateParked
	case h.failures > 0 && !h.retryAt.IsZero():
		// Due at its recorded time, not at once: a restart does not retry every
		// failing command in a burst.
		x.state, x.retryAt = stateWaiting, h.retryAt
	}
	return x
}
