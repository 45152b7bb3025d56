package pm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// load reads what Run needs from the log and returns where to resume: the last
// checkpoint, the pending deadlines and the status of every process (from the records
// the runtime wrote, category <Name>), and the commands not delivered yet.
func (m *Manager) load(ctx context.Context) (uint64, error) {
	resume, types, err := m.readCheckpoint(ctx)
	if err != nil {
		return 0, err
	}
	if resume > 0 && types != nil {
		// The checkpoint says nothing of the events of a type added since below it;
		// reading them all again changes nothing for the others.
		added := slices.DeleteFunc(m.handledTypes(), func(t string) bool { return slices.Contains(types, t) })
		if len(added) > 0 {
			m.logger.Warn("pm: handled types grew since the checkpoint: the manager reads the log again from the start",
				"manager", m.name, "added", added, "checkpoint", resume)
			resume = 0
		}
	}
	t, marked, err := m.loadTrust(ctx)
	if err != nil {
		return 0, err
	}
	var histories map[uuid.UUID]*history
	var d *dispatcher
	var src *commandSource
	var records int
	if m.opts.Deliver != nil {
		if histories, records, err = m.readDeliveries(ctx, t); err != nil {
			return 0, err
		}
		d, src = m.newCommands()
	}
	end := m.store.LastPosition()
	prefix := m.name + "$"
	ledgers := make(map[string]*ledger)
	for e, err := range m.store.ReadCategory(ctx, m.name, pmd.ReadOptions{}) {
		if err != nil {
			return 0, fmt.Errorf("pm: %s: load: %w", m.name, err)
		}
		records++
		id, ok := strings.CutPrefix(e.Stream, prefix)
		if !ok {
			continue
		}
		l := ledgers[id]
		if l == nil {
			l = &ledger{last: -1, own: -1}
			ledgers[id] = l
		}
		own := t.own(e.Stream, &e)
		l.observe(e.Stream, &e, own)
		if d != nil && own {
			if c, ok := commandOf(t, e.Stream, id, &e); ok && src.deliverable(c) {
				if h := histories[c.ID]; h == nil || !h.done {
					d.add(h.resume(m.newDelivery(c, &e, d.opts.holdBytes-d.held)))
				}
			}
		}
	}
	// Without a mark, the first checkpoint written is the mark; at once when records of an
	// earlier version may be among those read, so that no later record passes for one
	// of them at the next start.
	m.markPending = !marked
	if !marked && records > 0 {
		markTypes := types
		if resume == 0 {
			markTypes = nil
		}
		// Not best effort, as a checkpoint is: Run waits for it (untilWritable).
		if err := m.untilWritable(ctx, "the manager starts once its legacy mark is written", func() error {
			return m.writeCheckpoint(ctx, resume, markTypes)
		}); err != nil {
			return 0, err
		}
	}
	total, err := m.countProcesses()
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts = Counts{Open: total}
	clear(m.counted)
	for id, l := range ledgers {
		info, err := m.store.StreamInfo(prefix + id)
		if err != nil {
			return 0, err
		}
		if !info.Exists {
			continue // deleted: its records no longer make up a process
		}
		m.counts.add(StatusOpen, -1)
		m.counts.add(l.status(), 1)
		m.noteCountedLocked(id, l)
		if at, ok := m.wakeAt(l); ok {
			m.timers.set(id, at)
		}
	}
	if d != nil {
		src.cursor = end + 1
		m.delivery, m.cmdsrc = d, src
	}
	if resume > 0 {
		m.seen, m.queued = resume-1, resume-1
	}
	m.saved = resume
	return resume, nil
}

