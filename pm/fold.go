package pm

import (
	"context"
	"errors"
	"fmt"

	"github.com/pmd-dev/pmd"
)

// fold folds the stream of process pid from its newest snapshot that can be trusted, or
// from its first event: what a process that is not in the cache costs, once.
func (m *Manager) fold(ctx context.Context, pid string) (*entry, error) {
	return m.foldFor(ctx, pid, nil, nil)
}

// foldFor is fold, for a view when damaged is not nil: a damaged record of the
// runtime's own is then passed over too, its version noted in damaged with those of
// the damaged linked facts (passOver), where the runtime's fold stops at it. With hold
// set (PageOptions.Hold), the events are read undecoded and hold decodes each, given
// back once applied: a server's view then decodes no event of the fold uncounted.
func (m *Manager) foldFor(ctx context.Context, pid string, damaged *[]int64, hold func(*pmd.Event) (func(), error)) (*entry, error) {
	stream := m.name + "$" + pid
	t, err := m.trustNow(ctx)
	if err != nil {
		return nil, err
	}
	hold = namingStream(hold, stream)
	e := &entry{pid: pid, p: m.def.start(pid, t), snap: -1, erasures: m.store.Erasures()}
	from := uint64(0)
	if m.snapshotsOn() {
		sn, _, ok, err := m.findSnapshot(ctx, pid, -1)
		if err != nil {
			return nil, err
		}
		if ok {
			p, err := m.def.restore(pid, sn.l, sn.state, t)
			if err != nil {
				// The fingerprint matched, so the bytes are damaged: the stream still
				// has everything.
				m.logger.Warn("pm: ignoring a snapshot that does not decode", "manager", m.name, "process", pid, "err", err)
			} else {
				e.p, e.snap, from = p, sn.l.last, uint64(sn.l.last)+1
			}
		}
	}
	exists := true
read:
	for {
		for ev, err := range holding(m.store.ReadStream(ctx, stream, pmd.ReadOptions{From: from, Encoded: hold != nil}), hold) {
			if errors.Is(err, pmd.ErrStreamNotFound) {
				exists = false
				break read
			}
			if ce := damageIn(err, stream); ce != nil && damaged != nil {
				if err := m.passOver(ctx, pid, e.p.ledger(), ce, damaged); err != nil {
					return nil, err
				}
				from = ce.Version + 1
				continue read
			}
			if err != nil {
				ce, lerr := m.damagedLink(ctx, pid, err)
				if lerr != nil {
					return nil, lerr
				}
				if ce == nil {
					return nil, fmt.Errorf("pm: read %s: %w", stream, err)
				}
				e.p.ledger().skipLink(int64(ce.Version), ce.Position)
				from = ce.Version + 1
				continue read
			}
			e.p.apply(&ev.Event)
			ev.release()
		}
		break
	}
	e.exists = exists
	if exists && e.p.ledger().last < 0 {
		// The stream's retention hides every record of it (an admin's truncate_before):
		// the process goes on from the state it starts from (see "Retention of a process
		// stream" in doc.go), its versions from the last one the stream assigned, not
		// from 0; an erased one stays ended. Erased is asked about the stream's first
		// version, which every erasure of it covers: its last may be a fact linked after
		// the erasure (by a manager that had the process cached), which none covers. A
		// stream erased in a life before a deletion counts as erased too: stopped on a
		// guess rather than issuing again what an erased process issued.
		info, err := m.store.StreamInfo(stream)
		if err != nil {
			return nil, fmt.Errorf("pm: %s: %w", stream, err)
		}
		e.next = uint64(info.Version + 1)
		if info.Version >= 0 {
			erased, err := m.store.Erased(stream, 0)
			if err != nil {
				return nil, fmt.Errorf("pm: %s: %w", stream, err)
			}
			e.p.ledger().erased = erased
		}
		return e, nil
	}
	if exists {
		e.next = uint64(e.p.ledger().last + 1)
		if e.p.ledger().erased {
			// An erased process is never snapshotted again (see snapshot): nothing
			// is due either.
			e.snap = e.p.ledger().last
		}
		return e, nil
	}
	// Never written, or deleted: versions go on from the last one ever assigned, and
	// what a snapshot said about an earlier life of the stream no longer counts.
	info, err := m.store.StreamInfo(stream)
	if err != nil {
		return nil, fmt.Errorf("pm: %s: %w", stream, err)
	}
	e.p, e.snap, e.next = m.def.start(pid, t), -1, uint64(info.Version+1)
	return e, nil
}

