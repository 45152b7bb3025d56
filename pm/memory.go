package pm

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/vmihailenco/msgpack/v5"
)

// ErrInvalidProcessID is matched by the error for an event whose process id cannot name
// a stream. The runtime logs such an event and skips it.
var ErrInvalidProcessID = errors.New("invalid process id")

// Memory runs a Definition on events held in memory, with a clock it is told about: no
// store, no goroutines. It decides exactly as the runtime does (the same replay, the same
// deadline rules, the same records in the process stream) and passes event data through
// the encoding the store uses, so a definition sees numbers as it will in production.
// Package pmtest builds its test helpers on it. A Memory is not safe for concurrent use.
type Memory[S any] struct {
	def     Definition[S]
	handles map[string]bool
	now     time.Time
	pos     uint64
	procs   map[string]*memProc[S]
	issued  []Command
}

type memProc[S any] struct {
	p      *process[S]
	events []pmd.Event
	states []any                  // states[i] is the state after events[i]
	ids    map[uuid.UUID]struct{} // of events
}

// NewMemory returns a Memory running def with its clock at now.
func NewMemory[S any](def Definition[S], now time.Time) (*Memory[S], error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	m := &Memory[S]{def: def, handles: make(map[string]bool), now: now.UTC(), procs: make(map[string]*memProc[S])}
	for _, t := range def.Handles {
		m.handles[t] = true
	}
	return m, nil
}

// Now is the Memory's clock.
func (m *Memory[S]) Now() time.Time { return m.now }

// Handle hands e to the process manager as if the store delivered it: e is linked into
// its process stream (unless it is already there, which makes Handle a no-op, like a
// redelivery), the process decides, and the commands it issues are returned. Events of
// other types, or without a process id, are ignored. Fields the store would set and e
// lacks are filled in: ID (a fresh one), Position (the next), Timestamp (the clock),
// Stream ("<Type>$<process id>").
//
// As in the runtime, e is decided at its Timestamp: a deadline of its process due by then
// fires first, before e is linked; one that Decide sets due after it waits for Advance,
// even if the clock is past it.
func (m *Memory[S]) Handle(e pmd.Event) ([]Command, error) {
	if !m.handles[e.Type] {
		return nil, nil
	}
	id, ok := m.def.ProcessID(e)
	if !ok {
		return nil, nil
	}
	if reason := checkProcessID(m.def.Name, id); reason != "" {
		return nil, fmt.Errorf("pm: %s: event %s (%s): process id %q %s: %w", m.def.Name, e.ID, e.Type, id, reason, ErrInvalidProcessID)
	}
	m.pos++
	if e.ID == uuid.Nil {
		e.ID = uuid.NewSHA1(namespace, fmt.Appendf(nil, "memory fact %d", m.pos))
	}
	if e.Position == 0 {
		e.Position = m.pos
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = m.now
	}
	if e.Stream == "" {
		e.Stream = e.Type + "$" + id
	}
	var err error
	if e.Data, err = roundTrip(e.Data); err != nil {
		return nil, fmt.Errorf("pm: event %s data: %w", e.ID, err)
	}
	if e.Metadata, err = roundTrip(e.Metadata); err != nil {
		return nil, fmt.Errorf("pm: event %s metadata: %w", e.ID, err)
	}
	mp := m.proc(id)
	if _, linked := mp.ids[e.ID]; linked {
		return nil, nil
	}
	var fired []Command
	if d, ok := mp.p.l.firstDeadline(); ok && !d.Due.After(e.Timestamp) {
		if fired, err = m.step(mp, nil, nil, e.Timestamp); err != nil {
			return nil, err
		}
	}
	link := e
	link.Link = true
	link.Version = uint64(mp.p.l.last + 1)
	cmds, err := m.step(mp, &e, &link, e.Timestamp)
	if err != nil && len(mp.events) == 0 && mp.p.failure() == nil {
		// Refused (a bad decision): nothing of the process was kept. One the definition
		// panicked for is held from its first event on, as later.
		delete(m.procs, id)
	}
	return append(fired, cmds...), err
}

