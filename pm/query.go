package pm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/pmd-dev/pmd"
)

// ProcessSummary is one line of a list of processes.
type ProcessSummary struct {
	ID        string
	Status    Status
	Erased    bool  // the process stream was erased: the process ended (Process.Erased)
	Version   int64 // of the last event of the process stream
	Events    int   // handled events linked into the stream
	Commands  int   // commands issued
	Deadlines int   // pending deadlines
	// Created is the timestamp of the first event of the process stream (its first
	// fact), LastActivity that of the last.
	Created, LastActivity time.Time
	// Parked counts its parked commands (see Manager.Parked).
	Parked int
	// Panic says that a callback of the definition panicked for it (Process.Panic).
	Panic string
	// Damaged counts the damaged records of its stream the fold passed over
	// (Process.Damaged) since its newest snapshot, and the damaged command records
	// that snapshot lists as issued, which Commands leaves out, as ProcessPage does
	// (whose Damaged lists only those of its page of commands), once the store knows of
	// damage (Store.Problems: the scrub after Open, or any read that met it); before
	// that, List reads no command record the snapshot covers, and counts one damaged
	// since as a command. List reads them too when Problems reports something else (a
	// full disk, a damaged index, writes stopped), for the same counts.
	Damaged int
}

// Process returns everything about process id: its stream, the state after each of
// its events, its commands, pending deadlines and delivery attempts. It reads the store; the Manager need not be running.
// A process with no event is ErrProcessNotFound, unless the manager holds it: one that
// a callback of the definition panicked for at its first event has no event (nothing
// of it was written), and is shown with the panic, Version -1 and Init's state.
func (m *Manager) Process(ctx context.Context, id string) (Process, error) {
	var states []any
	p, events, damaged, err := m.replay(ctx, id, &states)
	if err != nil {
		return Process{}, err
	}
	v := describe(m.name, id, p, events, states)
	v.Damaged = damaged
	v.Panic = m.panicOf(id, p)
	if v.Deliveries, v.DeliveriesVersion, err = m.deliveries(ctx, id); err != nil {
		return Process{}, err
	}
	return v, nil
}

// panicOf says why process id, folded to p, is held: the panic of the fold, or else the
// one the running manager holds it for; "" if none, and for an erased process, whose
// panic may quote the data the erasure was for (and which has ended).
func (m *Manager) panicOf(id string, p proc) string {
	if p.ledger().erased {
		return ""
	}
	if pe := p.failure(); pe != nil {
		return pe.Error()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if pe := m.held[id]; pe != nil {
		return pe.Error()
	}
	return ""
}

// isHeld reports whether the manager holds process id (see hold): one held at its
// first event has no stream, and the views show it all the same.
func (m *Manager) isHeld(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held[id] != nil
}

// heldAfter is the ids of the processes the manager holds that sort after after,
// sorted: List shows those that have no stream where their ids sort.
func (m *Manager) heldAfter(after string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.held {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Processes lists the processes whose ids sort after after, in id order, at most limit
// of them (0 means 100). Each is folded for its status, from its newest snapshot on.
// List filters and orders them too.
func (m *Manager) Processes(ctx context.Context, after string, limit int) ([]ProcessSummary, error) {
	page, err := m.List(ctx, ListOptions{After: after, Limit: limit})
	return page.Processes, err
}

// Deliveries returns the recorded delivery attempts of the commands of process id, in
// the order they were made.
func (m *Manager) Deliveries(ctx context.Context, id string) ([]Delivery, error) {
	out, _, err := m.deliveries(ctx, id)
	return out, err
}

// deliveries reads the deliveries stream of process id, returning the attempts and the
// version of its last record (-1 for none), from which a reader can follow it.
func (m *Manager) deliveries(ctx context.Context, id string) ([]Delivery, int64, error) {
	if reason := m.checkID(id); reason != "" {
		return nil, -1, fmt.Errorf("pm: %s: process id %q %s: %w", m.name, id, reason, ErrInvalidProcessID)
	}
	stream := deliveriesStream(m.name, id)
	if !fits(stream) {
		return nil, -1, nil // a process an earlier version took: it has none (checkID)
	}
	t, err := m.trustNow(ctx)
	if err != nil {
		return nil, -1, err
	}
	var out []Delivery
	last := int64(-1)
	for e, err := range m.store.ReadStream(ctx, stream, pmd.ReadOptions{}) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, -1, fmt.Errorf("pm: read %s: %w", stream, err)
		}
		last = int64(e.Version)
		if d, ok := deliveryOf(&e); ok && t.delivery(&e) {
			out = append(out, d)
		}
	}
	return out, last, nil
}

// replay folds the stream of process id. When states is not nil, the state after each
// event is appended to it as the fold goes. A damaged record of the stream is passed
// over (passOver), its version returned in damaged.
func (m *Manager) replay(ctx context.Context, id string, states *[]any) (p proc, events []pmd.Event, damaged []int64, err error) {
	if reason := m.checkID(id); reason != "" {
		return nil, nil, nil, fmt.Errorf("pm: %s: process id %q %s: %w", m.name, id, reason, ErrInvalidProcessID)
	}
	stream := m.name + "$" + id
	t, err := m.trustNow(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	p = m.def.start(id, t)
	for e, err := range readPassing(ctx, m.store, stream, pmd.ReadOptions{}) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			if m.isHeld(id) {
				return p, nil, nil, nil // held at its first event: nothing of it was written
			}
			return nil, nil, nil, fmt.Errorf("pm: %s: %w", stream, ErrProcessNotFound)
		}
		if ce := damageIn(err, stream); ce != nil {
			if err := m.passOver(ctx, id, p.ledger(), ce, &damaged); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("pm: read %s: %w", stream, err)
		}
		p.apply(&e)
		events = append(events, e)
		if states != nil {
			*states = append(*states, p.state())
		}
	}
	return p, events, damaged, nil
}

