package pm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// commandSource is the dispatcher's source for a Manager: it reads the issued commands
// from the process streams (category <Name>), hands them to Options.Deliver and records
// every attempt, parking, retry and skip in the deliveries stream of the process.
type commandSource struct {
	m *Manager
	// Guarded by m.mu.
	cursor   uint64 // next position of category <Name> to read
	notified uint64 // last position of a command write a worker told about
	// stripes serialise the writes to each deliveries stream (appendDeliveries).
	stripes [deliveryStripes]sync.Mutex
	// unnamed holds the processes whose commands were found undeliverable, logged
	// (deliverable). Guarded by m.mu.
	unnamed map[string]bool
}

// newCommands makes the dispatcher of m's commands.
func (m *Manager) newCommands() (*dispatcher, *commandSource) {
	src := &commandSource{m: m}
	d := newDispatcher(&m.mu, m.broadcastLocked, src, deliveryOptions{
		deliverers:  m.opts.Deliverers,
		maxAttempts: m.opts.MaxAttempts,
		retryMin:    m.opts.RetryMin,
		retryMax:    m.opts.RetryMax,
		hangAfter:   max(m.opts.HangAfter, 0),
		onAttempt:   m.opts.OnAttempt,
		holdBytes:   max(m.opts.QueueBytes, 0),
	}, m.clock, m.logger.With("manager", m.name))
	return d, src
}

// newDelivery is the delivery of command c, issued by the event e of process stream
// "<Name>$<c.ProcessID>". It holds c's data encoded as the store keeps it (its size is
// what Options.QueueBytes counts) if that fits in room, what the bound leaves, until the
// dispatcher queues it (add, which checks the bound again); else none, and each attempt
// reads the command's record again. Data that is none (empty) is held, taking nothing.
func (m *Manager) newDelivery(c Command, e *pmd.Event, room int) *delivery {
	corr, _ := e.Metadata[pmd.CorrelationID].(string)
	x := &delivery{id: c.ID, typ: c.Type, key: c.ProcessID, cmd: c, at: e.Position, correlation: corr, reread: len(c.Data) > 0}
	x.cmd.Data = nil
	if x.reread && room > 0 {
		if b, err := pmd.EncodeData(c.Data); err == nil && len(b) <= room {
			x.data, x.size, x.reread = b, len(b), false
		}
	}
	if m.opts.Receiver != nil {
		x.receiver = m.receiver(c)
	}
	return x
}

// receiver is Options.Receiver(c), or "" if it panics, logged with the stack: a bug in
// it must not end the program, which would call it on the same command again at the
// next start.
func (m *Manager) receiver(c Command) (name string) {
	defer func() {
		if r := recover(); r != nil {
			m.logger.Error(`pm: Options.Receiver panicked; the command goes to the receiver ""`,
				"manager", m.name, "process", c.ProcessID, "command", c.ID, "type", c.Type,
				"panic", r, "stack", string(debug.Stack()))
			name = ""
		}
	}()
	return m.opts.Receiver(c)
}

// notify tells the dispatcher that commands were written up to position pos.
func (src *commandSource) notify(pos uint64) {
	m := src.m
	m.mu.Lock()
	src.notified = max(src.notified, pos)
	m.mu.Unlock()
	m.delivery.kick()
}

func (src *commandSource) pendingLocked() bool { return src.cursor <= src.notified }

// errCommandErased fails the attempt of a command read again (Options.QueueBytes) whose
// record was erased: handed over without its data, it would go out under the same id
// (the receiver's idempotency key) with another body.
var errCommandErased = errors.New("its process stream was erased since it was issued: skip it")

// deliver hands x's command to the handler, its data decoded from what the item holds,
// and returns the command handed over. One queued without its data (past
// Options.QueueBytes) is read again first (eventByID); a read that fails (its record
// gone, expired or damaged) or finds it erased (errCommandErased) fails the attempt,
// retried and parked as any, for Skip.
func (src *commandSource) deliver(ctx context.Context, x *delivery) (Command, error) {
	c := x.cmd
	if x.reread {
		e, err := src.m.eventByID(ctx, x.id, false)
		if err == nil && e.Erased {
			err = errCommandErased
		}
		if err != nil {
			return c, fmt.Errorf("read the command again: %w", err)
		}
		c.Data = e.Data
	} else {
		data, err := pmd.DecodeData(x.data)
		if err != nil {
			return c, fmt.Errorf("decode the command's data: %w", err)
		}
		c.Data = data
	}
	return c, callHandler(ctx, src.m.logger, append([]any{"manager", src.m.name}, src.attrs(x)...), src.m.opts.Deliver, c)
}

