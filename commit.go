package pmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// A request is one Write or DeleteStream waiting for the committer.
type request struct {
	stream   string
	expected ExpectedVersion
	changes  []change    // empty for a delete, a retention setting or an erasure
	causes   []uuid.UUID // the causation id of each change (see causesOf); nil if none has one
	del      bool
	retain   *pmdlog.Retention // set for SetRetention
	erase    bool
	done     chan result // buffered: the committer never blocks on a caller
	rep      replicated  // set for a write a Raft entry carries (replicate.go)

	// Set by the committer while it builds a batch.
	first, last int // the request's records in its stage's recs
	res         WriteResult
	err         error
}

type result struct {
	res WriteResult
	err error
}

// Group commit bounds: a batch holds at most this many requests or record bytes, so that
// one slow batch never holds many writers hostage to a giant fsync.
const (
	maxBatchRequests = 1024
	maxBatchBytes    = 8 << 20
)

// Append writes events to stream atomically, after checking expected. Events without an
// id get a UUIDv7. Appending an id that is already stored fails with ErrDuplicateEvent,
// unless the call is an exact retry of an earlier append (same stream, same ids in the same
// order), which writes nothing and returns the original result.
//
// If ctx ends while the write is queued or in flight, Append returns ctx.Err() and the
// write may or may not have happened; retrying with the same ids is safe.
func (s *Store) Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (WriteResult, error) {
	changes := make([]Change, len(events))
	for i, e := range events {
		changes[i] = NewEvent(e)
	}
	return s.write(ctx, stream, expected, changes, "events")
}

// Link adds the stored events with the given ids to stream, atomically, after checking
// expected. An id that is not stored fails with ErrEventNotFound; an event already in
// stream (written there or linked before) fails with ErrDuplicateEvent.
func (s *Store) Link(ctx context.Context, stream string, expected ExpectedVersion, ids ...uuid.UUID) (WriteResult, error) {
	changes := make([]Change, len(ids))
	for i, id := range ids {
		changes[i] = LinkTo(id)
	}
	return s.write(ctx, stream, expected, changes, "event_ids")
}

// Write appends new events and links stored ones into stream in the order given, as one
// atomic write under one expected-version check. A process manager uses it to link the
// event it handles and append the commands it issues in one step.
func (s *Store) Write(ctx context.Context, stream string, expected ExpectedVersion, changes ...Change) (WriteResult, error) {
	return s.write(ctx, stream, expected, changes, "changes")
}

func (s *Store) write(ctx context.Context, stream string, expected ExpectedVersion, changes []Change, what string) (WriteResult, error) {
	if err := checkWritable(stream); err != nil {
		return WriteResult{}, err
	}
	prepared, err := prepare(changes, what)
	if err != nil {
		return WriteResult{}, err
	}
	return s.submit(ctx, &request{stream: stream, expected: expected, changes: prepared, causes: causesOf(prepared)})
}

// DeleteStream hides every event of stream from reads of that stream. The events stay in
// every stream they are linked into; those that no stream shows any more are dead: they
// leave $all, category and type reads and are not found by id (see Retention). A later
// write starts the stream again (expect NoStream) at the next version, so versions are
// never reused. Deleting a stream that does not exist (never written, or deleted since)
// writes nothing; one whose retention hides all its events is deleted.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	if err := checkWritable(stream); err != nil {
		return err
	}
	_, err := s.submit(ctx, &request{stream: stream, expected: expected, del: true})
	return err
}