// ProcessPage is Process for a long process: the state and deadlines of the whole
// process, folded from its newest snapshot, but only a page of its stream, the events
// with versions below before (all when before is negative), at most limit of them (0
// means 100), newest last, each with the state after it, and with PageOptions.PageBytes
// set, only the newest of those that fit in that many bytes (the last of the page
// however large); and a page of its commands, in the order they were issued, with their
// delivery records (PageOptions says which: the first 100, each with its first 100
// records, by default), CommandInfo saying where each stands and CommandsNext where the
// next page of them starts. Snapshot says which snapshot State was folded from; Older,
// where the next page (to the past) ends. It reads the page, the events after the
// newest snapshot, one command record per command of its page and the deliveries
// stream, never the whole stream, and holds only what it shows: each page of commands
// sorts the versions of every command issued and reads the whole deliveries stream, so
// paging through N commands, c a page, reads it N/c times. Damaged lists the damaged
// command records of the page of commands only. A process the manager holds at its
// first event is shown as Process shows it.
func (m *Manager) ProcessPage(ctx context.Context, id string, before int64, limit int, opts ...PageOptions) (Process, error) {
	if limit <= 0 {
		limit = 100
	}
	var o PageOptions
	for _, x := range opts {
		o = x
	}
	if reason := m.checkID(id); reason != "" {
		return Process{}, fmt.Errorf("pm: %s: process id %q %s: %w", m.name, id, reason, ErrInvalidProcessID)
	}
	stream := m.name + "$" + id
	var damaged []int64
	e, err := m.foldFor(ctx, id, &damaged, o.Hold)
	if err != nil {
		return Process{}, err
	}
	if !e.exists && !m.isHeld(id) {
		return Process{}, fmt.Errorf("pm: %s: %w", stream, ErrProcessNotFound)
	}
	l := e.p.ledger()
	hi := l.last
	if before >= 0 && before-1 < hi {
		hi = before - 1
	}
	lo := max(l.first, hi-int64(limit)+1)
	if o.PageBytes > 0 && hi >= lo && e.exists {
		// The events alone tell where the page starts at the latest: the fold then
		// starts from the snapshot below that, not below limit events back.
		if lo, err = m.pageStart(ctx, id, lo, hi, o); err != nil {
			return Process{}, err
		}
	}
	v := describe(m.name, id, e.p, nil, nil)
	if o.HoldState != nil && !l.erased {
		// Held for the answer, as the states of the page are (page); an erased process
		// shows none.
		if _, err := o.HoldState(l.last, v.State); err != nil {
			return Process{}, fmt.Errorf("pm: %s: %w", stream, err)
		}
	}
	v.Panic = m.panicOf(id, e.p)
	v.Older = -1
	if lo > l.first {
		v.Older = lo
	}
	if e.snap >= 0 {
		if v.Snapshot, err = m.snapshotInfo(ctx, id, e.snap); err != nil {
			return Process{}, err
		}
	}
	if hi >= lo && e.exists {
		b := pageBound{bytes: o.PageBytes, states: !l.erased}
		if v.Events, v.States, err = m.page(ctx, id, lo, hi, b, o, &damaged); err != nil {
			return Process{}, err
		}
		if len(v.Events) > 0 && int64(v.Events[0].Version) > lo {
			v.Older = int64(v.Events[0].Version) // the states cut the page shorter
		}
	}
	v.withoutState()
	cp, err := m.commandPage(ctx, id, l, o, &damaged)
	if err != nil {
		return Process{}, err
	}
	v.Commands, v.CommandInfo, v.CommandsNext, v.DeliveriesVersion = cp.commands, cp.info, cp.next, cp.last
	v.Deliveries = slices.Concat(cp.deliveries...)
	v.Damaged = sortedVersions(damaged)
	return v, nil
}

