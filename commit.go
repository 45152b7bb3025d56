package pmd

import (
	"context"
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
	changes  []change    // empty for a delete
	causes   []uuid.UUID // the causation id of each change (see causesOf); nil if none has one
	del      bool
	done     chan result // buffered: the committer never blocks on a caller

	// Set by the committer while it builds a batch.
	first, last int // the request's records in Store.batchRecs
	res         WriteResult
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
// $all and in every stream they are linked into; a later write starts the stream again
// (expect NoStream) at the next version, so versions are never reused. Deleting a stream
// with no visible event writes nothing.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	if err := checkWritable(stream); err != nil {
		return err
	}
	_, err := s.submit(ctx, &request{stream: stream, expected: expected, del: true})
	return err
}

func (s *Store) submit(ctx context.Context, r *request) (WriteResult, error) {
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

// commitLoop is the only writer of the log and the index. Each turn it takes every
// request waiting, checks them against the index plus the effects of the requests before
// them in the same batch, writes all accepted records with one log write (one fsync),
// applies them to the index and answers.
func (s *Store) commitLoop() {
	defer close(s.stopped)
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

func (s *Store) commit(batch []*request) {
	if s.failed != nil {
		for _, r := range batch {
			r.done <- result{err: s.failed}
		}
		return
	}
	s.overlay.reset()
	s.batchRecs = s.batchRecs[:0]
	s.batchState = s.batchState[:0]
	next := s.idx.Position() + 1
	ts := time.Now().UTC().UnixNano()
	if ts <= s.lastTS {
		ts = s.lastTS + 1 // timestamps never go backwards in log order
	}
	for _, r := range batch {
		res, retry, err := s.plan(r, next, ts)
		switch {
		case err != nil:
			r.done <- result{err: err}
			continue
		case retry:
			r.done <- result{res: res}
			continue
		}
		if r.last > r.first {
			next += uint64(r.last - r.first)
			s.batchState = append(s.batchState, r)
		} else {
			r.done <- result{res: res} // nothing to write (a delete of an empty stream)
		}
	}
	if len(s.batchRecs) == 0 {
		return
	}
	start := time.Now()
	if err := s.log.Write(s.batchRecs); err != nil {
		// Nothing of the batch is in the log: the log rolls a failed write back and
		// heals itself, so the next batch may well succeed.
		err = &UnavailableError{Cause: err}
		s.writeFailures.Add(uint64(len(s.batchState)))
		for _, r := range s.batchState {
			r.done <- result{err: err}
		}
		return
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(CommitInfo{Requests: len(s.batchState), Records: len(s.batchRecs), Duration: time.Since(start)})
	}
	s.lastTS = ts
	if err := s.apply(); err != nil {
		// The batch is durable but the index lags the log: every later plan would be
		// wrong. Writes stop until a restart replays the log into the index.
		s.failed = &UnavailableError{Cause: err}
		for _, r := range s.batchState {
			r.done <- result{err: s.failed}
		}
		return
	}
	s.notify()
	for _, r := range s.batchState {
		r.done <- result{res: r.res}
	}
}

// apply adds the records of the batch just written to the index. batchState holds the
// requests that wrote batchRecs, in order, each its records [first, last).
func (s *Store) apply() error {
	for _, r := range s.batchState {
		for i := r.first; i < r.last; i++ {
			if err := engine.ApplyRecord(s.ibatch, &s.batchRecs[i], r.cause(i-r.first)); err != nil {
				s.ibatch.Discard()
				return err
			}
		}
	}
	return s.eng.Apply(s.ibatch, len(s.batchRecs))
}

// plan checks r against the index and the batch so far and, if it holds, appends its
// records to s.batchRecs starting at position next. retry reports an exact retry of an
// earlier append, answered with the original result and nothing to write.
func (s *Store) plan(r *request, next uint64, ts int64) (res WriteResult, retry bool, err error) {
	// An exact retry is answered before the expected version is checked: the retry of an
	// append that succeeded with no_stream must succeed too.
	if !r.del && !r.changes[0].link && !r.changes[0].fresh {
		pos, known, err := s.overlay.lookup(s.idx, r.changes[0].id)
		if err != nil {
			return WriteResult{}, false, err
		}
		if known {
			if res, ok := s.exactRetry(r, pos); ok {
				return res, true, nil
			}
		}
	}
	st, err := s.overlay.state(s.ibatch, r.stream)
	if err != nil {
		return WriteResult{}, false, err
	}
	if err := checkExpected(r.stream, r.expected, st); err != nil {
		return WriteResult{}, false, err
	}
	r.first = len(s.batchRecs)
	r.last = r.first
	if r.del {
		if !st.Exists {
			return WriteResult{}, false, nil
		}
		s.batchRecs = append(s.batchRecs, pmdlog.Record{
			Kind: pmdlog.KindDelete, Commit: true,
			Delete: pmdlog.Delete{Stream: r.stream, Before: st.Next},
		})
		r.last++
		s.overlay.deleted(r.stream, st)
		return WriteResult{}, false, nil
	}
	// Resolve ids before writing anything, so that a refused request leaves no trace.
	targets := make([]uint64, len(r.changes))
	for i, c := range r.changes {
		if c.fresh {
			continue
		}
		pos, known, err := s.overlay.lookup(s.idx, c.id)
		if err != nil {
			return WriteResult{}, false, err
		}
		if c.link {
			if !known {
				return WriteResult{}, false, &EventNotFoundError{ID: c.id}
			}
			in, err := s.overlay.contains(s.idx, r.stream, pos)
			if err != nil {
				return WriteResult{}, false, err
			}
			if in {
				return WriteResult{}, false, &DuplicateEventError{ID: c.id, Stream: r.stream}
			}
			targets[i] = pos
			continue
		}
		if known {
			return WriteResult{}, false, &DuplicateEventError{ID: c.id, Stream: r.stream}
		}
	}
	version := st.Next
	for i, c := range r.changes {
		pos := next + uint64(i)
		rec := pmdlog.Record{Position: pos}
		if c.link {
			rec.Kind = pmdlog.KindLink
			rec.Link = pmdlog.Link{Stream: r.stream, Version: version, Event: targets[i], ID: c.id}
			s.overlay.linked(r.stream, targets[i])
		} else {
			rec.Kind = pmdlog.KindEvent
			rec.Event = pmdlog.Event{
				ID: c.id, Stream: r.stream, Version: version, Type: c.typ,
				Timestamp: ts, Data: c.data, Metadata: c.meta,
			}
			s.overlay.added(c.id, r.stream, pos)
		}
		s.batchRecs = append(s.batchRecs, rec)
		version++
	}
	s.batchRecs[len(s.batchRecs)-1].Commit = true
	r.last = len(s.batchRecs)
	s.overlay.wrote(r.stream, st, version)
	r.res = WriteResult{FirstPosition: next, LastPosition: next + uint64(len(r.changes)) - 1, Version: version - 1, IDs: r.ids()}
	return r.res, false, nil
}

// exactRetry reports whether r repeats the append that wrote the event at pos: the same
// stream, the same ids in the same order, and exactly that batch. It answers with the
// original result.
func (s *Store) exactRetry(r *request, pos uint64) (WriteResult, bool) {
	if pos > 1 {
		if prev, err := s.log.Read(pos - 1); err != nil || !prev.Commit {
			return WriteResult{}, false // pos does not start a batch
		}
	}
	var res WriteResult
	for i, c := range r.changes {
		if c.link {
			return WriteResult{}, false
		}
		rec, err := s.log.Read(pos + uint64(i))
		if err != nil || rec.Kind != pmdlog.KindEvent || rec.Event.ID != c.id || rec.Event.Stream != r.stream {
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

// overlay holds what the requests already accepted into the batch being built change,
// on top of the index, which only learns about them once they are durable.
type overlay struct {
	streams map[string]*index.StreamState
	ids     map[uuid.UUID]uint64
	members map[member]struct{}
}

type member struct {
	stream string
	pos    uint64
}

func (o *overlay) reset() {
	if o.streams == nil {
		o.streams = make(map[string]*index.StreamState)
		o.ids = make(map[uuid.UUID]uint64)
		o.members = make(map[member]struct{})
	}
	clear(o.streams)
	clear(o.ids)
	clear(o.members)
}

// state returns the state of stream with the batch so far; committed is the index as the
// committer's batch knows it (the index itself, with the states of busy streams kept).
func (o *overlay) state(committed *index.Batch, stream string) (index.StreamState, error) {
	if st, ok := o.streams[stream]; ok {
		return *st, nil
	}
	return committed.Stream(stream)
}

func (o *overlay) lookup(idx *index.Index, id uuid.UUID) (uint64, bool, error) {
	if pos, ok := o.ids[id]; ok {
		return pos, true, nil
	}
	return idx.Lookup(id)
}

func (o *overlay) contains(idx *index.Index, stream string, pos uint64) (bool, error) {
	if _, ok := o.members[member{stream, pos}]; ok {
		return true, nil
	}
	if st, ok := o.streams[stream]; ok {
		cur, err := idx.Stream(stream)
		if err != nil {
			return false, err
		}
		if st.First > cur.First {
			return false, nil // deleted earlier in this batch
		}
	}
	return idx.Contains(stream, pos)
}

func (o *overlay) added(id uuid.UUID, stream string, pos uint64) {
	o.ids[id] = pos
	o.members[member{stream, pos}] = struct{}{}
}

func (o *overlay) linked(stream string, pos uint64) { o.members[member{stream, pos}] = struct{}{} }

func (o *overlay) wrote(stream string, st index.StreamState, next uint64) {
	st.Exists = true
	st.Next = next
	st.Last = int64(next) - 1
	o.streams[stream] = &st
}

func (o *overlay) deleted(stream string, st index.StreamState) {
	st.Exists = false
	st.First = st.Next
	o.streams[stream] = &st
	for m := range o.members {
		if m.stream == stream {
			delete(o.members, m)
		}
	}
}