// readCheckpoint returns the resume position last written, 0 for none, and the handled
// types it was written for (nil for a checkpoint written before checkpoints carried
// them: taken as the types handled now). The stream is a user stream: a record that is
// not a checkpoint (a user's, or erased) is passed over, and so is a damaged one (the
// store lists it in its problems): an older checkpoint only has facts read again, which
// changes nothing.
func (m *Manager) readCheckpoint(ctx context.Context) (uint64, []string, error) {
	stream := checkpointStream(m.name)
	for e, err := range backward(ctx, m.store, stream) {
		var damaged *pmd.CorruptError
		if errors.As(err, &damaged) {
			m.logger.Error("pm: passed over a damaged checkpoint", "manager", m.name, "err", damaged)
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("pm: %s: read checkpoint: %w", m.name, err)
		}
		pos, ok := asUint64(e.Data["position"])
		types, typesOK := checkpointTypes(e.Data)
		if !ok || !typesOK || e.Type != checkpointType {
			m.logger.Warn("pm: passed over a record of the checkpoint stream that is not a checkpoint",
				"manager", m.name, "stream", stream, "version", e.Version, "type", e.Type, "erased", e.Erased)
			continue
		}
		return pos, types, nil
	}
	return 0, nil, nil
}

// checkpointTypes reads the handled types of a checkpoint's data: nil when it has none
// (written before checkpoints carried them); false when they are not a list of strings.
func checkpointTypes(data map[string]any) ([]string, bool) {
	v, ok := data["types"]
	if !ok {
		return nil, true
	}
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	types := make([]string, 0, len(list))
	for _, t := range list {
		typ, ok := t.(string)
		if !ok {
			return nil, false
		}
		types = append(types, typ)
	}
	return types, true
}

// readDeliveries returns the history of every command with a record of the runtime's
// (t) in a deliveries stream, and how many records the streams hold.
func (m *Manager) readDeliveries(ctx context.Context, t *trust) (map[uuid.UUID]*history, int, error) {
	out := make(map[uuid.UUID]*history)
	records := 0
	from := uint64(0)
	for {
		var damaged *pmd.CorruptError
		for e, err := range m.store.ReadCategory(ctx, m.name+".deliveries", pmd.ReadOptions{From: from}) {
			if errors.As(err, &damaged) {
				break
			}
			if err != nil {
				return nil, 0, fmt.Errorf("pm: %s: load deliveries: %w", m.name, err)
			}
			records++
			d, ok := deliveryOf(&e)
			if !ok || !t.delivery(&e) {
				continue
			}
			h := out[d.CommandID]
			if h == nil {
				h = &history{}
				out[d.CommandID] = h
			}
			h.observe(d)
		}
		if damaged == nil {
			return out, records, nil
		}
		// Passed over, as a subscription passes over a damaged record of its own: at
		// worst its command is attempted again (at least once), at once if the record
		// said when to retry. Failing would stop every start until a repair.
		m.logger.Error("pm: passed over a damaged delivery record", "manager", m.name, "err", damaged)
		records++
		from = damaged.Position + 1
	}
}

// loadTrust sets which records of the manager's streams are its own (trust): those with
// its ids, and those an earlier version wrote, below the legacy cutoff. The cutoff is
// the legacy_before of the store's legacy mark, a checkpoint with an id only this
// manager can make (legacyMarkID); without one (a store written by an earlier version,
// or by none), the log's end now: this version has written nothing yet. marked says
// whether the mark is stored.
func (m *Manager) loadTrust(ctx context.Context) (*trust, bool, error) {
	before, marked, err := m.readLegacyMark(ctx)
	if err != nil {
		return nil, false, err
	}
	if !marked {
		before = m.store.LastPosition() + 1
	}
	t := &trust{ns: m.ns, legacyBefore: before}
	m.trust.Store(t)
	return t, marked, nil
}

// countProcesses counts the process streams with a visible event.
func (m *Manager) countProcesses() (int, error) {
	prefix, after, n := m.name+"$", "", 0
	for {
		page, err := m.store.Streams(prefix, after, streamsPageSize)
		if err != nil {
			return 0, err
		}
		for _, s := range page {
			if s.Exists {
				n++
			}
		}
		if len(page) < streamsPageSize {
			return n, nil
		}
		after = page[len(page)-1].Name
	}
}

// asUint64 reads a non-negative integer of any width, as msgpack hands them back.
func asUint64(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, true
	case uint32:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint8:
		return uint64(x), true
	case uint:
		return uint64(x), true
	case int64:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int8:
		return uint64(x), x >= 0
	case int:
		return uint64(x), x >= 0
	case float64:
		return uint64(x), x >= 0 && x < math.MaxUint64 && x == math.Trunc(x)
	}
	return 0, false
}