func (src *commandSource) attrs(x *delivery) []any {
	return []any{"process", x.cmd.ProcessID, "command", x.id, "type", x.typ}
}

// read queues the commands written since the cursor.
func (src *commandSource) read(ctx context.Context) error {
	m := src.m
	m.mu.Lock()
	from, room := src.cursor, m.delivery.opts.holdBytes-m.delivery.held
	m.mu.Unlock()
	found, end, err := src.scan(ctx, from, room)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("pm: %s: read commands: %w", m.name, err)
	}
	m.mu.Lock()
	for _, x := range found {
		m.delivery.add(x)
	}
	src.cursor = max(src.cursor, end+1)
	m.mu.Unlock()
	return nil
}

// scan reads the commands written from position from on, to be queued, and end, the
// last position read. They hold, all together, at most room bytes of data, however many
// were written (a backlog after a burst, or a receiver down): the others hold none, and
// read their records again at each attempt.
func (src *commandSource) scan(ctx context.Context, from uint64, room int) (found []*delivery, end uint64, err error) {
	m := src.m
	end = m.store.LastPosition()
	t := m.trust.Load()
	for e, err := range m.store.ReadCategory(ctx, m.name, pmd.ReadOptions{From: from}) {
		if err != nil {
			return nil, 0, err
		}
		end = max(end, e.Position)
		id, _ := strings.CutPrefix(e.Stream, m.name+"$")
		if c, ok := commandOf(t, e.Stream, id, &e); ok && src.deliverable(c) {
			x := m.newDelivery(c, &e, room)
			room -= x.size
			found = append(found, x)
		}
	}
	return found, end, nil
}

// deliverable reports whether command c can be delivered: whether the deliveries
// stream of its process, where every attempt is recorded, can be named. A process that
// a store written before ids had to leave room for it holds (Manager.checkID) may have
// an id too long for it: its commands are not handed to Deliver, as not one attempt, nor
// a parking, could be recorded; each is counted in Stats.Undeliverable, and the first of
// each process logged. Run goes on.
func (src *commandSource) deliverable(c Command) bool {
	m := src.m
	stream := deliveriesStream(m.name, c.ProcessID)
	if fits(stream) {
		return true
	}
	m.mu.Lock()
	m.undeliverable++
	first := !src.unnamed[c.ProcessID]
	if first {
		if src.unnamed == nil {
			src.unnamed = make(map[string]bool)
		}
		src.unnamed[c.ProcessID] = true
	}
	m.mu.Unlock()
	if first {
		m.logger.Error("pm: not delivering the commands of a process whose id leaves no room for its deliveries stream (a process an earlier version took); deliver them by hand",
			"manager", m.name, "process", c.ProcessID, "command", c.ID, "type", c.Type,
			"stream_bytes", len(stream), "limit", maxStreamName)
	}
	return false
}

// record appends records about x to the deliveries stream of its process, in one write,
// with the runtime's ids (appendDeliveries). The record of an attempt (delivered,
// failed, parked) waits while the store cannot write, the command holding meanwhile; a
// retry or a skip, asked for by an operator, fails at once with the store's error.
func (src *commandSource) record(ctx context.Context, x *delivery, recs ...Delivery) error {
	corr := x.correlation
	if corr == "" {
		corr = x.id.String()
	}
	events := make([]pmd.EventData, len(recs))
	for i, rec := range recs {
		events[i] = pmd.EventData{
			Type: rec.recordType(),
			Data: rec.data(),
			Metadata: map[string]any{
				pmd.CausationID:   x.id.String(),
				pmd.CorrelationID: corr,
			},
		}
	}
	stream := deliveriesStream(src.m.name, x.cmd.ProcessID)
	untilWritable := recs[0].Outcome != OutcomeRetried && recs[0].Outcome != OutcomeSkipped
	if err := src.appendDeliveries(ctx, stream, events, untilWritable); err != nil {
		return fmt.Errorf("pm: %s: record delivery: %w", stream, err)
	}
	return nil
}