// PageOptions are the options of ProcessPage beyond its before and limit.
type PageOptions struct {
	// PageBytes bounds the page: it holds the newest events whose data and metadata,
	// with the states after them, come to at most PageBytes bytes of JSON (plus a few
	// dozen bytes an event for its other fields), and always the newest one, however
	// large. 0 means no bound but the limit. A server passes the bound of its answers,
	// so that a page of large events is not read (limit of them, and their states) only
	// to be cut to that afterwards.
	PageBytes int
	// CommandsFrom starts the page of commands at the first issued at that version of
	// the process stream or after it: the CommandsNext of the page before. 0 starts at
	// the first command. CommandsLimit bounds how many the page holds, 0 meaning 100.
	// With PageBytes set, the commands with their data and delivery records shown take
	// about half of it at most, always one.
	CommandsFrom  int64
	CommandsLimit int
	// AttemptsFrom leaves out the delivery records at versions of the deliveries stream
	// below it (the CommandInfo.AttemptsNext of a page before); AttemptsLimit bounds how
	// many records of each command the page shows, 0 meaning 100. Where a command
	// stands (CommandInfo) counts every record all the same.
	AttemptsFrom  int64
	AttemptsLimit int
	// Hold, when set, decodes the events of the process stream that the page reads
	// (those folded into the process's state from its newest snapshot, those shown,
	// those folded on the way to them from the snapshot below, those read to find
	// where the page starts, the command records of the page of commands, and the
	// records of the deliveries stream, read for where its commands stand): they are
	// read undecoded (pmd.ReadOptions.Encoded) and Hold decodes each in place
	// (pmd.DecodeData of its Event.Encoded) once it holds what the decoded event
	// takes, returning the func that gives that back, which the page calls once it
	// lets go of the event (not for those it shows). A server passes one that reserves
	// those bytes of its memory budget before decoding, so that no event of a page is
	// decoded uncounted. An error of Hold ends the page with it, but for a
	// *pmd.CorruptError naming the process stream, a damaged record the page passes
	// over as it does one the store reports. Nil decodes each event as it is read.
	Hold func(ev *pmd.Event) (release func(), err error)
	// HoldState, when set, is given each state the page keeps to show, once made and
	// before the page reads on: the process's state (version the last of the process)
	// and the state after each event of the page (its version), returning the func
	// that gives back what it holds for it, which the page calls once it lets go of the
	// state (not for those it shows). A server passes one that reserves what the
	// state's values take of its memory budget: the states of a page are built for its
	// answer, each a value of the definition's own, and can take many times their JSON
	// (Definition.Apply cloning a map of the events' data for each). An error of
	// HoldState ends the page with it. An erased process, which shows no state, asks
	// for none.
	HoldState func(version int64, state any) (release func(), err error)
}