// namingStream is hold, its *pmd.CorruptError of an event that does not decode naming
// stream, the stream read, and the event's version there, when it names no stream: the
// hold of a listing (ListOptions.Hold) does not know which process stream it decodes
// for, and the fold passes over a damaged record of its stream only (damageIn).
func namingStream(hold func(*pmd.Event) (func(), error), stream string) func(*pmd.Event) (func(), error) {
	if hold == nil {
		return nil
	}
	return func(ev *pmd.Event) (func(), error) {
		release, err := hold(ev)
		var ce *pmd.CorruptError
		if errors.As(err, &ce) && ce.Stream == "" {
			named := *ce
			named.Stream, named.Version = stream, ev.Version
			return nil, &named
		}
		return release, err
	}
}

// findSnapshot returns the newest snapshot of process pid that covers at most version
// upto (all of them when upto is negative) and that the fold can trust: of this
// definition's fingerprint and of the stream's current life (a stream deleted and
// written again starts at a later version than the snapshot's first). It returns the
// record too. Snapshots of another fingerprint end the search: they are newer than any
// this definition could have written before it changed.
func (m *Manager) findSnapshot(ctx context.Context, pid string, upto int64) (snapshot, pmd.Event, bool, error) {
	stream := snapshotStream(m.name, pid)
	if !fits(stream) {
		return snapshot{}, pmd.Event{}, false, nil // a process an earlier version took: it has none (checkID)
	}
	t, err := m.trustNow(ctx)
	if err != nil {
		return snapshot{}, pmd.Event{}, false, err
	}
	for rec, err := range backward(ctx, m.store, stream) {
		if ce := damageIn(err, stream); ce != nil {
			// As one that does not decode: the snapshot before it, or the stream,
			// has everything.
			key := damagedRecord{ce.Stream, ce.Version, ce.Position}
			if _, logged := m.damagedViewed.LoadOrStore(key, true); !logged {
				m.logger.Warn("pm: passing over a damaged snapshot", "manager", m.name, "process", pid,
					"version", ce.Version, "position", ce.Position, "err", ce)
			}
			continue
		}
		if err != nil {
			return snapshot{}, pmd.Event{}, false, fmt.Errorf("pm: read %s: %w", stream, err)
		}
		if rec.Type != SnapshotType || !t.snapshot(&rec) {
			continue // not the runtime's: a user's record, in the form of a snapshot or not
		}
		sn, err := decodeSnapshot(rec.Data)
		if err != nil {
			m.logger.Warn("pm: ignoring a snapshot", "manager", m.name, "process", pid,
				"snapshot", rec.ID, "err", err)
			break
		}
		if sn.fingerprint != m.fingerprint {
			break
		}
		if upto >= 0 && sn.l.last > upto {
			continue
		}
		first, err := m.firstVersion(ctx, pid)
		if err != nil || first != sn.l.first {
			return snapshot{}, pmd.Event{}, false, err
		}
		// Erased since: the fold from the first event sees the erasure, as every
		// replay does, and the state as Apply folds the erased records. A damaged
		// record of the runtime's own where it looks cannot tell: that fold decides
		// too (a view passes the damage over, asking the store whether the record was
		// erased; Run stops at it). A damaged linked fact is looked past (erasedSince).
		gone, err := m.erasedSince(ctx, pid, &sn.l)
		if damageIn(err, m.name+"$"+pid) != nil {
			return snapshot{}, pmd.Event{}, false, nil
		}
		if err != nil || gone {
			return snapshot{}, pmd.Event{}, false, err
		}
		if gone, err = m.factsErasedSince(ctx, pid, &sn.l); err != nil || gone {
			return snapshot{}, pmd.Event{}, false, err
		}
		return sn, rec, true, nil
	}
	return snapshot{}, pmd.Event{}, false, nil
}

