package pm

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/logevery"
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

// AttemptInfo describes one delivery attempt, for metrics (Options.OnAttempt,
// SubscriptionOptions.OnAttempt).
type AttemptInfo struct {
	Receiver string
	Command  Command   // the command as handed to Deliver (Data nil if the attempt failed reading or decoding it: Options.QueueBytes); zero for a subscription's event
	Event    pmd.Event // the event a subscription delivered; zero for a command
	Attempt  int       // 1 for the first
	Duration time.Duration
	Err      error // nil when delivered
	Parked   bool  // the attempt failed and parked the command
}

// ParkedCommand is a command that failed Options.MaxAttempts times in a row and waits
// for Retry or Skip.
type ParkedCommand struct {
	Command  Command
	Position uint64 // of the command's record: Parked lists them in its order
	Receiver string
	Attempts int    // recorded so far
	Err      string // of the last attempt
}

// dispatcher hands items to a handler, at least once: the commands a Manager issues,
// or the events of a Subscription. It is the one delivery machinery of the package; what
// differs between the two (where items come from, how outcomes are recorded, the
// handler) is its source.
//
// Items are kept in order per ordering key (the process id of a command; one key for
// all the events of a subscription): only the first undelivered item of a key (the
// head) is in play, so a key's items go out in order. A head waits in the ready queue
// of its receiver and runs on a goroutine of its own once fewer than deliverers
// attempts of that receiver are running: a receiver that hangs or fails holds up its
// own items and nobody else's. An attempt still running after hangAfter is late; it
// stops counting against deliverers (it is hung) only when the head of another key
// waits for its receiver and no attempt of the receiver that was not hung ended since
// the late one began, so that a key whose attempt hangs holds back its own items only, while a
// receiver that is merely slow (it still answers) keeps deliverers attempts at most.
// Hung attempts still count against hungFactor·deliverers attempts per receiver in
// all, which bounds the goroutines a receiver that never answers can tie up. A failed head waits for its retry time, or is parked
// after maxAttempts failures, still holding back the items behind it until Retry or
// Skip. Every failure and operator action is recorded by the source before it takes
// effect in memory, so that a restart rebuilds exactly this state.
type dispatcher struct {
	mu      *sync.Mutex // the owner's lock: it guards the fields below marked so
	changed func()      // the owner's broadcast, called with mu held after every change
	src     source
	opts    deliveryOptions
	clock   Clock
	logger  *slog.Logger
	spawn   func(func(context.Context) error)
	wake    chan struct{} // items were added, or a delivery changed state
	ops     sync.Mutex    // serialises Retry and Skip

	// Guarded by mu.
	seq       uint64                    // order of addition, for listings
	queues    map[string][]*delivery    // undelivered items of each ordering key, in order
	byID      map[uuid.UUID][]*delivery // undelivered items of each id: one, but for the copies of an event a subscription reads at two counts (see add)
	receivers map[string]*receiver
	retries   *timers[deliveryRef] // failed heads, due at their retry times
	hangs     *timers[deliveryRef] // attempts running, due to count as hung at hangAfter
	busy      int                  // attempts running
	held      int                  // bytes of data the items hold (their size), at most opts.holdBytes
	lastErr   string               // of the last failed attempt, and when it failed
	lastErrAt time.Time
}

// deliveryOptions are the options of a dispatcher, defaults applied.
type deliveryOptions struct {
	deliverers, maxAttempts int
	retryMin, retryMax      time.Duration
	hangAfter               time.Duration // 0: an attempt never counts as hung
	onAttempt               func(AttemptInfo)
	// holdBytes bounds the data the queued commands hold (their sizes in all); past
	// it, a command added holds none and its attempts read it again (reread). 0
	// holds none.
	holdBytes int
}

// hungFactor bounds the attempts of one receiver, hung ones included, to hungFactor
// times deliverers: past that, a receiver that never answers holds back the other keys
// after all, rather than tie up goroutines without limit.
const hungFactor = 16