// appendDeliveries appends events to a deliveries stream with the ids trust.delivery
// expects: recordID of the stream and the version each lands at, in the store's
// namespace, the write expecting the version read just before. Writes to one stream are
// serialised (stripes): two records made for the same version would have the same ids,
// and the store takes the second write for a retry of the first, writing nothing. When
// another writer appends to the stream in between, it reads the version again and
// writes after it, backing off, until the write lands or ctx ends; so, with
// untilWritable, while the store refuses the write as unavailable (a full disk). The
// stripe is held for each try, not while it backs off: a retry or a skip of another
// process's command, which fails at once on a full disk, does not wait for it. The
// write itself is not cancelled: one cancelled in flight may still land.
func (src *commandSource) appendDeliveries(ctx context.Context, stream string, events []pmd.EventData, untilWritable bool) error {
	m := src.m
	wait := ownRetryMin
	for {
		err := src.tryAppendDeliveries(ctx, stream, events)
		limit := ownRetryMax
		switch {
		case err == nil:
			return nil
		case errors.Is(err, pmd.ErrWrongExpectedVersion):
			m.logger.Warn("pm: another writer appended to a deliveries stream: the record is written after it",
				"manager", m.name, "stream", stream, "err", err)
		case untilWritable && waitable(err):
			m.warnUnwritable(err, "a command waits until the record of its delivery attempt is written")
			limit = unwritableRetryMax
		default:
			return err
		}
		if err := pause(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, limit)
	}
}

// tryAppendDeliveries is one try of appendDeliveries, with the stream's stripe held.
func (src *commandSource) tryAppendDeliveries(ctx context.Context, stream string, events []pmd.EventData) error {
	m := src.m
	mu := &src.stripes[stripe(stream)]
	mu.Lock()
	defer mu.Unlock()
	info, err := m.store.StreamInfo(stream)
	if err != nil {
		return err
	}
	expected, next := pmd.NoStream, uint64(info.Version+1)
	if info.Exists {
		expected = pmd.AtVersion(uint64(info.Version))
	}
	for i := range events {
		events[i].ID = recordID(m.ns, stream, next+uint64(i))
	}
	_, err = m.store.Append(context.WithoutCancel(ctx), stream, expected, events...)
	return err
}

// stripe is the stripe of commandSource.stripes that serialises the writes to stream:
// FNV-1a of its name.
func stripe(stream string) int {
	h := uint32(2166136261)
	for i := 0; i < len(stream); i++ {
		h = (h ^ uint32(stream[i])) * 16777619
	}
	return int(h % deliveryStripes)
}

// deliveryStripes is how many locks serialise the writes to deliveries streams.
const deliveryStripes = 64

// undelivered reports whether process pid has a command not delivered or skipped yet,
// or may have one the dispatcher has not read.
func (src *commandSource) undelivered(pid string) bool {
	m := src.m
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.delivery.queues[pid]) > 0 || src.pendingLocked()
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
	m.mu.Unlock()
	if d == nil || !d.running() {
		return fmt.Errorf("pm: %s: %w", m.name, ErrNoDelivery)
	}
	return d.operate(ctx, id, outcome, func(x *delivery) bool { return x.cmd.ProcessID == processID },
		fmt.Errorf("pm: %s$%s: command %s: %w", m.name, processID, id, ErrCommandNotFound),
		fmt.Errorf("pm: %s$%s: command %s: %w", m.name, processID, id, ErrCommandNotStuck))
}

// ParkedOptions selects a page of the parked commands (Parked).
type ParkedOptions struct {
	// From leaves out the commands whose records are at positions below it: the Next of
	// the page before, 0 for the first page.
	From uint64
	// Limit bounds how many commands the page holds; 0 means all of them.
	Limit int
	// Bytes, when above 0, bounds the page to the commands whose data come to at most
	// that many bytes of JSON, about (always one).
	Bytes int
	// Hold, when set, decodes each command record the page reads, read undecoded
	// (pmd.EventOptions.Encoded), as PageOptions.Hold does for ProcessPage: the page
	// calls the func it returns for a record it leaves out, and ends with an error of
	// Hold's, but for a *pmd.CorruptError, a damaged record listed without its data.
	Hold func(ev *pmd.Event) (release func(), err error)
}