// heldEvent is an event a page read, and what gives back what its PageOptions.Hold
// holds for it (a no-op without one).
type heldEvent struct {
	pmd.Event
	release func()
}

// readHeld is readPassing, reading undecoded with hold set and decoding each event
// with it: hold's error is yielded as a read's is, with the event.
func readHeld(ctx context.Context, store *pmd.Store, stream string, opts pmd.ReadOptions, hold func(*pmd.Event) (func(), error)) iter.Seq2[heldEvent, error] {
	opts.Encoded = hold != nil
	return holding(readPassing(ctx, store, stream, opts), hold)
}

// holding decodes each event of events, read undecoded when hold is set, with hold:
// hold's error is yielded as a read's is, with the event.
func holding(events iter.Seq2[pmd.Event, error], hold func(*pmd.Event) (func(), error)) iter.Seq2[heldEvent, error] {
	return func(yield func(heldEvent, error) bool) {
		for ev, err := range events {
			he := heldEvent{Event: ev, release: func() {}}
			if err == nil && hold != nil {
				var release func()
				if release, err = hold(&he.Event); err == nil {
					he.release = release
				}
			}
			if !yield(he, err) {
				return
			}
		}
	}
}

// pageBound bounds a page of events in bytes: 0 for no bound. states says whether
// the states after the events count (not for an erased process, which shows none).
type pageBound struct {
	bytes  int
	states bool
}

// eventOverhead is a lower bound of what an event takes in JSON beyond its type,
// stream, data and metadata: its id and the names of its fields.
const eventOverhead = 64

// eventSize is what e takes in JSON, about: its data and metadata, encoded, its type
// and stream, and eventOverhead.
func eventSize(e *pmd.Event) int {
	return jsonSize(e.Data) + jsonSize(e.Metadata) + len(e.Type) + len(e.Stream) + eventOverhead
}

// jsonSize is the length of v in JSON; 0 for a v JSON cannot encode (the server
// fails to encode it in its turn).
func jsonSize(v any) int {
	var c byteCounter
	if err := json.NewEncoder(&c).Encode(v); err != nil {
		return 0
	}
	return int(c)
}

// byteCounter counts the bytes written to it.
type byteCounter int

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// pageStart returns where the page of versions lo to hi of the stream of process id
// starts once bounded to size bytes, by the events alone: the oldest version such that
// it and the events after it fit (hi, however large), lo when all of them do, with o's
// PageBytes and Hold. It reads the stream backward from hi, to the first event that does
// not fit, holding one event at a time.
func (m *Manager) pageStart(ctx context.Context, id string, lo, hi int64, o PageOptions) (int64, error) {
	stream := m.name + "$" + id
	total, start := 0, int64(-1)
	for ev, err := range readHeld(ctx, m.store, stream, pmd.ReadOptions{From: uint64(hi), Backward: true, Limit: int(hi - lo + 1)}, o.Hold) {
		if damageIn(err, stream) != nil {
			continue // not on the page (page)
		}
		if err != nil {
			return 0, fmt.Errorf("pm: read %s: %w", stream, err)
		}
		n := eventSize(&ev.Event)
		ev.release()
		if int64(ev.Version) > hi {
			continue
		}
		if int64(ev.Version) < lo {
			break
		}
		if total += n; total > o.PageBytes && start >= 0 {
			return start, nil
		}
		start = int64(ev.Version)
	}
	return lo, nil
}