// source is what the owner of a dispatcher does for it.
type source interface {
	// deliver hands x to the handler, once, and returns the command it handed over
	// (zero for an event), for OnAttempt: the item itself holds a command's data
	// encoded, or not at all.
	deliver(ctx context.Context, x *delivery) (Command, error)
	// record writes recs, about x, to the store in one write. A failure, parking,
	// retry or skip is recorded before it takes effect; a delivery after it is made.
	record(ctx context.Context, x *delivery, recs ...Delivery) error
	// pendingLocked reports, with mu held, whether items may wait to be read.
	pendingLocked() bool
	// read adds the items written since the last read (add, with mu held).
	read(ctx context.Context) error
	// attrs are the log attributes of x.
	attrs(x *delivery) []any
}

type receiver struct {
	ready    []*delivery   // heads to start, in this order
	inflight int           // attempts running, not hung
	hung     int           // attempts running for longer than hangAfter, their slots given up
	late     []*delivery   // attempts running for longer than hangAfter, still in inflight
	answers  uint64        // attempts of the receiver that ended not hung: answers, however slow
	hangLog  logevery.Line // of the warnings that an attempt hangs
}

type deliveryState int

const (
	stateQueued   deliveryState = iota // behind an earlier item of its key
	stateReady                         // the head of its key, waiting for its receiver
	stateInflight                      // being handed to the handler
	stateWaiting                       // failed; due again at retryAt
	stateParked                        // failed maxAttempts times; waits for Retry or Skip
	stateHeld                          // Retry or Skip is recording what it does
)

// delivery is one item to deliver: a command, or an event of a subscription.
type delivery struct {
	id          uuid.UUID
	typ         string
	key         string     // ordering key
	cmd         Command    // a command's
	ev          *pmd.Event // a subscription's event
	pos         uint64     // a subscription's count of the event: its position, or its version in the stream
	correlation string
	receiver    string
	seq         uint64
	at          uint64 // a command's: the position of its record, Parked's order and cursor
	state       deliveryState
	attempts    int // recorded, so the next is attempts+1
	failures    int // in a row since it was added or retried: it parks at maxAttempts
	lastErr     string
	retryAt     time.Time
	startedAt   time.Time // of the running attempt
	answersThen uint64    // its receiver's answers when the attempt started
	hung        bool      // inflight for longer than hangAfter: not counted in its receiver's inflight
	answered    bool      // the handler returned, not hung: the attempt waits for its record only
	// data is a command's data, encoded as the store keeps it (pmd.EncodeData; cmd
	// holds no Data), and size its length, counted in the dispatcher's held; each
	// attempt decodes it. reread says the item holds none, past holdBytes: each attempt
	// reads the command's record again.
	data   []byte
	size   int
	reread bool
}

func newDispatcher(mu *sync.Mutex, changed func(), src source, opts deliveryOptions, clock Clock, logger *slog.Logger) *dispatcher {
	return &dispatcher{
		mu:        mu,
		changed:   changed,
		src:       src,
		opts:      opts,
		clock:     clock,
		logger:    logger,
		wake:      make(chan struct{}, 1),
		queues:    make(map[string][]*delivery),
		byID:      make(map[uuid.UUID][]*delivery),
		receivers: make(map[string]*receiver),
		retries:   newTimers(deliveryRef.compare),
		hangs:     newTimers(deliveryRef.compare),
	}
}

// add queues x behind the items of its key, unless it is queued already. Call before
// start, or with mu held. A command whose data (x.size) would take the data held past
// opts.holdBytes is queued without it (reread).
//
// An item is its id and its count (pos): a subscription of a stream may read one event
// at two versions (linked into the stream again after the stream was deleted), and
// delivers each copy in its turn; the copy at the old version is then dropped when
// attempted, as no longer in the stream, and the other delivered. A command's count is
// always 0.
func (d *dispatcher) add(x *delivery) {
	for _, y := range d.byID[x.id] {
		if y.pos == x.pos {
			return
		}
	}
	if x.size > 0 {
		if d.held+x.size > d.opts.holdBytes {
			x.data, x.size, x.reread = nil, 0, true
		}
		d.held += x.size
	}
	d.seq++
	x.seq = d.seq
	d.byID[x.id] = append(d.byID[x.id], x)
	q := append(d.queues[x.key], x)
	d.queues[x.key] = q
	if len(q) == 1 {
		d.headLocked(x)
	}
}

// deliveryRef is an item's id and count (pos): what tells it from another copy of its
// event (see add), and what the dispatcher's timers are keyed by.
type deliveryRef struct {
	id  uuid.UUID
	pos uint64
}

