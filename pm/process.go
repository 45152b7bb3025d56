package pm

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// Event types and metadata of the records the runtime writes into a process stream
// besides commands. They are part of the on-disk format: see doc.go.
const (
	// DeadlineScheduled records that a deadline is pending. Data: key, due (RFC 3339 with
	// nanoseconds, UTC), type and data of the command it will issue. A later
	// DeadlineScheduled for the same key moves the deadline.
	DeadlineScheduled = "DeadlineScheduled"
	// DeadlineFired records that a deadline was due and its command was issued; the
	// command follows it in the same write. Data: key, due.
	DeadlineFired = "DeadlineFired"
	// DeadlineCancelled records that Decide stopped asking for a pending deadline.
	// Data: key.
	DeadlineCancelled = "DeadlineCancelled"
	// ProcessCompleted records when a process became done (it has issued a command and
	// has no pending deadline), by the manager's clock, so that retention removes it
	// that long after (Options.Retention). Written, in the write that completes the
	// process, only while retention is on. Data: at (RFC 3339 with nanoseconds, UTC).
	ProcessCompleted = "ProcessCompleted"

	// MetaKind, in the metadata of an event the runtime wrote, says what it is:
	// KindCommand or one of the deadline record kinds.
	MetaKind = "pm_kind"
	// MetaKey is the command key the record is about.
	MetaKey = "pm_key"

	KindCommand           = "command"
	KindDeadlineScheduled = "deadline_scheduled"
	KindDeadlineFired     = "deadline_fired"
	KindDeadlineCancelled = "deadline_cancelled"
	KindCompleted         = "completed"
)

// Status is where a process stands.
type Status string

const (
	// StatusOpen: no command issued yet, or a deadline still pending.
	StatusOpen Status = "open"
	// StatusCompleted: it issued a command and has no pending deadline, or its stream
	// was erased (Process.Erased).
	StatusCompleted Status = "completed"
	// StatusExpired: one of its deadlines fired.
	StatusExpired Status = "expired"
)

// Deadline is a pending deadline of a process.
type Deadline struct {
	Key  string
	Due  time.Time
	Type string // of the command it will issue
	// Scheduled is the id of the DeadlineScheduled record that set it.
	Scheduled uuid.UUID
	// correlation is carried over to the records its firing writes.
	correlation string
}

// namespace makes the ids of the records the runtime writes: UUIDv5 of the process
// stream and the version the record lands at, which no crash or retry can change, in
// the namespace of the store (storeNamespace), so that two stores never write the
// same id. Memory, which has no store, uses namespace itself, as the runtime did
// before stores had ids.
var namespace = uuid.MustParse("7b1c2f4e-5d1a-4f0e-9a57-3c0d8f6b2e91")

// storeNamespace is the namespace of the record ids of the store whose ID is id: the
// UUIDv5 of the store id in namespace.
func storeNamespace(id uuid.UUID) uuid.UUID { return uuid.NewSHA1(namespace, id[:]) }

func recordID(ns uuid.UUID, stream string, version uint64) uuid.UUID {
	return uuid.NewSHA1(ns, fmt.Appendf(nil, "%s@%d", stream, version))
}

// ledger is what the runtime itself needs from a process stream, whatever the
// definition's state: which command keys were issued and which deadlines are pending,
// and where the fold stands. Its maps are made on first use: the runtime keeps one per
// process while it loads.
type ledger struct {
	last     int64             // version of the last event folded, -1 for none
	first    int64             // version of the first event folded, -1 for none
	issued   map[string]uint64 // command key -> version of its command record
	pending  map[string]Deadline
	commands int
	fired    int
	links    int    // handled events linked
	linked   uint64 // highest log position of a linked event folded, 0 for none
	// completed is the at of the last ProcessCompleted record; recorded the store's
	// timestamp of the last other record the runtime wrote, which stands in for it in
	// processes that completed while retention was off.
	completed, recorded time.Time
	// erased says that a record of the stream itself (not a link) was read erased
	// (Store.EraseStream): the process ended there. See doc.go, "Erasing a process".
	erased bool
	// erasedFired and erasedCommands count the erased records of the stream itself
	// that were, by their types, DeadlineFired records and commands (see erasedStatus).
	erasedFired, erasedCommands int
	// own is the version of the first record of the stream itself (not a link) folded,
	// -1 for none, ownUnknown for a ledger of a snapshot written before snapshots kept
	// it. An erasure erases every record of the stream written before it, so this one
	// is erased if any is: the fold reads it to know whether the process ended since.
	own int64
	// sources has, for each stream a linked fact was appended to, the log position of
	// the first fact linked from it that did not read erased when folded. An erasure
	// erases every event of a stream appended before it, so that fact reads erased
	// once a fact of the stream folded with its data does: a snapshot's state then
	// holds data erased since (see factsErasedSince). sourcesOf says whether sources
	// is all of them.
	sources   map[string]uint64
	sourcesOf sourcesKnown
}

