package pm

import (
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// Process is everything known about one process: what a browser or an API shows.
type Process struct {
	Name   string // the process manager's
	ID     string
	Stream string // "<Name>$<ID>"
	Status Status
	// Erased says that the process stream was erased (Store.EraseStream): the process
	// ended there, as completed, and its Commands and Deadlines are not known any more
	// (see doc.go, "Erasing a process").
	Erased bool
	// State is the definition's state (of type S), the fold of Events; nil for an erased
	// process, which has none (see withoutState).
	State any
	// Version is the version of the last event of the stream, -1 if it has none.
	Version int64
	// Events is the process stream: handled events (Link true) and what the runtime
	// wrote, in version order.
	Events []pmd.Event
	// States[i] is the state (of type S) after Events[i], kept as the fold went: how
	// each event changed the process. A state shares its maps and slices with the next
	// one unless Apply copies them before changing them, as a pure Apply does. Each is
	// nil for an erased process.
	States   []any
	Commands []Command // issued, in order; a page of them with ProcessPage
	// CommandInfo[i] says where Commands[i] stands and which version of Stream records
	// it; CommandsNext is the PageOptions.CommandsFrom of the page of commands after
	// Commands, -1 when Commands holds the last. Set by ProcessPage.
	CommandInfo  []CommandInfo
	CommandsNext int64
	// Deadlines are the pending deadlines, by due time: every one, not paged. A process
	// has one per key its definition keeps pending, which the runtime holds in memory
	// anyway to fire them; a process manager of pmd serve's config keeps at most one
	// (config.KeyDeadline, moved, not added to, when scheduled again), so the process
	// route lists them outside its bound in bytes. A Go definition that keeps many
	// pending per process makes this view that long.
	Deadlines []Deadline
	// DeliveriesStream is the stream the delivery attempts of Commands are recorded
	// in: "<Name>.deliveries$<ID>". A reader following it sees each attempt as it
	// is made. It is empty for a process an earlier version stored whose id leaves
	// no room for that name: its commands are not delivered (Stats.Undeliverable).
	DeliveriesStream string
	// DeliveriesVersion is the version of the last record of DeliveriesStream that
	// Deliveries was read from, -1 if it has none.
	DeliveriesVersion int64
	// Deliveries are the attempts to deliver Commands, in order; empty without a handler.
	// ProcessPage shows those of each command of its page in turn, in order, and only
	// those PageOptions selects.
	Deliveries []Delivery
	// Snapshot is the snapshot State was folded from, nil when it was folded from the
	// first event. Set by ProcessPage.
	Snapshot *SnapshotInfo
	// Older is the version the next page to the past ends below (ProcessPage's before),
	// -1 when Events starts at the first event. Set by ProcessPage.
	Older int64
	// Damaged lists, in order, the versions of the records of Stream that are damaged
	// (pmd.ErrCorrupt; the store lists them in its problems until a repair) and that the
	// view passed over: they are missing from Events, and what a damaged record of the
	// runtime's own said is unknown to the view, which is as if the record were not
	// there: a damaged command is missing from Commands, a damaged DeadlineScheduled
	// from Deadlines, while a deadline whose DeadlineFired or DeadlineCancelled record
	// is damaged is still in Deadlines, as pending, and Status is what the other
	// records make it. Run stops at such a record until the repair (see the package
	// doc). Of ProcessPage, it lists the damaged command records of its page of
	// commands only (PageOptions.CommandsFrom, CommandsLimit): one of another page is
	// listed with that page; ProcessSummary.Damaged counts every one.
	Damaged []int64
	// Panic, when not "", says that a callback of the definition panicked for the
	// process (PanicError), in this fold or in the running manager, which holds the
	// process until it starts again: State is the state before the panic.
	Panic string
}

// SnapshotInfo says which snapshot a state was folded from.
type SnapshotInfo struct {
	// Version is the last version of the process stream the snapshot covers: the state
	// is the snapshot's, then the events after it folded onto it.
	Version   int64
	ID        uuid.UUID // of the snapshot record
	Stream    string    // "<Name>.snapshots$<ID>"
	Position  uint64
	Timestamp time.Time
}

// Delivery is one record of a deliveries stream: an attempt to hand a command to the
// handler (Outcome OutcomeDelivered or OutcomeFailed), the parking of a command that
// failed too often, or an operator's Retry or Skip.
type Delivery struct {
	CommandID   uuid.UUID
	CommandType string
	Receiver    string // Options.Receiver of the command; "" for the one receiver
	Outcome     string // OutcomeDelivered, OutcomeFailed, OutcomeParked, OutcomeRetried or OutcomeSkipped
	// Attempt is the number of the attempt (1 for the first); for the other outcomes,
	// the attempts made so far.
	Attempt int
	At      time.Time // when the record was written
	// Err is the handler's error, of a failed attempt and of the one that parked it.
	Err string
	// RetryAt is when a failed delivery is tried again; zero when it was parked.
	RetryAt time.Time
}

// Delivered reports whether the attempt succeeded.
func (d Delivery) Delivered() bool { return d.Outcome == OutcomeDelivered }

// Counts is how many processes of a process manager stand where.
type Counts struct {
	Open, Completed, Expired int
}

func (c *Counts) add(s Status, n int) {
	switch s {
	case StatusOpen:
		c.Open += n
	case StatusCompleted:
		c.Completed += n
	case StatusExpired:
		c.Expired += n
	}
}

// describe builds the view of a replayed process; states[i] is the state after
// events[i].
func describe(name, id string, p proc, events []pmd.Event, states []any) Process {
	l := p.ledger()
	v := Process{
		Name:              name,
		ID:                id,
		Stream:            name + "$" + id,
		Status:            l.status(),
		Erased:            l.erased,
		State:             p.state(),
		Version:           l.last,
		Events:            events,
		States:            states,
		Deadlines:         l.deadlines(),
		DeliveriesStream:  deliveriesStreamIfAny(name, id),
		DeliveriesVersion: -1,
		Older:             -1,
		CommandsNext:      -1,
	}
	if pe := p.failure(); pe != nil && !l.erased { // its value may quote erased data
		v.Panic = pe.Error()
	}
	for _, e := range events {
		if c, ok := commandOf(p.trusts(), v.Stream, id, &e); ok {
			v.Commands = append(v.Commands, c)
		}
	}
	v.withoutState()
	return v
}

// withoutState leaves the state out of the view of an erased process, now and after
// each event: the process ended at the erasure and is decided on no state again, and
// its state is what the definition made of the personal data the erasure was for (the
// facts it handled hold it too, whether or not their streams were erased yet). The view
// shows the process as erased, with its records as erased and no state.
func (v *Process) withoutState() {
	if !v.Erased {
		return
	}
	v.State = nil
	clear(v.States)
}

// commandOf returns the command e records, if it is one the runtime (t) wrote into
// stream.
func commandOf(t *trust, stream, processID string, e *pmd.Event) (Command, bool) {
	if e.Metadata[MetaKind] != KindCommand || !t.own(stream, e) {
		return Command{}, false
	}
	key, _ := e.Metadata[MetaKey].(string)
	correlation, _ := e.Metadata[pmd.CorrelationID].(string)
	return Command{ID: e.ID, Type: e.Type, Data: e.Data, Key: key, ProcessID: processID, Correlation: correlation}, true
}