// errErasedSince says that the process stream was erased since the fold being decided
// on read it: handle folds it again, from the first event, and finds it ended.
var errErasedSince = errors.New("the process stream was erased since it was folded")

// errFactErasedSince says that the stream of a fact the fold being decided on folded
// with its data was erased since: handle folds the process again from the store, which
// folds the fact without its data, as every replay does.
var errFactErasedSince = errors.New("the stream of a fact folded with its data was erased since it was folded")

// erasedSince reports whether the process stream of pid holds an erased record of its
// own up to l.last that l has not folded (a snapshot's ledger, or a cached fold's):
// whether its first record (not a link), which every erasure erases if it erases any,
// reads erased now. It reads that one record; for a ledger that does not know which
// it is (ownUnknown), the stream from l.first on until it finds it, and l then knows:
// that scan goes on past a damaged linked fact (l holds what it made of it), not past
// a damaged record of the runtime's own, whose error it returns. A record no longer
// where l says is reported too: the fold from the first event is always right.
func (m *Manager) erasedSince(ctx context.Context, pid string, l *ledger) (bool, error) {
	if l.erased {
		return true, nil
	}
	stream := m.name + "$" + pid
	opts := pmd.ReadOptions{From: uint64(l.own), Limit: 1}
	switch {
	case l.own == -1 || l.last < 0:
		return false, nil
	case l.own == ownUnknown:
		opts = pmd.ReadOptions{From: uint64(max(l.first, 0)), Limit: int(l.last - max(l.first, 0) + 1)}
	}
	for ev, err := range readPassing(ctx, m.store, stream, opts) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			return true, nil
		}
		if ce := damageIn(err, stream); ce != nil && l.own == ownUnknown {
			link, lerr := m.linkDamaged(ctx, ce)
			if lerr != nil {
				return false, lerr
			}
			if link {
				continue
			}
		}
		if err != nil {
			return false, fmt.Errorf("pm: read %s: %w", stream, err)
		}
		if l.own == ownUnknown {
			if ev.Link || ev.Stream != stream {
				continue
			}
			l.own = int64(ev.Version)
		}
		return ev.Version != uint64(l.own) || ev.Link || ev.Erased, nil
	}
	if l.own == ownUnknown {
		l.own = -1 // none up to l.last
		return false, nil
	}
	return true, nil
}