// sourcesKnown says what a ledger knows of the streams of its linked facts.
type sourcesKnown uint8

const (
	sourcesAll     sourcesKnown = iota // sources lists every one
	sourcesMany                        // more than maxSources: the snapshot lists none
	sourcesUnknown                     // decoded from a snapshot written before they were kept (factsErasedSince learns them)
)

// maxSources is the most streams of linked facts a snapshot lists: past it, the fold
// that restores the snapshot reads the links it covers to find an erased one (a
// process linking facts from that many streams costs its snapshots no more).
const maxSources = 100

// addSource notes that a fact appended to stream at position pos was folded with its
// data.
func (l *ledger) addSource(stream string, pos uint64) {
	if l.sourcesOf != sourcesAll {
		return
	}
	if first, ok := l.sources[stream]; ok {
		l.sources[stream] = min(first, pos)
		return
	}
	if len(l.sources) == maxSources {
		l.sources, l.sourcesOf = nil, sourcesMany
		return
	}
	if l.sources == nil {
		l.sources = make(map[string]uint64)
	}
	l.sources[stream] = pos
}

// ownUnknown, as ledger.own, says that the ledger does not know its stream's first
// record (see firstOwn).
const ownUnknown = -2

// skipLink folds into l the link at version v to the fact at position pos, which is
// damaged: counted as linked, but never read (see Manager.damagedLink).
func (l *ledger) skipLink(v int64, pos uint64) {
	l.last = v
	if l.first < 0 {
		l.first = v
	}
	l.links++
	l.linked = max(l.linked, pos)
}

func newLedger() ledger { return ledger{last: -1, first: -1, own: -1} }

// observe folds e, read from process stream stream, into l. own says that e is a record
// the runtime wrote (trust.own): only such a record's metadata (pm_kind, pm_key) is
// bookkeeping; any other record of the stream itself counts for the erasure only.
func (l *ledger) observe(stream string, e *pmd.Event, own bool) {
	l.last = int64(e.Version)
	if l.first < 0 {
		l.first = int64(e.Version)
	}
	if e.Link {
		l.links++
		l.linked = max(l.linked, e.Position)
		if !e.Erased {
			l.addSource(e.Stream, e.Position)
		}
	}
	if e.Link || e.Stream != stream {
		return
	}
	if l.own == -1 {
		l.own = int64(e.Version)
	}
	if e.Erased || l.erased {
		// The stream was erased: the process ended. What the runtime knew of it is
		// gone with the records' data, and nothing written after the erasure (by a
		// manager that had not seen it yet, or by anyone) revives it; it counts as
		// completed at the timestamp of the last record of its own.
		l.erased, l.recorded, l.completed = true, e.Timestamp, time.Time{}
		clear(l.pending)
		if e.Erased {
			switch e.Type {
			case DeadlineFired:
				l.erasedFired++
			case DeadlineScheduled, DeadlineCancelled, ProcessCompleted:
			default:
				l.erasedCommands++
			}
		}
		return
	}
	if l.issued == nil {
		l.issued = make(map[string]uint64)
		l.pending = make(map[string]Deadline)
	}
	if !own {
		return // a user's record, in the form of the runtime's or not: Apply's only
	}
	kind, _ := e.Metadata[MetaKind].(string)
	key, _ := e.Metadata[MetaKey].(string)
	switch kind {
	case KindCommand:
		l.commands++
		l.issued[key] = e.Version
		delete(l.pending, key)
	case KindDeadlineScheduled:
		due, _ := e.Data["due"].(string)
		at, err := time.Parse(time.RFC3339Nano, due)
		if err != nil {
			return // not written by this package; nothing to schedule
		}
		typ, _ := e.Data["type"].(string)
		corr, _ := e.Metadata[pmd.CorrelationID].(string)
		l.pending[key] = Deadline{Key: key, Due: at, Type: typ, Scheduled: e.ID, correlation: corr}
	case KindDeadlineFired:
		l.fired++
		delete(l.pending, key)
	case KindDeadlineCancelled:
		delete(l.pending, key)
	case KindCompleted:
		if at, err := time.Parse(time.RFC3339Nano, asString(e.Data["at"])); err == nil {
			l.completed = at
		}
		return
	default:
		return
	}
	l.recorded = e.Timestamp
}