// Advance moves the clock on by d and fires the deadlines that are due, process by
// process in order of their first due deadline, returning the commands they issue. A
// process the definition panics for (or panicked for before) is held, as in the
// runtime, and the other processes go on: their deadlines fire, and Advance returns
// their commands with the first *PanicError. A decision the runtime would refuse (a
// DecideError: Run stops) ends Advance at once.
func (m *Memory[S]) Advance(d time.Duration) ([]Command, error) {
	m.now = m.now.Add(d)
	type due struct {
		at time.Time
		id string
	}
	var list []due
	for id, mp := range m.procs {
		if d, ok := mp.p.l.firstDeadline(); ok && !d.Due.After(m.now) {
			list = append(list, due{d.Due, id})
		}
	}
	slices.SortFunc(list, func(a, b due) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	var out []Command
	var held error // the first *PanicError
	for _, d := range list {
		cmds, err := m.step(m.procs[d.id], nil, nil, m.now)
		out = append(out, cmds...) // Apply panicking at a record just written: they stand
		var pe *PanicError
		switch {
		case errors.As(err, &pe):
			if held == nil {
				held = err
			}
		case err != nil:
			return out, err
		}
	}
	return out, held
}

func (m *Memory[S]) proc(id string) *memProc[S] {
	mp, ok := m.procs[id]
	if !ok {
		mp = &memProc[S]{p: m.def.newProcess(id, memoryTrust), ids: make(map[uuid.UUID]struct{})}
		m.procs[id] = mp
	}
	return mp
}

// step links trigger (unless nil), decides at time at and appends what the process
// writes. On a Decide error the process is left as it was.
func (m *Memory[S]) step(mp *memProc[S], trigger, link *pmd.Event, at time.Time) ([]Command, error) {
	before := *mp.p
	before.l = cloneLedger(&mp.p.l)
	next := uint64(mp.p.l.last + 1)
	var linked any // the state after link
	if link != nil {
		mp.p.apply(link)
		linked = mp.p.state()
		next++
	}
	writes, cmds, err := mp.p.plan(namespace, trigger, at, next)
	if err != nil {
		// A panic of Apply or Decide holds the process, as in the runtime: its later
		// events and deadlines return the same *PanicError, and nothing more is
		// decided for it.
		panicked := mp.p.panicked
		*mp.p = before
		mp.p.panicked = panicked
		return nil, err
	}
	stored := make([]pmd.Event, 0, len(writes))
	for i, w := range writes {
		e := pmd.Event{ID: w.ID, Type: w.Type, Timestamp: m.now, Stream: mp.p.stream, Version: next + uint64(i)}
		if e.Data, err = roundTrip(w.Data); err == nil {
			e.Metadata, err = roundTrip(w.Metadata)
		}
		if err != nil {
			*mp.p = before
			return nil, &DecideError{Stream: mp.p.stream, Reason: fmt.Sprintf("%s: cannot encode: %v", w.Type, err)}
		}
		stored = append(stored, e)
	}
	if link != nil {
		mp.events = append(mp.events, *link)
		mp.states = append(mp.states, linked)
		mp.ids[link.ID] = struct{}{}
	}
	for i := range stored {
		m.pos++
		stored[i].Position = m.pos
		mp.p.apply(&stored[i])
		mp.events = append(mp.events, stored[i])
		mp.states = append(mp.states, mp.p.state())
		mp.ids[stored[i].ID] = struct{}{}
		for j := range cmds {
			if cmds[j].ID == stored[i].ID {
				cmds[j].Data = stored[i].Data // as the dispatcher will hand it over
			}
		}
	}
	m.issued = append(m.issued, cmds...)
	if pe := mp.p.failure(); pe != nil {
		// Apply panicked at a record just written: the commands stand, and the
		// process decides nothing more (plan).
		return cmds, pe
	}
	return cmds, nil
}

func cloneLedger(l *ledger) ledger {
	c := *l
	c.issued = maps.Clone(l.issued)
	c.pending = maps.Clone(l.pending)
	c.sources = maps.Clone(l.sources)
	return c
}

// Commands returns every command issued so far, in the order they were issued.
func (m *Memory[S]) Commands() []Command { return slices.Clone(m.issued) }

// State returns the state of process id and whether the process is known: it has an
// event, or the definition panicked at its first (held, with the state before the panic).
// For an unknown process it is Init's state, or the zero state if Init panics.
func (m *Memory[S]) State(id string) (S, bool) {
	mp, ok := m.procs[id]
	if !ok {
		return m.def.newProcess(id, memoryTrust).s, false // a panicking Init caught: the zero state
	}
	return mp.p.s, true
}

// Process returns everything known about process id: its stream, the state after each
// of its events, its commands and pending deadlines, and the panic it is held for
// (Panic; a process held at its first event has no event). Deliveries are always empty:
// a Memory delivers nothing.
func (m *Memory[S]) Process(id string) (Process, bool) {
	mp, ok := m.procs[id]
	if !ok {
		return Process{}, false
	}
	return describe(m.def.Name, id, mp.p, slices.Clone(mp.events), slices.Clone(mp.states)), true
}

// Processes lists the ids of the processes with at least one event, or held at their
// first, sorted.
func (m *Memory[S]) Processes() []string {
	ids := make([]string, 0, len(m.procs))
	for id := range m.procs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// roundTrip passes m through msgpack the way the store stores event data.
func roundTrip(m map[string]any) (map[string]any, error) {
	if len(m) == 0 {
		return map[string]any{}, nil
	}
	if path, ok := pmd.HoldsItself(m); ok {
		// msgpack would run until the stack overflowed: the store refuses it too.
		return nil, fmt.Errorf("%s holds itself", path)
	}
	b, err := msgpack.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := msgpack.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