// factsErasedSince reports whether a fact that l, the ledger of a snapshot of process
// pid, folded with its data reads erased now (its stream was erased since): the
// snapshot's state holds what the erasure was for, and the fold from the first event,
// which folds the erased fact without its data as every replay does, stands for it. It
// reads the first fact the ledger lists for each stream, or for a ledger of facts from
// more streams than it lists, or of a snapshot written before snapshots listed them,
// every link it covers (an erased one, even one folded erased, distrusts the snapshot
// then). A damaged fact cannot tell: the snapshot holds it (see damagedLink). The ledger
// of a snapshot written before snapshots listed the streams learns them from that read
// (sourcesAll, or sourcesMany past maxSources), so that the snapshots written from it
// list them.
func (m *Manager) factsErasedSince(ctx context.Context, pid string, l *ledger) (bool, error) {
	if l.sourcesOf != sourcesAll {
		if l.last < 0 || l.first < 0 {
			return false, nil
		}
		// Every link read has its data (or the snapshot is not used): the first of
		// each stream is the one to list.
		found := ledger{sourcesOf: sourcesAll}
		stream := m.name + "$" + pid
		for ev, err := range readPassing(ctx, m.store, stream, pmd.ReadOptions{From: uint64(l.first), Limit: int(l.last - l.first + 1)}) {
			if damageIn(err, stream) != nil {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("pm: read %s: %w", stream, err)
			}
			if int64(ev.Version) > l.last {
				break
			}
			if ev.Link && ev.Erased {
				return true, nil
			}
			if ev.Link {
				found.addSource(ev.Stream, ev.Position)
			}
		}
		if l.sourcesOf == sourcesUnknown {
			l.sources, l.sourcesOf = found.sources, found.sourcesOf
		}
		return false, nil
	}
	for _, pos := range l.sources {
		for ev, err := range m.store.ReadAll(ctx, pmd.ReadOptions{From: pos, Limit: 1}) {
			if errors.Is(err, pmd.ErrCorrupt) {
				break
			}
			if err != nil {
				return false, fmt.Errorf("pm: read the fact at position %d: %w", pos, err)
			}
			if ev.Position == pos && ev.Erased {
				return true, nil
			}
		}
	}
	return false, nil
}

// checkFactsErased fails with errFactErasedSince when a fact the cached fold e folded
// with its data was erased since (factsErasedSince, one read per stream of its facts).
// It reads them only when the store applied an erasure since e's facts were read, or
// since the last check of e found none (entry.erasures): a store that erases nothing
// costs the cache's decisions and snapshots no read. A fold of facts from more
// streams than a ledger lists (maxSources) is not checked: it folds again when it
// leaves the cache.
func (m *Manager) checkFactsErased(ctx context.Context, e *entry) error {
	l := e.p.ledger()
	if l.sourcesOf != sourcesAll {
		return nil
	}
	n := m.store.Erasures()
	if n == e.erasures && !m.hooks.alwaysCheckFacts {
		return nil
	}
	if f := m.hooks.factsChecked; f != nil {
		f(m.name + "$" + e.pid)
	}
	gone, err := m.factsErasedSince(ctx, e.pid, l)
	if err != nil {
		return err
	}
	if gone {
		return fmt.Errorf("pm: %s$%s: %w", m.name, e.pid, errFactErasedSince)
	}
	e.erasures = n
	return nil
}

// firstVersion is the version of the first visible event of the stream of process pid,
// -1 if it has none. A damaged one has its version too.
func (m *Manager) firstVersion(ctx context.Context, pid string) (int64, error) {
	stream := m.name + "$" + pid
	for ev, err := range m.store.ReadStream(ctx, stream, pmd.ReadOptions{Limit: 1}) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			return -1, nil
		}
		if ce := (*pmd.CorruptError)(nil); errors.As(err, &ce) && ce.Stream == stream {
			return int64(ce.Version), nil
		}
		if err != nil {
			return -1, fmt.Errorf("pm: read %s: %w", stream, err)
		}
		return int64(ev.Version), nil
	}
	return -1, nil
}

// snapshotsOn says whether this manager writes and reads snapshots.
func (m *Manager) snapshotsOn() bool { return m.opts.SnapshotEvery > 0 && !m.noSnapshots.Load() }

