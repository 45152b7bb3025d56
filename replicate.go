package pmd

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/pmd-dev/pmd/internal/msgpackwalk"
	pmdlog "github.com/pmd-dev/pmd/log"
	"github.com/vmihailenco/msgpack/v5"
)

// A store replicated by package cluster is a Raft state machine. Its callers' writes do
// not go to the committer: SetReplicator routes each one, encoded, to the cluster, which
// puts it in a Raft log entry with the leader's timestamp. Every node then hands the
// committed entries to ApplyWrites in log order, and the committer plans them as it
// plans any write (expected versions, duplicate ids, exact retries), against the same
// state on every node, with the leader's timestamp: every node writes the same records at
// the same positions, and agrees on which write won.
//
// The commit record of each replicated write carries its Raft index (log.Record.Applied),
// and, in an entry of several writes, its place there (log.Record.Slot), in the same log
// write as its records, so the store knows after any crash which writes it holds: it
// skips those at or below the last (index, slot) it wrote. An entry that wrote
// nothing (a refused write, an exact retry) records nothing, and need not: applied again
// after a restart, it meets the same state as the first time, since no record came after
// it, and is refused again.

// replication is the state of a replicated store.
type replication struct {
	fn      func(ctx context.Context, write []byte) (WriteResult, error)
	applied atomic.Uint64 // the Raft index of the last replicated write in the log
	// slot is the place of that write in its entry (ReplicatedWrite.Slot): written by
	// the committer with applied, read by ApplyWrites, which the writes it queued before
	// have answered.
	slot   atomic.Uint32
	ix     *engine.Indexer // owned by the applier: indexes copied records
	copies atomic.Uint64   // records copied in from another replica since Open
}

// replicated is what a request carried by a Raft entry adds to it.
type replicated struct {
	index  uint64          // the entry's Raft index; 0 for a request of the store's callers
	slot   uint32          // the write's place in its entry (ReplicatedWrite.Slot)
	ts     int64           // the leader's timestamp for the write's events
	copied []pmdlog.Record // records copied from another replica, instead of a write
}

// timestamp returns the timestamp r's events get: the leader's, or the committer's ts.
func (r replicated) timestamp(ts int64) int64 {
	if r.ts != 0 {
		return r.ts
	}
	return ts
}

// SetReplicator makes the store a replica of a cluster, before its first write: every
// write of its callers (Append, Link, Write, DeleteStream, SetRetention, EraseStream, the
// retention records of a scavenge) is encoded and given to fn instead of the committer,
// and the caller gets what fn returns. fn must get the write applied through
// ApplyWrites, on every replica, in one order. It returns Applied.
func (s *Store) SetReplicator(fn func(ctx context.Context, write []byte) (WriteResult, error)) (uint64, error) {
	r := &replication{fn: fn, ix: s.eng.NewIndexer()}
	idx, slot, err := s.lastApplied()
	if err != nil {
		return 0, err
	}
	r.applied.Store(idx)
	r.slot.Store(slot)
	s.repl.Store(r)
	return idx, nil
}

// Sync makes every record the store holds durable: a replica's writes are not fsynced
// (Raft's log holds their entries), so the cluster syncs before it takes a snapshot at
// Applied, after which Raft drops the entries up to it. The index never goes to disk
// ahead of the synced log (it syncs the log first), so after a power cut the store
// opens at a position at or after the last Sync, with Applied where the log ends, and
// Raft applies again every entry after its snapshot: the store skips those up to
// Applied and writes the rest. On a closed store it fails with ErrClosed (Close
// syncs the log itself).
func (s *Store) Sync() error {
	if s.closed() {
		return ErrClosed
	}
	if err := s.log.Sync(); err != nil {
		if errors.Is(err, pmdlog.ErrClosed) {
			return ErrClosed // Close began after the check
		}
		return err
	}
	return nil
}

// Applied is the Raft index of the last replicated write whose records the store holds
// (0 for none): the index on the last commit record of the log.
func (s *Store) Applied() uint64 {
	if r := s.repl.Load(); r != nil {
		return r.applied.Load()
	}
	return 0
}

// AppliedSlot is the place (ReplicatedWrite.Slot) of the write Applied names in its Raft
// entry: 0 for an entry of one write, or its first. The store holds the writes of that
// entry up to this one.
func (s *Store) AppliedSlot() uint32 {
	if r := s.repl.Load(); r != nil {
		return r.slot.Load()
	}
	return 0
}

// lastApplied reads the Raft index and slot off the last commit record of the log.
func (s *Store) lastApplied() (index uint64, slot uint32, err error) {
	for pos := s.log.LastPosition(); pos > 0; pos-- {
		rec, err := s.log.Read(pos)
		if err != nil {
			return 0, 0, fmt.Errorf("pmd: read the last applied Raft index at position %d: %w", pos, err)
		}
		if rec.Commit {
			return rec.Applied, rec.Slot, nil
		}
	}
	return 0, 0, nil
}

