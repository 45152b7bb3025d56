package pm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// dispatcher hands issued commands to Options.Deliver: it reads them from the process
// streams (category <Name>), queues them, runs the handler on a few goroutines, and
// records every attempt in the stream "<Name>.deliveries$<process id>". Its state is
// guarded by the Manager's mu.
type dispatcher struct {
	m       *Manager
	wake    chan struct{}    // a worker wrote commands
	work    chan *delivery   // to the deliverers
	results chan attemptDone // from the deliverers

	// Guarded by m.mu.
	cursor   uint64 // next position of category <Name> to read
	notified uint64 // last position of a command write a worker told about
	ready    []*delivery
	waiting  map[string]*delivery // failed, by command id, due in retries
	retries  *timers
	busy     int // deliveries running
}

type delivery struct {
	cmd         Command
	correlation string
	attempts    int // recorded so far
}

type attemptDone struct {
	d       *delivery
	err     error
	retryAt time.Time
}

func newDispatcher(m *Manager) *dispatcher {
	return &dispatcher{
		m:       m,
		wake:    make(chan struct{}, 1),
		work:    make(chan *delivery),
		results: make(chan attemptDone, deliveryQueueLength),
		waiting: make(map[string]*delivery),
		retries: newTimers(),
	}
}

// add queues d for delivery now. Call before start, or with mu held.
func (d *dispatcher) add(x *delivery) { d.ready = append(d.ready, x) }

// notify tells the dispatcher that commands were written up to position pos.
func (d *dispatcher) notify(pos uint64) {
	d.m.mu.Lock()
	d.notified = max(d.notified, pos)
	d.m.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// idleLocked reports whether nothing is left to deliver before the next retry is due.
func (d *dispatcher) idleLocked(now time.Time) bool {
	if d.cursor <= d.notified || len(d.ready) > 0 || d.busy > 0 {
		return false
	}
	next, ok := d.retries.next()
	return !ok || next.After(now)
}

func (d *dispatcher) start(ctx context.Context, spawn func(func(context.Context) error)) {
	spawn(d.schedule)
	for range d.m.opts.Deliverers {
		spawn(d.deliver)
	}
}

// schedule owns the queue: it feeds the deliverers, takes their results, moves due
// retries back to the queue and reads newly written commands.
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
			d.ready = append(d.ready, d.waiting[id])
			delete(d.waiting, id)
		}
		var head *delivery
		var out chan<- *delivery
		if len(d.ready) > 0 {
			head, out = d.ready[0], d.work
		}
		if next, ok := d.retries.next(); !ok {
			fire, fireAt = nil, time.Time{}
		} else if !next.Equal(fireAt) {
			fire, fireAt = m.clock.Until(next), next
		}
		m.broadcastLocked()
		m.mu.Unlock()

		select {
		case out <- head:
			m.mu.Lock()
			d.ready[0] = nil
			d.ready = d.ready[1:]
			d.busy++
			m.mu.Unlock()
		case r := <-d.results:
			m.mu.Lock()
			d.busy--
			if r.err != nil {
				id := r.d.cmd.ID.String()
				d.waiting[id] = r.d
				d.retries.set(id, r.retryAt)
			}
			m.mu.Unlock()
		case <-fire:
			fire, fireAt = nil, time.Time{}
		case <-d.wake:
			if err := d.readCommands(ctx); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
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
	d.ready = append(d.ready, found...)
	d.cursor = max(d.cursor, end+1)
	m.mu.Unlock()
	return nil
}

// deliver runs the handler for each delivery it is given and records the attempt.
func (d *dispatcher) deliver(ctx context.Context) error {
	m := d.m
	for {
		var x *delivery
		select {
		case x = <-d.work:
		case <-ctx.Done():
			return nil
		}
		err := m.opts.Deliver(ctx, x.cmd)
		if ctx.Err() != nil {
			return nil // stopped: the attempt is not recorded, and is made again after a restart
		}
		x.attempts++
		rec := Delivery{CommandID: x.cmd.ID, CommandType: x.cmd.Type, Attempt: x.attempts}
		if err != nil {
			rec.Err = err.Error()
			if rec.Err == "" {
				rec.Err = "handler failed"
			}
			rec.RetryAt = m.clock.Now().Add(d.backoff(x.attempts))
			m.logger.Warn("pm: command delivery failed", "manager", m.name, "process", x.cmd.ProcessID,
				"command", x.cmd.ID, "type", x.cmd.Type, "attempt", x.attempts, "retry_at", rec.RetryAt, "err", err)
		}
		if err := d.record(ctx, x, rec); err != nil {
			if ctx.Err() != nil || errors.Is(err, pmd.ErrClosed) {
				return nil
			}
			return err
		}
		select {
		case d.results <- attemptDone{x, err, rec.RetryAt}:
		case <-ctx.Done():
			return nil
		}
	}
}

// record appends one delivery attempt to the process's deliveries stream.
func (d *dispatcher) record(ctx context.Context, x *delivery, rec Delivery) error {
	typ := deliveredType
	data := map[string]any{
		"command_id":   rec.CommandID.String(),
		"command_type": rec.CommandType,
		"attempt":      rec.Attempt,
	}
	if !rec.Delivered() {
		typ = deliveryFailedType
		data["error"] = rec.Err
		data["retry_at"] = rec.RetryAt.UTC().Format(time.RFC3339Nano)
	}
	corr := x.correlation
	if corr == "" {
		corr = x.cmd.ID.String()
	}
	stream := deliveriesStream(d.m.name, x.cmd.ProcessID)
	_, err := d.m.store.Append(ctx, stream, pmd.Any, pmd.EventData{
		Type: typ,
		Data: data,
		Metadata: map[string]any{
			pmd.CausationID:   x.cmd.ID.String(),
			pmd.CorrelationID: corr,
		},
	})
	if err != nil {
		return fmt.Errorf("pm: %s: record delivery: %w", stream, err)
	}
	return nil
}

// deliveryOf reads a delivery attempt record.
func deliveryOf(e *pmd.Event) (Delivery, bool) {
	if e.Type != deliveredType && e.Type != deliveryFailedType {
		return Delivery{}, false
	}
	s, _ := e.Data["command_id"].(string)
	id, err := uuid.Parse(s)
	if err != nil {
		return Delivery{}, false
	}
	n, _ := asUint64(e.Data["attempt"])
	d := Delivery{CommandID: id, Attempt: int(n), At: e.Timestamp}
	d.CommandType, _ = e.Data["command_type"].(string)
	if e.Type == deliveryFailedType {
		d.Err, _ = e.Data["error"].(string)
		if d.Err == "" {
			d.Err = "handler failed"
		}
		if at, ok := e.Data["retry_at"].(string); ok {
			d.RetryAt, _ = time.Parse(time.RFC3339Nano, at)
		}
	}
	return d, true
}