func asString(v any) string { s, _ := v.(string); return s }

// done reports whether the process has issued a command and has no pending deadline:
// nothing will happen in it unless a new event comes, so retention may remove it.
// An erased process is done.
func (l *ledger) done() bool { return l.erased || l.commands > 0 && len(l.pending) == 0 }

// completedAt is when the process became done, by the manager's clock when a
// ProcessCompleted record says, else by the store's timestamp of its last record.
func (l *ledger) completedAt() time.Time {
	if !l.completed.IsZero() {
		return l.completed
	}
	return l.recorded
}

// doneAfter reports whether the process will be done once the records writes, which
// plan returned, are folded.
func (l *ledger) doneAfter(writes []pmd.EventData) bool {
	commands := l.commands
	pending := make(map[string]bool, len(l.pending))
	for k := range l.pending {
		pending[k] = true
	}
	for _, w := range writes {
		key, _ := w.Metadata[MetaKey].(string)
		switch w.Metadata[MetaKind] {
		case KindCommand:
			commands++
			delete(pending, key)
		case KindDeadlineScheduled:
			pending[key] = true
		case KindDeadlineFired, KindDeadlineCancelled:
			delete(pending, key)
		}
	}
	return commands > 0 && len(pending) == 0
}

// completedRecord is the ProcessCompleted record of a process done at now, landing at
// version in stream, caused by what caused the records before it (last).
func completedRecord(ns uuid.UUID, stream string, version uint64, now time.Time, last pmd.EventData) pmd.EventData {
	return pmd.EventData{
		ID: recordID(ns, stream, version), Type: ProcessCompleted,
		Data: map[string]any{"at": now.UTC().Format(time.RFC3339Nano)},
		Metadata: map[string]any{
			pmd.CausationID:   last.Metadata[pmd.CausationID],
			pmd.CorrelationID: last.Metadata[pmd.CorrelationID],
			MetaKind:          KindCompleted,
		},
	}
}

// erasedStatus is where the process of an erased ledger stood before the erasure, if
// it had no deadline pending then, as far as the types of its erased records tell
// (their metadata, which said what they were, is gone): expired once a DeadlineFired,
// completed once a command (a record of any other type than the runtime's deadline and
// completion records), else open. A command of one of those types would be taken for
// such a record.
func (l *ledger) erasedStatus() Status {
	switch {
	case l.erasedFired > 0:
		return StatusExpired
	case l.erasedCommands > 0:
		return StatusCompleted
	default:
		return StatusOpen
	}
}

func (l *ledger) status() Status {
	switch {
	case l.erased:
		return StatusCompleted
	case l.fired > 0:
		return StatusExpired
	case l.commands > 0 && len(l.pending) == 0:
		return StatusCompleted
	default:
		return StatusOpen
	}
}

// firstDeadline returns the pending deadline deadlines would list first (earliest due,
// then key) by a scan, without sorting them: the runtime asks it at least twice for every
// event it handles, and plan walks every pending deadline for each event anyway, so a
// scan costs the event what it already pays, where the sort was most of the cost of an
// event of a process with 1,000 deadlines pending (bench/README.md, Session 12).
func (l *ledger) firstDeadline() (Deadline, bool) {
	var out Deadline
	found := false
	for _, d := range l.pending {
		if !found || d.Due.Before(out.Due) || d.Due.Equal(out.Due) && d.Key < out.Key {
			out, found = d, true
		}
	}
	return out, found
}