func (r *replication) replicate(ctx context.Context, req *request) (WriteResult, error) {
	b, err := encodeWrite(req)
	if err != nil {
		return WriteResult{}, err
	}
	return r.fn(ctx, b)
}

// ReplicatedWrite is a write a committed Raft entry holds, for ApplyWrites.
type ReplicatedWrite struct {
	Index uint64 // the entry's Raft index
	// Slot is the write's place, from 0, among the writes of an entry that holds
	// several; 0 for an entry of one write. A store orders the writes it applied by
	// (Index, Slot): after a crash that kept only the first writes of an entry, the
	// entry applied again writes the rest.
	Slot      uint32
	Timestamp int64  // the leader's time for the write, unix nanoseconds
	Write     []byte // the write as SetReplicator's fn got it
}

// Outcome is the result of one replicated write: what the writer gets.
type Outcome struct {
	Result WriteResult
	Err    error
	// Skipped says the store held the write already (its (index, slot) is at or below
	// the store's Applied and AppliedSlot): it was applied before a restart, and is not
	// applied again.
	Skipped bool
}

// ErrReplicaFailed is the error of a replicated write that could not be applied on this
// node (a failed log write): the node's copy is behind the entries that Raft considers
// applied, so its writes stop until it is restarted and applies them again.
var ErrReplicaFailed = errors.New("pmd: a replicated write could not be applied here: restart the node")

// ApplyWrites applies committed Raft entries, in order, and returns what each writer
// gets. It is deterministic: given the same entries after the same records, every node
// writes the same records. The writes of one call share the committer's batches (one
// log write and fsync for many). A write whose (Index, Slot) is at or below the store's
// last, (Applied, its slot), is skipped. When a write
// cannot be applied (the log write failed), the store stops taking writes and every
// entry from it on gets an error matching ErrReplicaFailed: the cluster must stop the node.
func (s *Store) ApplyWrites(ctx context.Context, ws []ReplicatedWrite) []Outcome {
	out := make([]Outcome, len(ws))
	repl := s.repl.Load()
	if repl == nil {
		for i := range out {
			out[i].Err = fmt.Errorf("%w: the store is no replica (SetReplicator)", ErrInvalidArgument)
		}
		return out
	}
	reqs := make([]*request, len(ws))
	applied, slot := repl.applied.Load(), repl.slot.Load()
	s.closeMu.RLock()
	closed := s.isClosed
	for i, w := range ws {
		if w.Index < applied || w.Index == applied && w.Slot <= slot {
			out[i].Skipped = true
			continue
		}
		r, err := decodeWrite(w.Write)
		if err != nil {
			out[i].Err = err
			continue
		}
		r.rep = replicated{index: w.Index, slot: w.Slot, ts: w.Timestamp}
		r.done = make(chan result, 1)
		if closed {
			r.done <- result{err: ErrClosed}
		} else {
			s.reqs <- r // in order: the committer plans them in this order
		}
		reqs[i] = r
	}
	s.closeMu.RUnlock()
	for i, r := range reqs {
		if r == nil {
			continue
		}
		var res result
		select {
		case res = <-r.done:
		case <-ctx.Done():
			res.err = ctx.Err()
		}
		out[i].Result, out[i].Err = res.res, res.err
		if errors.Is(res.err, ErrUnavailable) || errors.Is(res.err, ErrClosed) || ctx.Err() != nil {
			out[i].Err = fmt.Errorf("%w: %w", ErrReplicaFailed, res.err)
		}
	}
	return out
}

