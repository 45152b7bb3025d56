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
	markTypes := types
	if resume == 0 {
		markTypes = nil
	}
	t, err := m.loadTrust(ctx, resume, markTypes)
	if err != nil {
		return 0, err
	}
	var histories map[uuid.UUID]*history
	var d *dispatcher
	var src *commandSource
	if m.opts.Deliver != nil {
		if histories, err = m.readDeliveries(ctx, t); err != nil {
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
			if c, ok := commandOf(t, e.Stream, id, &e); ok {
				if h := histories[c.ID]; h == nil || !h.done {
					d.add(h.resume(m.newDelivery(c, &e)))
				}
			}
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
// (t) in a deliveries stream.
func (m *Manager) readDeliveries(ctx context.Context, t *trust) (map[uuid.UUID]*history, error) {
	out := make(map[uuid.UUID]*history)
	for e, err := range m.store.ReadCategory(ctx, m.name+".deliveries", pmd.ReadOptions{}) {
		if err != nil {
			return nil, fmt.Errorf("pm: %s: load deliveries: %w", m.name, err)
		}
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
	return out, nil
}

// loadTrust sets which records of the manager's streams are its own (trust): those with
// its ids, and those an earlier version wrote, below the legacy cutoff. The cutoff is
// the legacy_before of the store's legacy mark, a checkpoint with an id only this
// manager can make (legacyMarkID), of the first generation the store shows. Without
// one, it writes the mark at once, before reading anything, so that no record appended
// later passes for an earlier version's at the next start, even after a crash: a
// checkpoint of resume for types, under the first generation the store does not hold.
// Its cutoff is the log's end now when no generation is stored (a store written by an
// earlier version, or by none: this version has written nothing yet), else 0: an
// earlier mark is stored but no longer visible (its stream deleted, or retention hiding
// it), and its cutoff, which cannot be read, is no later than its own position; 0 is
// the only one that lets no record written since pass for an earlier version's.
func (m *Manager) loadTrust(ctx context.Context, resume uint64, types []string) (*trust, error) {
	for gen := 0; ; gen++ {
		if gen == maxLegacyMarks {
			return nil, fmt.Errorf("pm: %s: %d generations of the legacy mark are stored and none stays in view in %s: see its retention",
				m.name, gen, checkpointStream(m.name))
		}
		before, marked, err := m.readLegacyMark(ctx, gen)
		if err != nil {
			return nil, err
		}
		if !marked {
			if gen == 0 {
				before = m.store.LastPosition() + 1
			} else {
				before = 0
			}
			if err := m.writeLegacyMark(ctx, gen, before, resume, types); err != nil {
				return nil, err
			}
			// The store refuses a stored id (ErrDuplicateEvent), or takes the append for
			// a retry of the one that wrote it and writes nothing: either way the mark of
			// this generation stays out of view, and the next one is written.
			if _, shown, err := m.readLegacyMark(ctx, gen); err != nil {
				return nil, err
			} else if !shown {
				continue
			}
			if gen > 0 {
				m.logger.Warn("pm: the legacy mark is no longer visible (checkpoint stream deleted, or retention hides it): wrote a new one, and no record counts as an earlier version's any more",
					"manager", m.name, "generation", gen)
			}
		}
		t := &trust{ns: m.ns, legacyBefore: before}
		m.trust.Store(t)
		return t, nil
	}
}

// maxLegacyMarks bounds the generations of the legacy mark a start looks through.
const maxLegacyMarks = 10000

// writeLegacyMark appends the legacy mark of generation gen, with cutoff before: a
// checkpoint of position for types (nil: none recorded). An id the store holds already
// is no error: the caller looks the mark up again.
func (m *Manager) writeLegacyMark(ctx context.Context, gen int, before, position uint64, types []string) error {
	rec := pmd.EventData{ID: legacyMarkID(m.ns, m.name, gen), Type: checkpointType,
		Data: map[string]any{"position": position, legacyField: before}}
	if types != nil {
		rec.Data["types"] = types
	}
	_, err := m.store.Append(ctx, checkpointStream(m.name), pmd.Any, rec)
	if err != nil && !errors.Is(err, pmd.ErrDuplicateEvent) {
		return fmt.Errorf("pm: %s: write the legacy mark: %w", m.name, err)
	}
	return nil
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