// deadlines lists the pending deadlines by due time, then key.
func (l *ledger) deadlines() []Deadline {
	out := make([]Deadline, 0, len(l.pending))
	for _, d := range l.pending {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Due.Equal(out[j].Due) {
			return out[i].Due.Before(out[j].Due)
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// proc is one process being replayed, with the definition's state type erased so that
// the runtime needs no type parameter.
type proc interface {
	// apply folds e. Once a callback of the definition panicked (failure), the state
	// stays as it was before: only the ledger folds e.
	apply(e *pmd.Event)
	// failure is the first panic of the definition's callbacks for this process, nil if
	// none: plan returns it, and the runtime holds the process (see PanicError).
	failure() *PanicError
	ledger() *ledger
	// trusts is which records of the stream are the runtime's.
	trusts() *trust
	state() any
	// encodeState is the state as a snapshot holds it.
	encodeState() ([]byte, error)
	// plan returns the events to write after the trigger's link (trigger nil: a deadline
	// check), landing from version next on, and the commands among them; their ids are
	// made in the namespace ns.
	plan(ns uuid.UUID, trigger *pmd.Event, now time.Time, next uint64) ([]pmd.EventData, []Command, error)
}

// machine is a Definition with its state type erased.
type machine interface {
	name() string
	handles() []string
	processID(pmd.Event) (string, bool)
	// start is a new process whose records t tells from others'.
	start(processID string, t *trust) proc
	// restore is the process of a snapshot: its ledger, and its state decoded from
	// what encodeState returned.
	restore(processID string, l ledger, state []byte, t *trust) (proc, error)
	// snapshots says whether states can be snapshotted: "" if they can, else why not.
	snapshots() string
	// fingerprint names the fold a snapshot comes from; see Definition.Version.
	fingerprint() string
}

func (d Definition[S]) name() string                          { return d.Name }
func (d Definition[S]) handles() []string                     { return d.Handles }
func (d Definition[S]) processID(e pmd.Event) (string, bool)  { return d.ProcessID(e) }
func (d Definition[S]) start(processID string, t *trust) proc { return d.newProcess(processID, t) }
func (d Definition[S]) newProcess(processID string, t *trust) *process[S] {
	p := &process[S]{def: &d, id: processID, stream: d.Name + "$" + processID, l: newLedger(), t: t}
	p.s = p.init()
	return p
}

// init is Init's state, or the zero state once Init panicked (failure).
func (p *process[S]) init() (s S) {
	defer catch(p.stream, "Init", -1, &p.panicked)
	return p.def.Init(p.id)
}

func (d Definition[S]) restore(processID string, l ledger, state []byte, t *trust) (proc, error) {
	p := d.newProcess(processID, t)
	s, err := decodeState[S](state)
	if err != nil {
		return nil, err
	}
	p.s, p.l = s, l
	return p, nil
}

func (d Definition[S]) snapshots() string   { return encodable(reflect.TypeFor[S]()) }
func (d Definition[S]) fingerprint() string { return fingerprint(d.Version, reflect.TypeFor[S]()) }

type process[S any] struct {
	def    *Definition[S]
	id     string
	stream string
	s      S
	l      ledger
	t      *trust // which records of the stream are the runtime's
	// panicked is the first panic of a callback for this process: the state stays as
	// it was before it, and nothing is decided on it.
	panicked *PanicError
}

func (p *process[S]) apply(e *pmd.Event) {
	if p.panicked == nil {
		p.s = p.applied(e)
	}
	p.l.observe(p.stream, e, p.t.own(p.stream, e))
}

// applied is Apply(state, e), or the state unchanged if Apply panics (failure).
func (p *process[S]) applied(e *pmd.Event) (s S) {
	s = p.s
	defer catch(p.stream, "Apply", int64(e.Version), &p.panicked)
	return p.def.Apply(p.s, *e)
}

func (p *process[S]) failure() *PanicError { return p.panicked }

// decided is Decide(state), or a *PanicError if it panics.
func (p *process[S]) decided() (cmds []Command, err error) {
	defer func() {
		if p.panicked != nil {
			cmds, err = nil, p.panicked
		}
	}()
	defer catch(p.stream, "Decide", -1, &p.panicked)
	return p.def.Decide(p.s), nil
}

func (p *process[S]) encodeState() ([]byte, error) { return encodeState(p.s) }

func (p *process[S]) ledger() *ledger { return &p.l }
func (p *process[S]) trusts() *trust  { return p.t }
func (p *process[S]) state() any      { return p.s }

// A DecideError reports a Decide result the runtime refuses: it is a bug in the
// definition, not in the events.
type DecideError struct {
	Stream string
	Reason string
}

func (e *DecideError) Error() string { return fmt.Sprintf("pm: %s: decide: %s", e.Stream, e.Reason) }

// Is makes errors.Is(err, ErrInvalidDefinition) hold.
func (e *DecideError) Is(target error) bool { return target == ErrInvalidDefinition }

func (p *process[S]) plan(ns uuid.UUID, trigger *pmd.Event, now time.Time, next uint64) ([]pmd.EventData, []Command, error) {
	if p.l.erased {
		return nil, nil, nil // ended: Decide is not asked again
	}
	if p.panicked != nil {
		return nil, nil, p.panicked // nothing is decided on a state the fold did not finish
	}
	var causation uuid.UUID
	var correlation string
	if trigger != nil {
		causation = trigger.ID
		correlation, _ = trigger.Metadata[pmd.CorrelationID].(string)
		if correlation == "" {
			correlation = trigger.ID.String()
		}
	} else {
		// A deadline check: nothing to do unless a deadline is due; its records are
		// caused by the DeadlineScheduled record of the first one due.
		due, ok := p.l.firstDeadline()
		if !ok || due.Due.After(now) {
			return nil, nil, nil
		}
		causation, correlation = due.Scheduled, due.correlation
		if correlation == "" {
			correlation = causation.String()
		}
	}
	var (
		out    []pmd.EventData
		cmds   []Command
		seen   = make(map[string]bool)
		wanted = make(map[string]bool)
	)
	emit := func(kind, key, typ string, data map[string]any) uuid.UUID {
		id := recordID(ns, p.stream, next)
		next++
		out = append(out, pmd.EventData{
			ID: id, Type: typ, Data: data,
			Metadata: map[string]any{
				pmd.CausationID:   causation.String(),
				pmd.CorrelationID: correlation,
				MetaKind:          kind,
				MetaKey:           key,
			},
		})
		return id
	}
	issue := func(key string, c Command) {
		c.Key, c.At, c.ProcessID, c.Correlation = key, time.Time{}, p.id, correlation
		c.ID = emit(KindCommand, key, c.Type, c.Data)
		cmds = append(cmds, c)
		seen[key] = true
	}
	decided, err := p.decided()
	if err != nil {
		return nil, nil, err
	}
	for i, c := range decided {
		key := c.key()
		if reason := checkType(c.Type); reason != "" {
			return nil, nil, &DecideError{Stream: p.stream, Reason: fmt.Sprintf("command %d: type %s", i, reason)}
		}
		// Refused here, not by the store's write: Memory and pmtest, which write
		// nothing, decide as the runtime does.
		if path, reason, ok := pmd.Unwritable(c.Data, "data"); ok {
			return nil, nil, &DecideError{Stream: p.stream, Reason: fmt.Sprintf("command %d: data%s: %s", i, path, reason)}
		}
		if seen[key] || wanted[key] {
			return nil, nil, &DecideError{Stream: p.stream, Reason: fmt.Sprintf("command %d: key %q returned twice", i, key)}
		}
		if _, done := p.l.issued[key]; done {
			seen[key] = true
			continue
		}
		if c.At.IsZero() {
			issue(key, c)
			continue
		}
		due := c.At.UTC()
		if !due.After(now) {
			if d, ok := p.l.pending[key]; ok {
				due = d.Due
			}
			emit(KindDeadlineFired, key, DeadlineFired, map[string]any{"key": key, "due": due.Format(time.RFC3339Nano)})
			issue(key, c)
			continue
		}
		wanted[key] = true
		if d, ok := p.l.pending[key]; ok && d.Due.Equal(due) {
			continue
		}
		emit(KindDeadlineScheduled, key, DeadlineScheduled, map[string]any{
			"key": key, "due": due.Format(time.RFC3339Nano), "type": c.Type, "data": c.Data,
		})
	}
	keys := make([]string, 0, len(p.l.pending))
	for key := range p.l.pending {
		if !seen[key] && !wanted[key] {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		emit(KindDeadlineCancelled, key, DeadlineCancelled, map[string]any{"key": key})
	}
	return out, cmds, nil
}