// ParkedPage is a page of the parked commands.
type ParkedPage struct {
	Commands []ParkedCommand
	// Total counts every parked command, on the page or not.
	Total int
	// Next is the ParkedOptions.From of the next page; -1 when the page holds the last.
	Next int64
}

// Parked lists the parked commands that o selects, in the order they were issued (of
// their records' positions, which o.From pages by: a command parked while a reader
// pages is listed on a later page if its record is past the page read, on none if it is
// before), and how many are parked. It is empty unless Run runs with a Deliver handler.
// A command is listed with its data only while its record reads so: one whose process
// stream was erased since it was parked (see doc.go, "Erasing a process"), or whose
// record is no longer stored, is listed without (Data nil), as the listing must show
// nothing an erasure erased. So is one whose record is damaged (pmd.ErrCorrupt), logged
// once with the command's id, so that one damaged record does not take the page down
// until the operator skips a command only an error named. That costs a lookup of the
// record of each command listed, not of the others, and the page holds the data of those
// only; a lookup that fails otherwise (ctx done, a closed store) fails Parked.
func (m *Manager) Parked(ctx context.Context, o ParkedOptions) (ParkedPage, error) {
	all := m.parkedCommands()
	page := ParkedPage{Total: len(all), Next: -1}
	start, _ := slices.BinarySearchFunc(all, o.From, func(pc ParkedCommand, from uint64) int { return cmp.Compare(pc.Position, from) })
	size := 0
	for _, pc := range all[start:] {
		if o.Limit > 0 && len(page.Commands) == o.Limit {
			page.Next = int64(pc.Position)
			break
		}
		rec, err := m.eventByID(ctx, pc.Command.ID, o.Hold != nil)
		release := func() {}
		if err == nil && o.Hold != nil {
			var r func()
			if r, err = o.Hold(&rec); err == nil {
				release = r
			}
		}
		var gone *pmd.EventNotFoundError
		switch {
		case errors.As(err, &gone):
			pc.Command.Data = nil
		case errors.Is(err, pmd.ErrCorrupt) && ctx.Err() == nil:
			pc.Command.Data = nil
			if _, logged := m.damagedParked.LoadOrStore(pc.Command.ID, true); !logged {
				m.logger.Warn("pm: parked command listed without its data: its record is damaged",
					"manager", m.name, "process", pc.Command.ProcessID, "command", pc.Command.ID.String(), "err", err)
			}
		case err != nil:
			return ParkedPage{}, fmt.Errorf("pm: %s: parked command %s of process %s: %w", m.name, pc.Command.ID, pc.Command.ProcessID, err)
		default:
			// As the record reads now: also the data of one queued without it
			// (Options.QueueBytes), nil if it was erased.
			pc.Command.Data = rec.Data
		}
		if size += jsonSize(pc.Command.Data) + jsonSize(pc.Err) + commandOverhead; o.Bytes > 0 && size > o.Bytes && len(page.Commands) > 0 {
			release()
			page.Next = int64(pc.Position)
			break
		}
		page.Commands = append(page.Commands, pc)
	}
	return page, nil
}

// eventByID reads the record of a command for Parked, undecoded if encoded says so, and
// for an attempt of one queued without its data (commandSource.deliver): the store's
// Event, or a test's lookup (hooks.eventByID), which reads it decoded.
func (m *Manager) eventByID(ctx context.Context, id uuid.UUID, encoded bool) (pmd.Event, error) {
	if f := m.hooks.eventByID.Load(); f != nil {
		return (*f)(m.store, ctx, id)
	}
	return m.store.EventWith(ctx, id, pmd.EventOptions{Encoded: encoded})
}

// parkedCommands is Parked as the dispatcher holds them, with no read, in the order of
// their positions: without their data, which queued commands hold encoded or not at all
// (Parked reads each record).
func (m *Manager) parkedCommands() []ParkedCommand {
	m.mu.Lock()
	d := m.delivery
	m.mu.Unlock()
	if d == nil {
		return nil
	}
	xs := d.parked()
	out := make([]ParkedCommand, len(xs))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range xs {
		out[i] = ParkedCommand{Command: x.cmd, Position: x.at, Receiver: x.receiver, Attempts: x.attempts, Err: x.lastErr}
	}
	slices.SortFunc(out, func(a, b ParkedCommand) int { return cmp.Compare(a.Position, b.Position) })
	return out
}