// CopyRecords writes records copied from another replica of the cluster's log, which
// holds this store's log as a prefix (a node catching up from a snapshot): recs[0] is at
// the store's next position and the last is a commit record. It waits until they are
// indexed. Nothing else may write meanwhile: the cluster calls it from its state machine.
func (s *Store) CopyRecords(ctx context.Context, recs []pmdlog.Record) error {
	repl := s.repl.Load()
	if repl == nil {
		return fmt.Errorf("%w: the store is no replica (SetReplicator)", ErrInvalidArgument)
	}
	if len(recs) == 0 {
		return nil
	}
	r := &request{rep: replicated{index: ^uint64(0), copied: recs}, causes: make([]uuid.UUID, len(recs))}
	for i := range recs {
		if recs[i].Kind == pmdlog.KindEvent {
			r.causes[i] = engine.CausationOf(recs[i].Event.Metadata)
		}
	}
	r.done = make(chan result, 1)
	s.closeMu.RLock()
	if s.isClosed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	s.reqs <- r
	s.closeMu.RUnlock()
	select {
	case res := <-r.done:
		if res.err != nil {
			return res.err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	// The applier answers before it indexes, and a copy leaves no overlay for the
	// committer to plan the next write against: the next entry must meet the copied
	// records in the index.
	return s.visible(ctx)
}

// planCopy takes the copied records of r into the batch at next.
func (s *Store) planCopy(st *stage, r *request, next uint64) error {
	recs := r.rep.copied
	if recs[0].Position != next {
		return fmt.Errorf("%w: copied records start at position %d, the log's next is %d", ErrInvalidArgument, recs[0].Position, next)
	}
	r.first = len(st.recs)
	st.recs = append(st.recs, recs...)
	r.last = len(st.recs)
	return nil
}

// applyCopy indexes the copied records of r.
func (s *Store) applyCopy(st *stage, r *request) error {
	repl := s.repl.Load()
	for i := r.first; i < r.last; i++ {
		if err := repl.ix.Apply(s.ibatch, &st.recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeLog writes the records of st to the log, each replicated write's commit record
// with its Raft index. In a replica, a failed write stops the store's writes (see
// ApplyWrites): a later entry must never be written after an earlier one failed.
func (s *Store) writeLog(st *stage) error {
	repl := s.repl.Load()
	if repl == nil {
		return s.log.Write(st.recs)
	}
	copied := false
	var last uint64
	var lastSlot uint32
	for _, r := range st.written {
		switch {
		case r.rep.copied != nil:
			copied = true
		case r.rep.index != 0:
			st.recs[r.last-1].Applied, st.recs[r.last-1].Slot = r.rep.index, r.rep.slot
			last, lastSlot = r.rep.index, r.rep.slot // in log order
		}
	}
	// A replicated write is not fsynced: Raft's log holds the entry durably until a
	// snapshot, which Sync precedes, and after a power cut Raft applies again what the
	// log lost (see Sync). Copied records are: Raft forgets the entries they stand for.
	var err error
	if copied {
		err = s.log.Copy(st.recs)
	} else {
		err = s.log.WriteNoSync(st.recs)
	}
	if err != nil {
		// The write that stops the store is refused as needing a restart too, as every
		// one after it.
		failed := &UnavailableError{Cause: fmt.Errorf("%w: %w", ErrReplicaFailed, err), NeedsRestart: true}
		s.fail(failed)
		return failed
	}
	if copied {
		clear(s.known) // the copied records changed streams the committer knew
		if end := st.recs[len(st.recs)-1]; end.Applied > last || end.Applied == last && end.Slot > lastSlot {
			last, lastSlot = end.Applied, end.Slot
		}
		repl.copies.Add(uint64(len(st.recs)))
	}
	if a := repl.applied.Load(); last > a || last == a && lastSlot > repl.slot.Load() {
		repl.slot.Store(lastSlot)
		repl.applied.Store(last)
	}
	return nil
}

// The encoding of a write in a Raft entry: msgpack of wireWrite. The events' data and
// metadata are the msgpack bytes the store writes.
type wireWrite struct {
	Stream    string            `msgpack:"s"`
	Expect    uint8             `msgpack:"k"`
	Version   uint64            `msgpack:"v,omitempty"`
	Changes   []wireChange      `msgpack:"c,omitempty"`
	Delete    bool              `msgpack:"d,omitempty"`
	Retention *pmdlog.Retention `msgpack:"r,omitempty"`
	Erase     bool              `msgpack:"e,omitempty"`
}

type wireChange struct {
	Link  bool      `msgpack:"l,omitempty"`
	Fresh bool      `msgpack:"f,omitempty"`
	ID    uuid.UUID `msgpack:"i"`
	Type  string    `msgpack:"t,omitempty"`
	Data  []byte    `msgpack:"d,omitempty"`
	Meta  []byte    `msgpack:"m,omitempty"`
}

func encodeWrite(r *request) ([]byte, error) {
	w := wireWrite{Stream: r.stream, Expect: uint8(r.expected.kind), Version: r.expected.version,
		Delete: r.del, Retention: r.retain, Erase: r.erase}
	w.Changes = make([]wireChange, len(r.changes))
	for i, c := range r.changes {
		w.Changes[i] = wireChange{Link: c.link, Fresh: c.fresh, ID: c.id, Type: c.typ, Data: c.data, Meta: c.meta}
	}
	return msgpack.Marshal(&w)
}

func decodeWrite(b []byte) (*request, error) {
	var w wireWrite
	if err := msgpack.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: a replicated write does not decode: %v", ErrInvalidArgument, err)
	}
	if w.Expect > uint8(expectExact) {
		return nil, fmt.Errorf("%w: a replicated write has expected-version kind %d", ErrInvalidArgument, w.Expect)
	}
	r := &request{stream: w.Stream, expected: ExpectedVersion{kind: expectKind(w.Expect), version: w.Version},
		del: w.Delete, retain: w.Retention, erase: w.Erase}
	if err := checkWire(&w); err != nil {
		return nil, fmt.Errorf("a replicated write: %w", err)
	}
	if len(w.Changes) > 0 {
		r.changes = make([]change, len(w.Changes))
		for i, c := range w.Changes {
			r.changes[i] = change{link: c.Link, fresh: c.Fresh, id: c.ID, typ: c.Type, data: c.Data, meta: c.Meta}
		}
		r.causes = causesOf(r.changes)
	}
	return r, nil
}

// checkWire refuses a decoded write that the store's own write methods would not have
// made: the leader only encodes writes they checked, so this is damage, or a bug.
func checkWire(w *wireWrite) error {
	if err := checkWritable(w.Stream); err != nil {
		return err
	}
	kinds := 0
	for _, b := range []bool{w.Delete, w.Retention != nil, w.Erase, len(w.Changes) > 0} {
		if b {
			kinds++
		}
	}
	if kinds != 1 {
		return invalid("write", "must be exactly one of changes, a deletion, a retention setting or an erasure")
	}
	if w.Retention != nil && (w.Retention.Stream != w.Stream || w.Retention.MaxAge < 0) {
		return invalid("retention", "names stream %q in a write to %q, or has a negative max age", w.Retention.Stream, w.Stream)
	}
	seen := make(map[uuid.UUID]struct{}, len(w.Changes))
	for i, c := range w.Changes {
		arg := func(field string) string { return fmtArg("changes", i, field) }
		if c.ID == uuid.Nil {
			return invalid(arg("id"), "must not be the nil UUID")
		}
		if _, dup := seen[c.ID]; dup {
			return invalid(arg("id"), "%s is given twice", c.ID)
		}
		seen[c.ID] = struct{}{}
		if c.Link {
			if c.Type != "" || c.Data != nil || c.Meta != nil || c.Fresh {
				return invalid(arg("id"), "a link carries only an event id")
			}
			continue
		}
		if err := checkName(arg("type"), c.Type); err != nil {
			return err
		}
		for _, f := range [...]struct {
			field string
			b     []byte
		}{{"data", c.Data}, {"metadata", c.Meta}} {
			if f.b == nil || plainMap(f.b) {
				continue
			}
			if m, err := decodeMap(f.b); err != nil || len(m) == 0 {
				return invalid(arg(f.field), "is not a msgpack map with entries")
			}
		}
	}
	return nil
}

// plainMap reports whether b is one msgpack map of at least one entry, with string keys
// at every depth and values of the kinds decodeMap's plain decode takes (nil, booleans,
// numbers, strings, binary, arrays and maps of them), and nothing after it: decodeMap
// takes such a map, with its entries. It decodes nothing, so that every node checks the
// events of each replicated write (checkWire) without building maps of their data, which
// the store's write methods never do; false is no verdict (an extension type, a key that
// is not a string, bytes after the map: checkWire then decodes b).
func plainMap(b []byte) bool {
	w := msgpackwalk.New(b)
	if !w.Next() || w.Item().Kind != msgpackwalk.Map || w.Item().N == 0 {
		return false
	}
	for w.Next() {
		if it := w.Item(); it.Kind == msgpackwalk.Ext || it.Key && it.Kind != msgpackwalk.String {
			return false
		}
	}
	return w.Err() == nil && w.Offset() == len(b)
}

// AdoptID makes id the store's id, as a node that joins a cluster takes the cluster's
// (a cluster is one store, with one id): call it before anything has used the old one.
// On a closed store it fails with ErrClosed and changes nothing: Close released the
// directory's lock, so another process may have it open.
func (s *Store) AdoptID(id uuid.UUID) error {
	// The read side of closeMu keeps Close from beginning until the id is written.
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.isClosed {
		return ErrClosed
	}
	return s.eng.SetID(id)
}

// ScanRecords calls fn with every log record from position from to position to, in
// order, as stored (for a replica that catches up by copying them): a damaged record
// stops it with its error.
func (s *Store) ScanRecords(ctx context.Context, from, to uint64, fn func(*pmdlog.Record) error) error {
	if to > s.log.LastPosition() {
		return fmt.Errorf("%w: the log ends at position %d, before %d", ErrInvalidArgument, s.log.LastPosition(), to)
	}
	errEnd := errors.New("end")
	err := s.log.Scan(ctx, from, func(r pmdlog.Record) error {
		if r.Position > to {
			return errEnd
		}
		return fn(&r)
	})
	if errors.Is(err, errEnd) {
		return nil
	}
	return err
}