func (s *Store) submit(ctx context.Context, r *request) (WriteResult, error) {
	// A context already done writes nothing: the select below picks at random between
	// two ready cases, and would queue the write yet answer ctx.Err().
	if err := ctx.Err(); err != nil {
		return WriteResult{}, err
	}
	if repl := s.repl.Load(); repl != nil && r.rep.index == 0 {
		return repl.replicate(ctx, r) // a cluster's write: through Raft
	}
	r.done = make(chan result, 1)
	// Enqueue under the read side of closeMu: Close takes the write side before it tells
	// the committer to stop, so every request that got in is committed and answered.
	s.closeMu.RLock()
	if s.isClosed {
		s.closeMu.RUnlock()
		return WriteResult{}, ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return WriteResult{}, ctx.Err()
	}
	s.closeMu.RUnlock()
	select {
	case out := <-r.done:
		return out.res, out.err
	case <-ctx.Done():
		return WriteResult{}, ctx.Err()
	}
}

// Writes go through a two-stage pipeline. The committer (commitLoop) takes every request
// waiting, checks them against the index plus the effects of the requests before them,
// and writes all accepted records with one log write (one fsync). The applier (applyLoop)
// answers the writers once the batch is durable, then adds its records to the index. The
// two overlap: while the applier indexes one batch, the committer plans and syncs the
// next, so the index's work costs writers no fsync time. A read waits until the index
// holds every acknowledged write (visible), so a write is readable once acknowledged. The committer hands a batch over before it writes it, so
// that the applier prepares the batch's index entries while the log write and its fsync
// run, and only makes them visible once the committer says the batch is durable.
//
// At most one batch is between the stages: the committer takes a stage from free before
// it plans, and there are two, so it plans batch k+1 only once batch k-1 is indexed. What
// it plans against is therefore the index, the batch in flight (s.last, whose overlay
// holds its effects) and the batch so far.
type stage struct {
	reqs    []*request // every request of the batch, in order, answered by the applier
	recs    []pmdlog.Record
	written []*request // the requests with records in recs, each its records [first, last)
	retried []*request // exact retries of requests in written, answered with their results
	ov      overlay
	loaded  []loadedStream // the stream states the plan read from the index, for the applier
	failed  error          // set when the log write failed: nothing of the batch is in the log

	// durable tells the applier that the log write of recs is over: failed is set
	// before. Only a batch with records waits for it.
	durable chan struct{}
}

func (st *stage) reset() {
	clear(st.reqs)
	st.reqs = st.reqs[:0]
	clear(st.recs) // drop the references to the events' data
	st.recs = st.recs[:0]
	clear(st.written)
	st.written = st.written[:0]
	clear(st.retried)
	st.retried = st.retried[:0]
	clear(st.loaded)
	st.loaded = st.loaded[:0]
	st.ov.reset()
	st.failed = nil
}

// commitLoop is the only writer of the log. Each turn it gathers the requests waiting
// into one batch, plans it and writes it, and hands it to the applier.
func (s *Store) commitLoop() {
	defer func() {
		close(s.applying)
		<-s.applied
		close(s.stopped)
	}()
	batch := make([]*request, 0, 64)
	wait := time.NewTimer(0)
	<-wait.C
	// writers estimates how many writers are active: the requests of the last commit plus
	// those that queued while it ran. The writers a commit answers come straight back,
	// and without waiting for them they would fall one commit behind the ones that queued
	// meanwhile, splitting the writers into two groups that take turns at the fsync.
	writers := 1
	var lastCommit time.Duration
	for {
		batch = batch[:0]
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.closing:
			s.drain()
			return
		}
		size := batch[0].size()
		take := func(r *request) {
			batch = append(batch, r)
			size += r.size()
		}
	more:
		for len(batch) < maxBatchRequests && size < maxBatchBytes {
			select {
			case r := <-s.reqs:
				take(r)
			default:
				break more
			}
		}
		if len(batch) < writers && !s.opts.NoSync {
			// Wait a little for the rest: a fraction of a commit's time buys a commit
			// that serves everybody.
			wait.Reset(min(lastCommit/4, 2*time.Millisecond))
		gather:
			for len(batch) < writers && len(batch) < maxBatchRequests && size < maxBatchBytes {
				select {
				case r := <-s.reqs:
					take(r)
				case <-wait.C:
					break gather
				}
			}
			if !wait.Stop() {
				select {
				case <-wait.C:
				default:
				}
			}
		}
		start := time.Now()
		s.commit(batch)
		lastCommit = time.Since(start)
		writers = len(batch) + len(s.reqs)
	}
}

