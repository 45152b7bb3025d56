package pm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pmd-dev/pmd"
)

// ProcessRemoved is the event type of the marker that retention leaves of a removed
// process, in the stream "<Name>.removed$<process id>". Data: version (the last
// version of the process stream), completed and at (when the process was done and
// when it was removed, RFC 3339 with nanoseconds, UTC).
const ProcessRemoved = "ProcessRemoved"

// removedStream is the marker stream of a removed process. Its category,
// "<Name>.removed", is not the process streams' one, so loading never reads it.
func removedStream(name, id string) string { return name + ".removed$" + id }

// removeRecheck is how long a due removal waits for its process's commands that are
// not delivered or skipped yet before it looks again.
const removeRecheck = time.Minute

// removalDue reports whether retention removes a process whose fold is l at now.
func (m *Manager) removalDue(l *ledger, now time.Time) bool {
	if m.opts.Retention.Completed <= 0 || !l.done() {
		return false
	}
	at, ok := m.wakeAt(l)
	return ok && !at.After(now)
}

// remove removes the process of e, done long enough: it writes the marker first, so
// that from then on no event can start the process again, then deletes the snapshots
// (which only shorten folds), the process stream, expecting the version folded (a
// conflict makes handle fold again and decide again), and the deliveries last, so that
// a crash before the process stream is gone never loses what was delivered. A crash
// in between makes the next Run remove the process again: the marker is written once.
// Each write waits while the store cannot write (untilWritable), the process holding.
func (m *Manager) remove(ctx context.Context, e *entry, now time.Time) error {
	pid, l := e.pid, e.p.ledger()
	if m.cmdsrc != nil && m.cmdsrc.undelivered(pid) {
		m.mu.Lock()
		m.setTimerLocked(pid, now.Add(removeRecheck))
		m.mu.Unlock()
		m.cache.put(e)
		return nil
	}
	stream := m.name + "$" + pid
	// A process an earlier version took (checkID) may have streams that cannot be
	// named: it has none of them, and needs no marker, as no event of its id can start
	// it again once its stream is gone.
	const waits = "a done process waits until its removal is written"
	if marker := removedStream(m.name, pid); fits(marker) {
		err := m.untilWritable(ctx, waits, func() error {
			_, err := m.store.Append(ctx, marker, pmd.NoStream, pmd.EventData{
				Type: ProcessRemoved,
				Data: map[string]any{
					"version":   e.next - 1,
					"completed": l.completedAt().UTC().Format(time.RFC3339Nano),
					"at":        now.UTC().Format(time.RFC3339Nano),
				},
			})
			return err
		})
		if err != nil && !errors.Is(err, pmd.ErrWrongExpectedVersion) {
			return fmt.Errorf("pm: remove %s: marker: %w", stream, err)
		}
		if f := m.hooks.afterRemovalMarker; f != nil {
			f(marker)
		}
	}
	if snapshots := snapshotStream(m.name, pid); fits(snapshots) {
		if err := m.untilWritable(ctx, waits, func() error { return m.store.DeleteStream(ctx, snapshots, pmd.Any) }); err != nil {
			return fmt.Errorf("pm: remove %s: snapshots: %w", stream, err)
		}
	}
	if err := m.untilWritable(ctx, waits, func() error { return m.store.DeleteStream(ctx, stream, pmd.AtVersion(e.next-1)) }); err != nil {
		return fmt.Errorf("pm: remove %s: %w", stream, err)
	}
	if deliveries := deliveriesStream(m.name, pid); fits(deliveries) {
		if err := m.untilWritable(ctx, waits, func() error { return m.store.DeleteStream(ctx, deliveries, pmd.Any) }); err != nil {
			return fmt.Errorf("pm: remove %s: deliveries: %w", stream, err)
		}
	}
	m.mu.Lock()
	m.timers.remove(pid)
	m.counts.add(l.status(), -1)
	delete(m.counted, pid)
	m.removed++
	m.broadcastLocked()
	m.mu.Unlock()
	m.logger.Info("pm: removed a done process", "manager", m.name, "process", pid,
		"completed", l.completedAt(), "retention", m.opts.Retention.Completed)
	return nil
}

// wasRemoved reports whether retention removed process pid: one lookup in the store's
// index, made only for a process whose stream does not exist.
func (m *Manager) wasRemoved(pid string) (bool, error) {
	if !fits(removedStream(m.name, pid)) {
		return false, nil // a process an earlier version took: it has no marker (remove)
	}
	info, err := m.store.StreamInfo(removedStream(m.name, pid))
	if err != nil {
		return false, fmt.Errorf("pm: %s: %w", removedStream(m.name, pid), err)
	}
	return info.Exists, nil
}

// Why an event of a process is late (lateEvent).
const (
	lateRemoved = "skipping an event of a process removed by retention: it starts nothing"
	lateErased  = "skipping an event of a process whose stream was erased, which ended it: it starts nothing"
)

// lateEvent counts ev, an event of the removed or erased process pid (why says which),
// and logs it at most once a minute, saying how many were not logged since.
func (m *Manager) lateEvent(ev *pmd.Event, pid, why string) {
	now := m.clock.Now()
	m.mu.Lock()
	m.late++
	quiet, log := m.lateLog.Log(now)
	m.mu.Unlock()
	if log {
		m.logger.Warn("pm: "+why,
			"manager", m.name, "process", pid, "event", ev.ID, "type", ev.Type, "position", ev.Position,
			"suppressed", quiet)
	}
}