// snapshotInfo describes the snapshot of process id that covers version.
func (m *Manager) snapshotInfo(ctx context.Context, id string, version int64) (*SnapshotInfo, error) {
	_, rec, ok, err := m.findSnapshot(ctx, id, version)
	if err != nil || !ok {
		return nil, err
	}
	return &SnapshotInfo{Version: version, ID: rec.ID, Stream: rec.Stream, Position: rec.Position, Timestamp: rec.Timestamp}, nil
}

// page reads the versions lo to hi of the stream of process id with the state after
// each, folding from the newest snapshot below lo. Bound to b, it keeps the newest of
// them that fit, and always the last: those before are let go as the page grows past
// b, so that it never holds much more than b. A damaged record is passed over, its
// version added to damaged (passOver). Each event is decoded with o.Hold, when set,
// each state kept held with o.HoldState (b.states), and those the page does not keep
// are given back.
func (m *Manager) page(ctx context.Context, id string, lo, hi int64, b pageBound, o PageOptions, damaged *[]int64) ([]pmd.Event, []any, error) {
	stream := m.name + "$" + id
	t, err := m.trustNow(ctx)
	if err != nil {
		return nil, nil, err
	}
	p := m.def.start(id, t)
	from := int64(0)
	if m.snapshotsOn() && lo > 0 {
		sn, _, ok, err := m.findSnapshot(ctx, id, lo-1)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			if q, err := m.def.restore(id, sn.l, sn.state, t); err == nil {
				p, from = q, sn.l.last+1
			}
		}
	}
	var events []pmd.Event
	var states []any
	var sizes []int // of events, when bound
	var releases []func()
	total := 0
	// The limit only bounds the read: a stream written again after a delete starts past
	// version from, so the page ends at version hi, not after hi-from+1 events.
	for ev, err := range readHeld(ctx, m.store, stream, pmd.ReadOptions{From: uint64(from), Limit: int(hi - from + 1)}, o.Hold) {
		if ce := damageIn(err, stream); ce != nil {
			if int64(ce.Version) > hi {
				break // past the page, as an event would be
			}
			if err := m.passOver(ctx, id, p.ledger(), ce, damaged); err != nil {
				return nil, nil, err
			}
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("pm: read %s: %w", stream, err)
		}
		if int64(ev.Version) > hi {
			ev.release()
			break
		}
		p.apply(&ev.Event)
		if int64(ev.Version) < lo {
			ev.release()
			continue
		}
		events = append(events, ev.Event)
		states = append(states, p.state())
		release := ev.release
		if o.HoldState != nil && b.states {
			giveState, err := o.HoldState(int64(ev.Version), p.state())
			if err != nil {
				ev.release()
				return nil, nil, fmt.Errorf("pm: %s: %w", stream, err)
			}
			release = func() { ev.release(); giveState() }
		}
		if b.bytes <= 0 {
			continue
		}
		n := eventSize(&ev.Event)
		if b.states {
			n += jsonSize(p.state())
		}
		sizes, releases = append(sizes, n), append(releases, release)
		for total += n; total > b.bytes && len(events) > 1; {
			total -= sizes[0]
			events[0], states[0] = pmd.Event{}, nil // for the collector
			releases[0]()
			events, states, sizes, releases = events[1:], states[1:], sizes[1:], releases[1:]
		}
	}
	return events, states, nil
}

// readIssued reads the command records that l, the ledger of process id, lists as
// issued, in order, one one-event read each, and calls fn with each. A damaged one is
// passed over, its version added to damaged, and logged once as passOver does.
func (m *Manager) readIssued(ctx context.Context, id string, l *ledger, damaged *[]int64, fn func(*pmd.Event)) error {
	stream := m.name + "$" + id
	for _, v := range slices.Sorted(maps.Values(l.issued)) {
		for ev, err := range m.store.ReadStream(ctx, stream, pmd.ReadOptions{From: v, Limit: 1}) {
			if ce := damageIn(err, stream); ce != nil {
				*damaged = append(*damaged, int64(ce.Version))
				m.logOwnDamage(id, ce)
				break
			}
			if err != nil {
				return fmt.Errorf("pm: read %s: %w", stream, err)
			}
			fn(&ev)
		}
	}
	return nil
}