func (x *delivery) ref() deliveryRef { return deliveryRef{x.id, x.pos} }

// compare orders refs by id, then count: the order timers due at once fire in.
func (r deliveryRef) compare(o deliveryRef) int {
	if c := bytes.Compare(r.id[:], o.id[:]); c != 0 {
		return c
	}
	return cmp.Compare(r.pos, o.pos)
}

// lookup returns the item of ref, nil if it is done.
func (d *dispatcher) lookup(ref deliveryRef) *delivery {
	for _, x := range d.byID[ref.id] {
		if x.pos == ref.pos {
			return x
		}
	}
	return nil
}

// itemsLocked yields the undelivered items, in no order.
func (d *dispatcher) itemsLocked() iter.Seq[*delivery] {
	return func(yield func(*delivery) bool) {
		for _, xs := range d.byID {
			for _, x := range xs {
				if !yield(x) {
					return
				}
			}
		}
	}
}

// headLocked puts x, now the first undelivered item of its key, in play.
func (d *dispatcher) headLocked(x *delivery) {
	switch x.state {
	case stateWaiting:
		d.retries.set(x.ref(), x.retryAt)
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

// doneLocked removes x, delivered or skipped, and puts the next item of its key in
// play.
func (d *dispatcher) doneLocked(x *delivery) {
	d.held -= x.size
	x.size = 0
	if xs := slices.DeleteFunc(d.byID[x.id], func(y *delivery) bool { return y == x }); len(xs) > 0 {
		d.byID[x.id] = xs
	} else {
		delete(d.byID, x.id)
	}
	q := d.queues[x.key]
	if i := slices.Index(q, x); i >= 0 {
		q = slices.Delete(q, i, i+1)
	}
	if len(q) == 0 {
		delete(d.queues, x.key)
		return
	}
	d.queues[x.key] = q
	if q[0].state == stateQueued {
		d.headLocked(q[0])
	}
}

func (d *dispatcher) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// idleLocked reports whether nothing is left to deliver before the next retry is due:
// parked items wait for an operator, not for the dispatcher.
func (d *dispatcher) idleLocked(now time.Time) bool {
	if d.src.pendingLocked() || d.busy > 0 {
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
	d.mu.Lock()
	d.spawn = spawn
	d.mu.Unlock()
	spawn(d.schedule)
}

// running reports whether start was called.
func (d *dispatcher) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.spawn != nil
}

// schedule moves due retries to their receivers' queues, starts the attempts the
// receivers have room for, and has the source read new items.
func (d *dispatcher) schedule(ctx context.Context) error {
	var fire <-chan time.Time
	var fireAt time.Time
	stop := func() {}
	defer func() { stop() }()
	for {
		d.mu.Lock()
		now := d.clock.Now()
		for {
			ref, ok := d.retries.pop(now)
			if !ok {
				break
			}
			if x := d.lookup(ref); x != nil && x.state == stateWaiting {
				d.readyLocked(x)
			}
		}
		d.lateLocked(now)
		d.startLocked()
		next, ok := d.retries.next()
		if hang, hangs := d.hangs.next(); hangs && (!ok || hang.Before(next)) {
			next, ok = hang, true
		}
		if !ok {
			stop()
			fire, fireAt = nil, time.Time{}
		} else if !next.Equal(fireAt) {
			stop()
			fire, stop = wakeAt(d.clock, next)
			fireAt = next
		}
		read := d.src.pendingLocked()
		d.changed()
		d.mu.Unlock()

		if read {
			if err := d.src.read(ctx); err != nil {
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

// startLocked starts an attempt for each ready head whose receiver has room: fewer
// than deliverers attempts running that are not hung, and fewer than hungFactor times
// that in all. A head that finds no room has a late attempt of its receiver counted as
// hung, if one may be (hangLocked), and takes its slot.
func (d *dispatcher) startLocked() {
	now := d.clock.Now()
	for _, r := range d.receivers {
		for len(r.ready) > 0 && r.inflight+r.hung < hungFactor*d.opts.deliverers {
			if r.inflight >= d.opts.deliverers && !d.hangLocked(r, now) {
				break
			}
			x := r.ready[0]
			r.ready[0] = nil
			r.ready = r.ready[1:]
			x.state = stateInflight
			x.startedAt, x.answersThen = now, r.answers
			r.inflight++
			d.busy++
			if d.opts.hangAfter > 0 {
				d.hangs.set(x.ref(), now.Add(d.opts.hangAfter))
			}
			d.spawn(func(ctx context.Context) error { return d.attempt(ctx, x) })
		}
	}
}

// lateLocked marks the attempts running since hangAfter before now as late: they may
// be counted as hung once another key's head waits for their receiver.
func (d *dispatcher) lateLocked(now time.Time) {
	for {
		ref, ok := d.hangs.pop(now)
		if !ok {
			return
		}
		x := d.lookup(ref)
		if x == nil || x.state != stateInflight || x.hung || x.answered {
			continue
		}
		r := d.receivers[x.receiver]
		r.late = append(r.late, x)
	}
}

// hangLocked counts a late attempt of r as hung, giving its slot of deliverers to a
// waiting head, and reports whether it found one. A late attempt is taken for hung
// only if no attempt of r that was not hung has ended since it began: a receiver that
// still answers is slow, not hung, and gets no more than deliverers attempts at once
// (a hung attempt that ends at last, by the handler's own timeout say, is no answer). The warning is
// logged at most once a minute per receiver: a receiver that never answers would
// otherwise log a line for each of its attempts.
func (d *dispatcher) hangLocked(r *receiver, now time.Time) bool {
	// Counted, not timed: an answer and the next start often read the same clock.
	i := slices.IndexFunc(r.late, func(x *delivery) bool { return r.answers == x.answersThen })
	if i < 0 {
		return false
	}
	x := r.late[i]
	r.late = slices.Delete(r.late, i, i+1)
	x.hung = true
	r.inflight--
	r.hung++
	if quiet, log := r.hangLog.Log(now); log {
		d.logger.Warn("pm: a "+x.what()+" delivery hangs; the receiver's other deliveries go on beside it",
			append(d.src.attrs(x), "receiver", x.receiver, "running_for", now.Sub(x.startedAt), "hung", r.hung,
				"suppressed", quiet)...)
	}
	return true
}

// backoff is the wait after the n-th failed attempt: retryMin·2^(n-1), at most retryMax,
// of which the upper half is random, so that receivers that failed together (a webhook
// that was down) are not retried in lockstep when they come back.
func (d *dispatcher) backoff(n int) time.Duration {
	wait := d.opts.retryMin
	for i := 1; i < n && wait < d.opts.retryMax; i++ {
		wait *= 2
	}
	wait = min(wait, d.opts.retryMax)
	return wait/2 + rand.N(wait/2+1)
}

// retryAfter is what an error a handler returns may have, in its chain (errors.As), to
// ask for its next attempt no sooner than RetryAfter from now: a webhook's 429 or 503
// with Retry-After (package server's RetryAfterError). The dispatcher holds no
// dependency on the handler's package, so it asks for the method, not a type.
type retryAfter interface{ RetryAfter() time.Duration }

// retryWait is the wait after the n-th failed attempt, which failed with err: the
// back-off, or longer if err asks for it (retryAfter), but never longer than retryMax
// for that, so that a receiver cannot hold its items back for longer than the back-off
// may.
func (d *dispatcher) retryWait(n int, err error) time.Duration {
	wait := d.backoff(n)
	var ra retryAfter
	if errors.As(err, &ra) {
		wait = max(wait, min(ra.RetryAfter(), d.opts.retryMax))
	}
	return wait
}

// attempt hands x to the handler once and records the outcome: delivered, failed and
// due again later, or failed and parked.
func (d *dispatcher) attempt(ctx context.Context, x *delivery) error {
	began := time.Now()
	handed, err := d.src.deliver(ctx, x)
	took := time.Since(began)
	if ctx.Err() != nil {
		return nil // stopped: the attempt is not recorded, and is made again after a restart
	}
	d.mu.Lock()
	n, failures := x.attempts+1, x.failures
	d.answeredLocked(x)
	d.mu.Unlock()
	rec := Delivery{CommandID: x.id, CommandType: x.typ, Receiver: x.receiver, Attempt: n, Outcome: OutcomeDelivered}
	var park *Delivery
	if err != nil {
		failures++
		// When it failed, for LastErrAt: taken once, here, and recorded with the failure
		// (a subscription's failed_at), so that a restart reads back the same time.
		// Wall time only: a time that also carries Go's monotonic reading compares by
		// it (package time), and the retry would ignore a step of the wall clock or a
		// suspend, as a deadline or a retry read back from the store does not.
		rec.At = d.clock.Now().Round(0)
		rec.Outcome, rec.Err = OutcomeFailed, err.Error()
		if rec.Err == "" {
			rec.Err = "handler failed"
		}
		if d.opts.maxAttempts > 0 && failures >= d.opts.maxAttempts {
			park = &Delivery{CommandID: x.id, CommandType: x.typ, Receiver: x.receiver, Attempt: n, Outcome: OutcomeParked, Err: rec.Err, At: rec.At}
			d.logger.Error("pm: "+x.what()+" parked: it failed every attempt; retry or skip it",
				append(d.src.attrs(x), "receiver", x.receiver, "attempts", failures, "err", err)...)
		} else {
			rec.RetryAt = rec.At.Add(d.retryWait(failures, err))
			d.logger.Warn("pm: "+x.what()+" delivery failed",
				append(d.src.attrs(x), "receiver", x.receiver, "attempt", n, "retry_at", rec.RetryAt, "err", err)...)
		}
	}
	recs := []Delivery{rec}
	if park != nil {
		recs = append(recs, *park)
	}
	if werr := d.src.record(ctx, x, recs...); werr != nil {
		if ctx.Err() != nil || errors.Is(werr, pmd.ErrClosed) {
			return nil
		}
		return werr
	}
	d.mu.Lock()
	// Read before x is back in play: its next attempt, which may start as soon as mu is
	// released, updates the event (a subscription's source does, under mu).
	var ev pmd.Event
	if x.ev != nil {
		ev = *x.ev
	}
	x.attempts = n
	d.endedLocked(x)
	if err != nil {
		d.lastErr, d.lastErrAt = rec.Err, rec.At
	}
	switch {
	case err == nil:
		d.doneLocked(x)
	case park != nil:
		x.state, x.failures, x.lastErr = stateParked, failures, rec.Err
	default:
		x.state, x.failures, x.lastErr, x.retryAt = stateWaiting, failures, rec.Err, rec.RetryAt
		d.retries.set(x.ref(), rec.RetryAt)
	}
	d.changed()
	d.mu.Unlock()
	d.kick()
	if d.opts.onAttempt != nil {
		info := AttemptInfo{Receiver: x.receiver, Command: handed, Event: ev, Attempt: n, Duration: took, Err: err, Parked: park != nil}
		d.attempted(x, info)
	}
	return nil
}

// attempted passes info, about an attempt of x, to onAttempt. A panic in it is logged
// with the stack and passed over: the attempt is recorded already, and a bug in the
// program's metrics must not end it, which would make the same attempts again.
func (d *dispatcher) attempted(x *delivery, info AttemptInfo) {
	defer func() {
		if r := recover(); r != nil {
			d.logger.Error("pm: OnAttempt panicked; the attempt is recorded all the same",
				append(d.src.attrs(x), "panic", r, "stack", string(debug.Stack()))...)
		}
	}()
	d.opts.onAttempt(info)
}

// answeredLocked counts the handler's return, for the attempt of x, as its receiver's
// answer, before the attempt's record is written: an attempt whose record waits (for a
// full disk, say) is not hung, and is not taken for hung, which would give its slot to
// another command, delivered in turn and not recorded either. It keeps its slot of
// deliverers until the record lands (endedLocked). A hung attempt that ends at last is no
// answer.
func (d *dispatcher) answeredLocked(x *delivery) {
	if x.hung || x.answered {
		return
	}
	r := d.receivers[x.receiver]
	r.answers++
	if i := slices.Index(r.late, x); i >= 0 {
		r.late = slices.Delete(r.late, i, i+1)
	}
	d.hangs.remove(x.ref())
	x.answered = true
}

// endedLocked takes the attempt of x, which ended and whose record landed, off the
// counts of running attempts.
func (d *dispatcher) endedLocked(x *delivery) {
	r := d.receivers[x.receiver]
	if x.hung {
		r.hung--
		x.hung = false
	} else {
		d.answeredLocked(x)
		r.inflight--
	}
	x.answered = false
	d.hangs.remove(x.ref())
	d.busy--
}

// callHandler hands v to the handler h. A handler that panics fails the attempt, which is
// recorded, retried and parked as any failure, with the panic's value for its error, and
// the stack logged with attrs: a receiver's bug must not end the program, which after a
// restart would hand the same item over again at once, to panic again.
func callHandler[T any](ctx context.Context, logger *slog.Logger, attrs []any, h func(context.Context, T) error, v T) (err error) {
	defer func() {
		if r := recover(); r != nil {
			logger.Error("pm: a delivery handler panicked; the attempt counts as failed",
				append(attrs, "panic", r, "stack", string(debug.Stack()))...)
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(ctx, v)
}

func (x *delivery) what() string {
	if x.ev != nil {
		return "event"
	}
	return "command"
}

// operate records a retry or a skip (outcome) of the parked or failing item id, then
// applies it: a retried item is ready at once, its failures counted from 0 again; a
// skipped one is done. belongs says whether the item is the one the caller means;
// notFound and notStuck are the errors for an item not awaiting delivery and one
// neither parked nor failing.
//
// Of the copies of an event a subscription holds (see add), the one acted on is the one
// parked or failing: only the head of a key is attempted, so there is one at most, and
// the copies behind it go out in their turn.
func (d *dispatcher) operate(ctx context.Context, id uuid.UUID, outcome string, belongs func(*delivery) bool, notFound, notStuck error) error {
	d.ops.Lock()
	defer d.ops.Unlock()
	d.mu.Lock()
	var x *delivery
	for _, y := range d.byID[id] {
		if belongs(y) && (x == nil || y.state == stateParked || y.state == stateWaiting) {
			x = y
		}
	}
	if x == nil {
		d.mu.Unlock()
		return notFound
	}
	was := x.state
	if was != stateParked && was != stateWaiting {
		d.mu.Unlock()
		return notStuck
	}
	// Held, it is neither retried by its timer nor started while the record is written.
	x.state = stateHeld
	d.retries.remove(x.ref())
	d.mu.Unlock()

	rec := Delivery{CommandID: id, CommandType: x.typ, Receiver: x.receiver, Attempt: x.attempts, Outcome: outcome}
	err := d.src.record(ctx, x, rec)

	d.mu.Lock()
	switch {
	case err != nil:
		x.state = was
		if was == stateWaiting {
			d.retries.set(x.ref(), x.retryAt)
		}
	case outcome == OutcomeSkipped:
		d.doneLocked(x)
	default:
		x.failures = 0
		d.readyLocked(x)
	}
	d.changed()
	d.mu.Unlock()
	d.kick()
	if err != nil {
		return err
	}
	d.logger.Info("pm: "+x.what()+" "+outcome+" by hand", d.src.attrs(x)...)
	return nil
}

// parked returns the parked items, in the order they were added.
func (d *dispatcher) parked() []*delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	var xs []*delivery
	for x := range d.itemsLocked() {
		if x.state == stateParked {
			xs = append(xs, x)
		}
	}
	slices.SortFunc(xs, func(a, b *delivery) int { return cmp.Compare(a.seq, b.seq) })
	return xs
}

// parkedLocked counts the parked items.
func (d *dispatcher) parkedLocked() int {
	n := 0
	for x := range d.itemsLocked() {
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
	lastAt   time.Time // when the attempt of lastErr failed (Delivery.At)
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
		h.lastErr, h.lastAt, h.retryAt = d.Err, d.At, d.RetryAt
	case OutcomeParked:
		h.parked, h.lastErr, h.lastAt = true, d.Err, d.At
	case OutcomeRetried:
		h.parked, h.failures, h.retryAt = false, 0, time.Time{}
	}
}

// resume sets x, a delivery just read, where its history leaves it.
func (h *history) resume(x *delivery) *delivery {
	if h == nil {
		return x
	}
	x.attempts, x.failures, x.lastErr = h.attempts, h.failures, h.lastErr
	switch {
	case h.parked:
		x.state = stateParked
	case h.failures > 0 && !h.retryAt.IsZero():
		// Due at its recorded time, not at once: a restart does not retry every
		// failing item in a burst.
		x.state, x.retryAt = stateWaiting, h.retryAt
	}
	return x
}