// drain commits the requests queued before Close: their callers are waiting, and the
// log is still open.
func (s *Store) drain() {
	for {
		select {
		case r := <-s.reqs:
			s.commit([]*request{r})
		default:
			return
		}
	}
}

func (r *request) size() int {
	n := 0
	for i := range r.changes {
		n += 64 + len(r.changes[i].data) + len(r.changes[i].meta)
	}
	return n
}

// commit plans batch, writes what it accepts to the log and hands it to the applier.
func (s *Store) commit(batch []*request) {
	st := <-s.free // the batch before the one in flight is indexed now
	st.reset()
	st.reqs = append(st.reqs, batch...)
	if err := s.failure(); err != nil {
		for _, r := range batch {
			r.res, r.err = WriteResult{}, err
		}
		s.applying <- st
		return
	}
	next := s.next
	ts := time.Now().UTC().UnixNano()
	if ts <= s.lastTS {
		ts = s.lastTS + 1 // timestamps never go backwards in log order
	}
	for _, r := range batch {
		r.res, r.err = WriteResult{}, nil
		retry, err := s.plan(st, r, next, r.rep.timestamp(ts))
		switch {
		case err != nil:
			r.err = err
		case retry:
			if r.res.FirstPosition >= s.next {
				// A retry of an append of this very batch: it shares the batch's fate.
				st.retried = append(st.retried, r)
			}
		case r.last > r.first:
			next += uint64(r.last - r.first)
			st.written = append(st.written, r)
		}
	}
	if len(st.recs) == 0 {
		s.applying <- st
		return
	}
	for i := range st.recs {
		st.recs[i].WriteStart = s.next // what the log would set, which it then leaves alone
	}
	s.applying <- st // the applier prepares the index entries while the log is written
	start := time.Now()
	if err := s.writeLog(st); err != nil {
		// Nothing of the batch is in the log: the log rolls a failed write back and
		// heals itself, so the next batch may well succeed.
		s.writeFailures.Add(uint64(len(st.written)))
		var ue *UnavailableError
		if !errors.As(err, &ue) { // a replica's failure is one already (fail)
			ue = &UnavailableError{Cause: err}
		}
		st.failed = ue
		if s.last == st {
			// st held the last batch written (indexed since) and now this one: left
			// as the batch in flight, its overlay would show the failed batch's ids and
			// streams to the next plan, which would refuse its retry as a duplicate.
			s.last = nil
		}
		st.durable <- struct{}{}
		return
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(CommitInfo{Requests: len(st.written), Records: len(st.recs), Duration: time.Since(start), Sync: s.log.LastSync()})
	}
	s.next = next
	s.lastTS = ts
	s.learn(&st.ov)
	s.last = st
	// The applier may answer and recycle st from here on: the committer is done with it.
	st.durable <- struct{}{}
}

// applyLoop is the only writer of the index. It answers the writers of each batch the
// committer wrote as soon as the batch is durable, and then adds it to the index: the
// index's work on one batch overlaps the committer's plan and fsync of the next one
// instead of delaying the answers. Reads wait for it (visible).
func (s *Store) applyLoop() {
	defer close(s.applied)
	for st := range s.applying {
		if len(st.recs) > 0 {
			err := s.prepare(st)
			<-st.durable
			if st.failed != nil {
				s.ibatch.Discard()
				for _, rs := range [][]*request{st.written, st.retried} {
					for _, r := range rs {
						r.res, r.err = WriteResult{}, st.failed
					}
				}
			} else {
				// The batch is durable: its writers get their answers. If the index
				// cannot take it, every later plan would be wrong: writes stop until a
				// restart replays the log into the index (Problems says so), and reads
				// waiting for the batch get the error.
				s.acked.Store(st.recs[len(st.recs)-1].Position)
				s.answer(st)
				if s.beforeIndex != nil {
					s.beforeIndex()
				}
				if err == nil {
					err = s.eng.Apply(s.ibatch)
				}
				if err != nil {
					s.fail(&UnavailableError{Cause: err})
				}
				s.notify()
			}
		}
		s.answer(st)
		// The committer resets st when it takes it: until then it may still read st's
		// overlay as the batch in flight.
		s.free <- st
	}
}