// snapshot writes the fold of e as a snapshot when the stream has grown by
// Options.SnapshotEvery events since the last one. A state that turns out not to survive
// msgpack turns snapshots off for the manager, which then only caches. An erased
// process gets none: a snapshot would put its state back into the snapshots stream the
// operator erases or deletes with the process stream (see doc.go, "Erasing a process"),
// and every later fold refuses it. Nor does a cached fold of a fact erased since it
// was folded with its data (checkFactsErased): it fails with errFactErasedSince, and
// handle folds the process again, which snapshots the fold from the store.
func (m *Manager) snapshot(ctx context.Context, e *entry) error {
	l := e.p.ledger()
	if !m.snapshotsOn() || !e.exists || l.erased || l.last-e.snap < int64(m.opts.SnapshotEvery) {
		return nil
	}
	if err := m.checkFactsErased(ctx, e); err != nil {
		return err
	}
	state, err := e.p.encodeState()
	if errors.Is(err, errUnencodable) {
		if m.noSnapshots.CompareAndSwap(false, true) {
			m.logger.Warn("pm: no snapshots: processes are folded from their streams and cached in memory",
				"manager", m.name, "reason", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	sn := snapshot{fingerprint: m.fingerprint, l: *l, state: state}
	stream := snapshotStream(m.name, e.pid)
	if !fits(stream) {
		// A process an earlier version took (checkID): it is folded from its stream.
		return nil
	}
	// The runtime's id for the version it lands at, as in the process stream: a
	// snapshot with any other id is not trusted (findSnapshot).
	info, err := m.store.StreamInfo(stream)
	if err != nil {
		return fmt.Errorf("pm: %s: %w", stream, err)
	}
	expected := pmd.NoStream
	if info.Exists {
		expected = pmd.AtVersion(uint64(info.Version))
	}
	rec := snapshotEvent(&sn)
	rec.ID = recordID(m.ns, stream, uint64(info.Version+1))
	_, err = m.store.Append(ctx, stream, expected, rec)
	if errors.Is(err, pmd.ErrWrongExpectedVersion) {
		// Another writer appended in between: the next event of the process tries again.
		m.logger.Warn("pm: another writer appended to a snapshots stream: the snapshot is written later",
			"manager", m.name, "stream", stream)
		return nil
	}
	if waitable(err) {
		// A full disk: a snapshot only shortens folds, so the next event of the process
		// tries again rather than hold it. A store stopped until a restart
		// (pmd.ErrNeedsRestart) writes no later snapshot, nor anything else: Run fails
		// on it, as on any write it refuses so.
		m.warnUnwritable(err, "a snapshot is written later")
		return nil
	}
	if err != nil {
		return fmt.Errorf("pm: write %s: %w", stream, err)
	}
	e.snap = l.last
	return nil
}

// damagedLink returns the damage err reports if it is that of a fact linked into the
// stream of process pid, logged: the fold passes it over, and the process goes on
// without the fact, as when the reader meets the damage first (see read). Damage to a
// record of the stream itself (the runtime's: a command, a deadline) is not passed
// over, nil: the process could issue again what it issued. Such records are the
// category <Name>'s, links are not, so one read of the category at the damaged
// position tells them apart.
func (m *Manager) damagedLink(ctx context.Context, pid string, err error) (*pmd.CorruptError, error) {
	stream := m.name + "$" + pid
	var ce *pmd.CorruptError
	if !errors.As(err, &ce) || ce.Stream != stream {
		return nil, nil
	}
	if link, err := m.linkDamaged(ctx, ce); err != nil || !link {
		return nil, err
	}
	m.logger.Error("pm: a process goes on without a damaged fact linked into its stream",
		"manager", m.name, "process", pid, "version", ce.Version, "position", ce.Position, "err", ce)
	return ce, nil
}

// linkDamaged reports whether ce, the damage of a record of a process stream, is that
// of a linked fact (see damagedLink), without logging it.
func (m *Manager) linkDamaged(ctx context.Context, ce *pmd.CorruptError) (bool, error) {
	for _, err := range m.store.ReadCategory(ctx, m.name, pmd.ReadOptions{From: ce.Position, Limit: 1}) {
		// Damage met here is taken for the runtime's own, whatever position it names:
		// damage that hides a run of records names the run's last (so a read goes on
		// after it), and an own record inside the run must not pass for a fact. At worst
		// a fact whose next own record is damaged too stops the fold, as own damage does.
		if errors.Is(err, pmd.ErrCorrupt) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("pm: read %s: %w", m.name, err)
		}
		break
	}
	return true, nil
}