// answer sends each request of st its result, once.
func (s *Store) answer(st *stage) {
	for _, r := range st.reqs {
		r.done <- result{res: r.res, err: r.err}
	}
	clear(st.reqs)
	st.reqs = st.reqs[:0]
}

// visible waits until the index holds every write acknowledged so far: the applier
// answers writers before it indexes their batch (applyLoop), and a write must be
// readable once acknowledged. The wait is the index work of at most one batch, a few
// dozen microseconds; with no write in flight it is two atomic loads.
func (s *Store) visible(ctx context.Context) error {
	want := s.acked.Load()
	for s.idx.Position() < want {
		ch := s.changes()
		if s.idx.Position() >= want {
			break
		}
		if err := s.failure(); err != nil {
			return err
		}
		if s.waitIndex != nil {
			s.waitIndex()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// prepare adds the records of st to the index batch, which Apply later makes visible.
// It runs while the committer writes them to the log: the batch reads only the index,
// which holds every batch before st, and st's own records.
func (s *Store) prepare(st *stage) error {
	// What the plan read from the index is still the index's: a stream it read there
	// was untouched by the batch in flight, which is the last one indexed since.
	for _, l := range st.loaded {
		s.ibatch.Know(l.stream, l.state)
	}
	for _, r := range st.written {
		if r.rep.copied != nil {
			if err := s.applyCopy(st, r); err != nil {
				s.ibatch.Discard()
				return err
			}
			continue
		}
		for i := r.first; i < r.last; i++ {
			if err := engine.ApplyRecord(s.ibatch, &st.recs[i], r.cause(i-r.first)); err != nil {
				s.ibatch.Discard()
				return err
			}
		}
	}
	return nil
}

// fail stops writes until a restart: the index could not take a durable batch. Every
// write after it gets err, marked as needing a restart (ErrNeedsRestart).
func (s *Store) fail(err *UnavailableError) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failed == nil {
		err.NeedsRestart = true
		s.failed = err
		close(s.writesStopped)
	}
}

func (s *Store) failure() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failed
}

// learn records the stream states a batch just written leaves, so that the next plans
// find them without reading the index. The committer plans every write, so what it
// learns stays right; past maxKnownStreams it forgets all but the batch's.
func (s *Store) learn(ov *overlay) {
	if len(s.known)+len(ov.streams) > maxKnownStreams {
		clear(s.known)
	}
	for name, st := range ov.streams {
		s.known[name] = *st
	}
}

// maxKnownStreams bounds the stream states the committer keeps between batches.
const maxKnownStreams = 1 << 16

// plan checks r against the index, the batch in flight and the batch so far and, if it
// holds, appends its records to st.recs starting at position next and sets r.res. retry
// reports an exact retry of an earlier append, answered with the original result and
// nothing to write.
func (s *Store) plan(st *stage, r *request, next uint64, ts int64) (retry bool, err error) {
	// An exact retry is answered before the expected version is checked: the retry of an
	// append that succeeded with no_stream must succeed too.
	if r.rep.copied != nil {
		return false, s.planCopy(st, r, next)
	}
	if len(r.changes) > 0 && !r.changes[0].link && !r.changes[0].fresh {
		pos, known, err := s.lookup(st, r.changes[0].id, true)
		if err != nil {
			return false, err
		}
		if known {
			if res, ok := s.exactRetry(st, r, pos); ok {
				r.res = res
				return true, nil
			}
		}
	}
	state, err := s.state(st, r.stream)
	if err != nil {
		return false, err
	}
	if err := checkExpected(r.stream, r.expected, state); err != nil {
		return false, err
	}
	r.first = len(st.recs)
	r.last = r.first
	switch {
	case r.retain != nil:
		ret := *r.retain
		if ret.ExpiredBefore > 0 {
			// A scavenge's expiry keeps the settings the stream has now: the ones the
			// scavenge read with its page of streams may have been replaced since. If
			// the max age it was found with is no longer the stream's, it is dropped
			// (the next scavenge finds it again): the events it names may be shown now.
			cur := state.Retention
			if cur.MaxAge != ret.MaxAge {
				return false, nil
			}
			ret.MaxCount, ret.TruncateBefore = cur.MaxCount, cur.TruncateBefore
		} else if ret.TruncateBefore > state.Next {
			// Versions not yet written would be hidden as soon as they are appended.
			return false, invalid("truncate_before", "%d is past the end of stream %q, whose next version is %d",
				ret.TruncateBefore, r.stream, state.Next)
		}
		st.recs = append(st.recs, pmdlog.Record{Kind: pmdlog.KindRetention, Position: next, Commit: true, Retention: ret})
		r.last++
		r.res = WriteResult{FirstPosition: next, LastPosition: next}
		st.ov.retained(r.stream, state, index.Retention{MaxAge: ret.MaxAge, MaxCount: ret.MaxCount, TruncateBefore: ret.TruncateBefore}, ret.ExpiredBefore)
		return false, nil
	case r.erase:
		if state.Next > 0 {
			st.recs = append(st.recs, pmdlog.Record{Kind: pmdlog.KindErase, Position: next, Commit: true,
				Erase: pmdlog.Erase{Stream: r.stream, Before: state.Next}})
			r.last++
		}
		return false, nil
	}
	if r.del {
		if !state.Exists {
			return false, nil
		}
		st.recs = append(st.recs, pmdlog.Record{
			Kind: pmdlog.KindDelete, Position: next, Commit: true,
			Delete: pmdlog.Delete{Stream: r.stream, Before: state.Next},
		})
		r.last++
		st.ov.deleted(r.stream, state)
		return false, nil
	}
	// Resolve ids before writing anything, so that a refused request leaves no trace.
	targets := make([]uint64, len(r.changes))
	for i, c := range r.changes {
		if c.fresh {
			continue
		}
		pos, known, err := s.lookup(st, c.id, !c.link)
		if err != nil {
			return false, err
		}
		if c.link {
			if !known {
				return false, &EventNotFoundError{ID: c.id}
			}
			in, err := s.contains(st, r.stream, pos)
			if err != nil {
				return false, err
			}
			if in {
				return false, &DuplicateEventError{ID: c.id, Stream: r.stream}
			}
			targets[i] = pos
			continue
		}
		if known {
			return false, &DuplicateEventError{ID: c.id, Stream: r.stream}
		}
	}
	version := state.Next
	for i, c := range r.changes {
		pos := next + uint64(i)
		rec := pmdlog.Record{Position: pos}
		if c.link {
			rec.Kind = pmdlog.KindLink
			rec.Link = pmdlog.Link{Stream: r.stream, Version: version, Event: targets[i], ID: c.id}
			st.ov.linked(r.stream, targets[i], version)
		} else {
			rec.Kind = pmdlog.KindEvent
			rec.Event = pmdlog.Event{
				ID: c.id, Stream: r.stream, Version: version, Type: c.typ,
				Timestamp: ts, Data: c.data, Metadata: c.meta,
			}
			st.ov.added(c.id, r.stream, pos, version)
		}
		st.recs = append(st.recs, rec)
		version++
	}
	st.recs[len(st.recs)-1].Commit = true
	r.last = len(st.recs)
	st.ov.wrote(r.stream, state, version)
	r.res = WriteResult{FirstPosition: next, LastPosition: next + uint64(len(r.changes)) - 1, Version: version - 1, IDs: r.ids()}
	return false, nil
}

// inFlight returns the overlay of the batch the applier may still be indexing, nil if
// none: st is the batch being planned.
func (s *Store) inFlight(st *stage) *overlay {
	if s.last == nil || s.last == st {
		return nil
	}
	return &s.last.ov
}

// state returns the state of stream as the batch so far leaves it.
func (s *Store) state(st *stage, stream string) (index.StreamState, error) {
	if state, ok := st.ov.streams[stream]; ok {
		return *state, nil
	}
	if state, ok := s.known[stream]; ok {
		return state, nil // learned from a batch written before, in flight or indexed
	}
	// Untouched by the batch in flight: the index is right, and stays so until the
	// applier indexes st, which is handed the state so as not to read it again (prepare).
	state, loaded, err := s.idx.Load(stream)
	if err != nil {
		return index.StreamState{}, err
	}
	st.loaded = append(st.loaded, loadedStream{stream, loaded})
	return state, nil
}

// loadedStream is the state of a stream the plan read from the index (stage.loaded).
type loadedStream struct {
	stream string
	state  index.Loaded
}

// lookup returns the position of the event with id id; dead events too if anyDead (an
// id stays taken while its event is in the log), else not (a dead event cannot be
// linked), as the batch so far leaves it: the index does not know yet which events the
// batch and the batch in flight killed.
func (s *Store) lookup(st *stage, id uuid.UUID, anyDead bool) (uint64, bool, error) {
	pos, ok := st.ov.ids[id]
	if prev := s.inFlight(st); !ok && prev != nil {
		pos, ok = prev.ids[id]
	}
	if anyDead {
		if ok {
			return pos, true, nil
		}
		return s.idx.LookupAny(id)
	}
	if !ok {
		var err error
		if pos, ok, err = s.idx.Lookup(id); err != nil || !ok {
			return 0, false, err // dead in the index is dead for good: nothing shows it again
		}
	}
	if !s.hidSince(st) {
		return pos, true, nil // nothing hidden since the index: it is right
	}
	alive, err := s.alive(st, pos)
	if err != nil || !alive {
		return 0, false, err
	}
	return pos, true, nil
}

// hidSince reports whether the batch so far or the batch in flight hid versions of a
// stream, which may have killed events the index still shows.
func (s *Store) hidSince(st *stage) bool {
	prev := s.inFlight(st)
	return st.ov.hid || prev != nil && prev.hid
}

// alive reports whether a stream still shows the event at pos, as the batch so far
// leaves the streams: the one it was written to or one it was linked into.
func (s *Store) alive(st *stage, pos uint64) (bool, error) {
	// Only a stream that showed the event in the index or that a later batch linked it
	// into can show it now: hiding is final.
	for _, ov := range []*overlay{&st.ov, s.inFlight(st)} {
		if ov == nil {
			continue
		}
		for _, name := range ov.links[pos] {
			if in, err := s.contains(st, name, pos); err != nil || in {
				return in, err
			}
		}
	}
	// The index's links a page at a time, checked outside its lock (contains asks the
	// index): an event linked into many streams takes a page of their names, not all of
	// them, and the first stream that still shows it ends the search.
	const page = 256
	streams := make([]string, 0, page)
	for after := pos; ; {
		streams = streams[:0]
		more := false
		err := s.idx.Links(pos, after, func(l index.Link) (bool, error) {
			if !l.Hidden {
				if len(streams) == page {
					more = true
					return false, nil
				}
				streams = append(streams, l.Stream)
			}
			after = l.Position
			return true, nil
		})
		if err != nil {
			return false, err
		}
		for _, name := range streams {
			if in, err := s.contains(st, name, pos); err != nil || in {
				return in, err
			}
		}
		if !more {
			break
		}
	}
	// The index keeps no stream per event: its record has it.
	rec, err := s.record(st, pos)
	var ce *pmdlog.CorruptError
	switch {
	case errors.As(err, &ce):
		return true, nil // as the index takes it (index.ErrOriginUnknown): never dead on a guess
	case err != nil:
		return false, err
	case rec.Kind == pmdlog.KindGone || rec.Kind == pmdlog.KindVoid:
		return false, nil // replaced since: its own stream does not show it
	case rec.Kind != pmdlog.KindEvent:
		return false, &CorruptError{Position: pos, Cause: fmt.Errorf("the index points at a %s record, not an event", rec.Kind)}
	}
	return s.contains(st, rec.Event.Stream, pos)
}

// record returns the record at pos, from the batch being planned if it holds pos, else
// from the log.
func (s *Store) record(st *stage, pos uint64) (pmdlog.Record, error) {
	if len(st.recs) > 0 && pos >= st.recs[0].Position && pos-st.recs[0].Position < uint64(len(st.recs)) {
		return st.recs[pos-st.recs[0].Position], nil
	}
	return s.log.Read(pos)
}

// contains reports whether the event at pos is a visible version of stream, as the batch
// so far leaves it.
func (s *Store) contains(st *stage, stream string, pos uint64) (bool, error) {
	version, ok, err := s.member(st, stream, pos)
	if err != nil || !ok {
		return false, err
	}
	state, err := s.state(st, stream)
	if err != nil {
		return false, err
	}
	return version >= state.First && version < state.Next, nil
}

// member returns the version at which the event at pos was last put into stream, as the
// batch so far leaves it, visible or not; ok is false if there is none since the
// stream's last deletion.
func (s *Store) member(st *stage, stream string, pos uint64) (version uint64, ok bool, err error) {
	for _, ov := range []*overlay{&st.ov, s.inFlight(st)} {
		if ov == nil {
			continue
		}
		if v, ok := ov.members[member{stream, pos}]; ok {
			return v, true, nil
		}
		if _, ok := ov.dels[stream]; ok {
			return 0, false, nil // deleted since: what the stream held before is gone
		}
	}
	return s.idx.Member(stream, pos)
}

// exactRetry reports whether r repeats the append that wrote the event at pos: the same
// stream, the same ids in the same order, and exactly that batch. It answers with the
// original result. The original may be in the batch being planned (its writer gave up
// waiting and retried before the batch was written), so records are read from st first.
func (s *Store) exactRetry(st *stage, r *request, pos uint64) (WriteResult, bool) {
	if pos > 1 {
		if prev, ok := s.planned(st, pos-1); !ok || !prev.Commit {
			return WriteResult{}, false // pos does not start a batch
		}
	}
	var res WriteResult
	for i, c := range r.changes {
		if c.link {
			return WriteResult{}, false
		}
		rec, ok := s.planned(st, pos+uint64(i))
		if !ok || rec.Kind != pmdlog.KindEvent || rec.Event.ID != c.id || rec.Event.Stream != r.stream {
			return WriteResult{}, false
		}
		if (i == len(r.changes)-1) != rec.Commit {
			return WriteResult{}, false
		}
		res = WriteResult{FirstPosition: pos, LastPosition: rec.Position, Version: rec.Event.Version}
	}
	res.IDs = r.ids()
	return res, true
}

// planned returns the record at pos, from the batch being planned if it holds pos, else
// from the log; ok is false if there is none (or it cannot be read: then pos is not
// taken as the start of a retry, and the request is planned as new).
func (s *Store) planned(st *stage, pos uint64) (rec pmdlog.Record, ok bool) {
	if len(st.recs) > 0 && pos >= st.recs[0].Position {
		i := pos - st.recs[0].Position
		if i >= uint64(len(st.recs)) {
			return pmdlog.Record{}, false
		}
		return st.recs[i], true
	}
	rec, err := s.log.Read(pos)
	return rec, err == nil
}

func (r *request) ids() []uuid.UUID {
	ids := make([]uuid.UUID, len(r.changes))
	for i := range r.changes {
		ids[i] = r.changes[i].id
	}
	return ids
}

func checkExpected(stream string, want ExpectedVersion, st index.StreamState) error {
	actual := int64(-1)
	if st.Exists {
		actual = st.Last
	}
	var ok bool
	switch want.kind {
	case expectAny:
		ok = true
	case expectNoStream:
		ok = !st.Exists
	case expectStreamExists:
		ok = st.Exists
	case expectExact:
		ok = st.Exists && uint64(st.Last) == want.version
	}
	if !ok {
		return &WrongExpectedVersionError{Stream: stream, Expected: want, Actual: actual}
	}
	return nil
}

// overlay holds what the requests of one batch change, on top of the index, which only
// learns about them once they are durable.
type overlay struct {
	streams map[string]*index.StreamState // the state each stream written is left in
	ids     map[uuid.UUID]uint64
	members map[member]uint64   // the version of each event put into a stream since its deletion in the batch, if any
	links   map[uint64][]string // the streams the batch linked each event into
	dels    map[string]struct{} // the streams the batch deleted
	hid     bool                // a deletion or a retention floor hid versions: events may have died
}

type member struct {
	stream string
	pos    uint64
}

func (o *overlay) reset() {
	if o.streams == nil {
		o.streams = make(map[string]*index.StreamState)
		o.ids = make(map[uuid.UUID]uint64)
		o.members = make(map[member]uint64)
		o.links = make(map[uint64][]string)
		o.dels = make(map[string]struct{})
	}
	clear(o.streams)
	clear(o.ids)
	clear(o.members)
	clear(o.links)
	clear(o.dels)
	o.hid = false
}

func (o *overlay) added(id uuid.UUID, stream string, pos, version uint64) {
	o.ids[id] = pos
	o.members[member{stream, pos}] = version
}

func (o *overlay) linked(stream string, pos, version uint64) {
	o.members[member{stream, pos}] = version
	o.links[pos] = append(o.links[pos], stream)
}

// wrote records the versions a batch appended or linked to stream, up to next; past its
// maximum count they hide its oldest versions, as the index does (index.Batch.put).
func (o *overlay) wrote(stream string, st index.StreamState, next uint64) {
	st.Exists = true
	st.Next = next
	st.Last = int64(next) - 1
	if m := st.Retention.MaxCount; m > 0 && next > m {
		o.raise(&st, next-m)
	}
	o.streams[stream] = &st
}

// retained records the retention settings a batch gives stream, which the next expiry
// of the stream keeps, and the versions they hide at once, as the index does
// (index.Batch.SetRetention): below expired, r.TruncateBefore and the maximum count.
func (o *overlay) retained(stream string, st index.StreamState, r index.Retention, expired uint64) {
	st.Retention = r
	floor := max(r.TruncateBefore, expired)
	if r.MaxCount > 0 && st.Next > r.MaxCount {
		floor = max(floor, st.Next-r.MaxCount)
	}
	o.raise(&st, floor)
	o.streams[stream] = &st
}

// raise moves the first visible version of st up to floor, never down.
func (o *overlay) raise(st *index.StreamState, floor uint64) {
	if floor > st.First {
		o.hid = o.hid || st.First < st.Next
		st.First = floor
	}
}

func (o *overlay) deleted(stream string, st index.StreamState) {
	st.Exists = false
	o.hid = o.hid || st.First < st.Next
	st.First = st.Next
	o.streams[stream] = &st
	o.dels[stream] = struct{}{}
	for m := range o.members {
		if m.stream == stream {
			delete(o.members, m)
		}
	}
}
