package pmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// pageSize is how many index entries a read copies out under the read lock at a time:
// large enough to amortise the lock, small enough never to stall the committer.
const pageSize = 256

// ReadStream returns the events of stream selected by opts, its own and linked ones, in
// version order (or reverse). A stream never written, or deleted, yields a single
// *StreamNotFoundError; one whose retention hides all its events reads as empty.
// Reading All is ReadAll.
func (s *Store) ReadStream(ctx context.Context, stream string, opts ReadOptions) iter.Seq2[Event, error] {
	if stream == All {
		return s.ReadAll(ctx, opts)
	}
	return func(yield func(Event, error) bool) {
		if err := cmp.Or(checkName("stream", stream), checkRead(stream, opts, false)); err != nil {
			yield(Event{}, err)
			return
		}
		if err := s.visible(ctx); err != nil {
			yield(Event{}, err)
			return
		}
		from, remaining := opts.From, opts.Limit
		var page []index.Entry
		for first := true; ; first = false {
			if err := ctx.Err(); err != nil {
				yield(Event{}, err)
				return
			}
			n := pageLimit(remaining)
			var st index.StreamState
			var err error
			st, page, err = s.idx.Versions(page[:0], stream, from, opts.Backward, n)
			if err != nil {
				yield(Event{}, s.storeErr(err))
				return
			}
			if first && !st.Exists {
				yield(Event{}, &StreamNotFoundError{Stream: stream})
				return
			}
			var expired time.Time // events before it are past the stream's max age
			if st.Retention.MaxAge > 0 {
				expired = time.Now().Add(-time.Duration(st.Retention.MaxAge))
			}
			skipped := 0
			for _, e := range page {
				ev, err := s.readEventAs(e.Position, opts.Encoded)
				if err != nil {
					var ce *CorruptError
					if errors.As(err, &ce) {
						ce.Position, ce.Stream, ce.Version = e.Position, stream, e.Version
					}
					yield(Event{}, err)
					return
				}
				if ev.Timestamp.Before(expired) {
					skipped++
					continue
				}
				ev.Version, ev.Link = e.Version, e.Link
				if !yield(ev, nil) {
					return
				}
			}
			last := uint64(0)
			if len(page) > 0 {
				last = page[len(page)-1].Version
			}
			if remaining > 0 {
				remaining += skipped // the limit counts the events yielded
			}
			if !advance(&from, &remaining, len(page), n, last, opts.Backward) {
				return
			}
		}
	}
}

// ReadAll returns the events of the global log selected by opts, in position order (or
// reverse), optionally only those of opts.Types. Link and deletion records never show.
func (s *Store) ReadAll(ctx context.Context, opts ReadOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if err := checkRead(All, opts, true); err != nil {
			yield(Event{}, err)
			return
		}
		if err := s.visible(ctx); err != nil {
			yield(Event{}, err)
			return
		}
		if len(opts.Types) > 0 {
			s.readPostings(ctx, opts, yield, func(dst []uint64, from uint64, n int) ([]uint64, error) {
				return s.idx.Types(dst, opts.Types, from, opts.Backward, n)
			})
			return
		}
		if s.closed() {
			// A read past the end, or of an empty store, never meets the closed log.
			yield(Event{}, ErrClosed)
			return
		}
		end := s.LastPosition()
		if opts.Backward {
			s.readAllBackward(ctx, opts, end, yield)
			return
		}
		s.readAllForward(ctx, opts, end, yield)
	}
}

// errStop ends a log scan early; it never leaves this file.
var errStop = errors.New("stop")

func (s *Store) readAllForward(ctx context.Context, opts ReadOptions, end uint64, yield func(Event, error) bool) {
	from := max(opts.From, 1)
	if from > end {
		return
	}
	n := 0
	dead := deadWindow{idx: s.idx}
	err := s.log.Scan(ctx, from, func(r pmdlog.Record) error {
		if r.Position > end {
			return errStop // written, but not yet acknowledged to its writer
		}
		if r.Kind != pmdlog.KindEvent {
			return nil
		}
		if isDead, err := dead.forward(r.Position); err != nil || isDead {
			return err
		}
		ev, err := s.toEvent(&r, opts.Encoded)
		if err != nil {
			return err
		}
		if !yield(ev, nil) {
			return errStop
		}
		if n++; opts.Limit > 0 && n >= opts.Limit {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		yield(Event{}, s.storeErr(err))
	}
}

func (s *Store) readAllBackward(ctx context.Context, opts ReadOptions, end uint64, yield func(Event, error) bool) {
	n := 0
	dead := deadWindow{idx: s.idx}
	for pos := min(opts.From, end); pos >= 1; pos-- {
		if err := ctx.Err(); err != nil {
			yield(Event{}, err)
			return
		}
		isDead, err := dead.backward(pos)
		if err != nil {
			yield(Event{}, s.storeErr(err))
			return
		}
		if isDead {
			continue
		}
		r, err := s.log.Read(pos)
		if err != nil {
			yield(Event{}, firstOfRun(s.storeErr(err)))
			return
		}
		if r.Kind != pmdlog.KindEvent {
			continue
		}
		ev, err := s.toEvent(&r, opts.Encoded)
		if !yield(ev, err) || err != nil {
			return
		}
		if n++; opts.Limit > 0 && n >= opts.Limit {
			return
		}
	}
}

// deadWindow answers "is the event at pos dead?" for a read of the log in one direction,
// asking the index for the dead positions of a window of positions at a time.
type deadWindow struct {
	idx    *index.Index
	lo, hi uint64   // the window asked for: [lo, hi]; empty when hi < lo
	dead   []uint64 // the dead positions in it, ascending
}

const deadWindowSize = 4096

func (w *deadWindow) forward(pos uint64) (bool, error) {
	if pos < w.lo || pos > w.hi || w.hi < w.lo {
		if err := w.load(pos, pos+deadWindowSize-1); err != nil {
			return false, err
		}
	}
	_, found := slices.BinarySearch(w.dead, pos)
	return found, nil
}

func (w *deadWindow) backward(pos uint64) (bool, error) {
	if pos < w.lo || pos > w.hi || w.hi < w.lo {
		lo := uint64(1)
		if pos > deadWindowSize {
			lo = pos - deadWindowSize + 1
		}
		if err := w.load(lo, pos); err != nil {
			return false, err
		}
	}
	_, found := slices.BinarySearch(w.dead, pos)
	return found, nil
}

func (w *deadWindow) load(lo, hi uint64) error {
	var err error
	w.dead, err = w.idx.DeadIn(w.dead[:0], lo, hi)
	w.lo, w.hi = lo, hi
	return err
}

// ReadCategory returns the events written to streams of category (the part of a stream
// name before its first $), in position order (or reverse). Links into those streams
// are not part of the category. opts.From is a position.
func (s *Store) ReadCategory(ctx context.Context, category string, opts ReadOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if err := checkCategory("category", category); err != nil {
			yield(Event{}, err)
			return
		}
		if err := checkRead("", opts, false); err != nil {
			yield(Event{}, err)
			return
		}
		if err := s.visible(ctx); err != nil {
			yield(Event{}, err)
			return
		}
		s.readPostings(ctx, opts, yield, func(dst []uint64, from uint64, n int) ([]uint64, error) {
			return s.idx.Category(dst, category, from, opts.Backward, n)
		})
	}
}

// readPostings pages through a list of event positions taken from the index with
// postings.
func (s *Store) readPostings(ctx context.Context, opts ReadOptions, yield func(Event, error) bool,
	postings func(dst []uint64, from uint64, n int) ([]uint64, error)) {
	from, remaining := opts.From, opts.Limit
	var page []uint64
	for {
		if err := ctx.Err(); err != nil {
			yield(Event{}, err)
			return
		}
		n := pageLimit(remaining)
		var err error
		if page, err = postings(page[:0], from, n); err != nil {
			yield(Event{}, s.storeErr(err))
			return
		}
		for _, pos := range page {
			ev, err := s.readEventAs(pos, opts.Encoded)
			if opts.Backward {
				err = firstOfRun(err)
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
		last := uint64(0)
		if len(page) > 0 {
			last = page[len(page)-1]
		}
		if !advance(&from, &remaining, len(page), n, last, opts.Backward) {
			return
		}
	}
}

func pageLimit(remaining int) int {
	if remaining > 0 && remaining < pageSize {
		return remaining
	}
	return pageSize
}

// advance moves a paged read past a page of got entries (asked for asked) ending at
// last, and reports whether another page is due.
func advance(from *uint64, remaining *int, got, asked int, last uint64, backward bool) bool {
	if got < asked {
		return false
	}
	if *remaining > 0 {
		if *remaining -= got; *remaining == 0 {
			return false
		}
	}
	if backward {
		if last == 0 {
			return false
		}
		*from = last - 1
		return true
	}
	*from = last + 1
	return true
}

// Event returns the event with the given id.
func (s *Store) Event(ctx context.Context, id uuid.UUID) (Event, error) {
	return s.EventWith(ctx, id, EventOptions{})
}

// EventWith is Event, reading the event as opts say.
func (s *Store) EventWith(ctx context.Context, id uuid.UUID, opts EventOptions) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	if err := s.visible(ctx); err != nil {
		return Event{}, err
	}
	lookup := s.idx.Lookup
	if opts.Dead {
		lookup = s.idx.LookupAny
	}
	pos, ok, err := lookup(id)
	if err != nil {
		return Event{}, s.storeErr(err)
	}
	if !ok {
		return Event{}, &EventNotFoundError{ID: id}
	}
	if opts.Dead {
		r, err := s.log.Read(pos)
		if err != nil {
			return Event{}, s.storeErr(err)
		}
		if r.Kind == pmdlog.KindGone && r.Gone.ID == id {
			return Event{ID: id, Position: pos, Erased: true}, nil
		}
	}
	return s.readEventAs(pos, opts.Encoded)
}

// Streams lists streams whose names start with prefix and sort after after, in name
// order, at most limit of them (0 means 100).
func (s *Store) Streams(prefix, after string, limit int) ([]StreamInfo, error) {
	if limit <= 0 {
		limit = 100
	}
	if err := s.visible(context.Background()); err != nil {
		return nil, err
	}
	list, err := s.idx.StreamNames(prefix, after, limit)
	if err != nil {
		return nil, s.storeErr(err)
	}
	out := make([]StreamInfo, len(list))
	for i, st := range list {
		out[i] = StreamInfo{Name: st.Name, Exists: st.Exists, Version: st.Last}
	}
	return out, nil
}

// StreamInfo describes stream; Version is -1 and Exists false for a stream never written.
func (s *Store) StreamInfo(stream string) (StreamInfo, error) {
	if err := checkName("stream", stream); err != nil {
		return StreamInfo{}, err
	}
	if err := s.visible(context.Background()); err != nil {
		return StreamInfo{}, err
	}
	st, err := s.idx.Stream(stream)
	if err != nil {
		return StreamInfo{}, s.storeErr(err)
	}
	return StreamInfo{Name: stream, Exists: st.Exists, Version: st.Last}, nil
}

// Subscribe delivers the events of a stream or of the global log from opts.From on:
// first those stored, then live ones as they are written, with no gap and no duplicate
// at the hand-over. It ends when ctx is done, and yields ErrClosed when the store closes.
// A slow subscriber never holds up writers: it reads from the log at its own pace.
//
// A damaged record is yielded as a *CorruptError (errors.Is(err, ErrCorrupt)); a
// subscriber that goes on with the loop gets the events after it, one that stops ends the
// subscription. Every other error ends it.
func (s *Store) Subscribe(ctx context.Context, opts SubscribeOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		all := opts.Stream == "" || opts.Stream == All
		category := opts.Category != ""
		if category {
			if err := checkCategory("category", opts.Category); err != nil {
				yield(Event{}, err)
				return
			}
			if opts.Stream != "" || len(opts.Types) > 0 {
				yield(Event{}, invalid("category", "follow a category, a stream or types, not two of them"))
				return
			}
		} else if !all {
			if err := checkName("stream", opts.Stream); err != nil {
				yield(Event{}, err)
				return
			}
			if len(opts.Types) > 0 {
				yield(Event{}, invalid("types", "filter only the global log, not stream %q", opts.Stream))
				return
			}
		}
		from := opts.From
		for {
			// Take the change signal before reading: a write that lands after the read
			// closes this very channel, so no wake-up is lost.
			changed := s.changes()
			read := ReadOptions{From: from, Limit: pageSize, Types: opts.Types, Encoded: opts.Encoded}
			var page iter.Seq2[Event, error]
			switch {
			case category:
				page = s.ReadCategory(ctx, opts.Category, read)
			case all:
				page = s.ReadAll(ctx, read)
			default:
				page = s.ReadStream(ctx, opts.Stream, read)
			}
			n := 0
			skipped := false
			for ev, err := range page {
				if err != nil {
					if errors.Is(err, ErrStreamNotFound) {
						break // not there yet: wait for it
					}
					if ctx.Err() != nil {
						return
					}
					var ce *CorruptError
					if !yield(Event{}, err) || !errors.As(err, &ce) {
						return
					}
					// The subscriber goes on past the damaged record.
					if all || category {
						from = ce.Position + 1
					} else {
						from = ce.Version + 1
					}
					skipped = true
					break
				}
				n++
				if all || category {
					from = ev.Position + 1
				} else {
					from = ev.Version + 1
				}
				if !yield(ev, nil) {
					return
				}
			}
			if n == pageSize || skipped {
				continue
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			case <-s.closing:
				yield(Event{}, ErrClosed)
				return
			}
		}
	}
}

// checkRead validates read options; stream is checked unless it is empty or All.
func checkRead(stream string, opts ReadOptions, typesAllowed bool) error {
	if stream != "" && stream != All {
		if err := checkName("stream", stream); err != nil {
			return err
		}
	}
	if opts.Limit < 0 {
		return invalid("limit", "must not be negative, got %d", opts.Limit)
	}
	if len(opts.Types) > 0 && !typesAllowed {
		return invalid("types", "filter only reads of the global log")
	}
	for i, t := range opts.Types {
		if err := checkName(fmt.Sprintf("types[%d]", i), t); err != nil {
			return err
		}
	}
	return nil
}

// readEventAs reads the event at pos; encoded leaves its data undecoded
// (ReadOptions.Encoded).
func (s *Store) readEventAs(pos uint64, encoded bool) (Event, error) {
	r, err := s.log.Read(pos)
	if err != nil {
		return Event{}, s.storeErr(err)
	}
	if r.Kind != pmdlog.KindEvent {
		return Event{}, &CorruptError{Position: pos, Cause: fmt.Errorf("the index points at a %s record, not an event", r.Kind)}
	}
	return s.toEvent(&r, encoded)
}

func (s *Store) toEvent(r *pmdlog.Record, encoded bool) (Event, error) {
	ev := Event{
		ID:        r.Event.ID,
		Type:      r.Event.Type,
		Timestamp: time.Unix(0, r.Event.Timestamp).UTC(),
		Position:  r.Position,
		Stream:    r.Event.Stream,
		Version:   r.Event.Version,
	}
	switch {
	case r.Erased || s.idx.Erased(r.Event.Stream, r.Event.Version):
		ev.Erased = true
		return ev, nil
	case encoded:
		ev.encoded = [2][]byte{r.Event.Data, r.Event.Metadata}
		return ev, nil
	}
	var err error
	if ev.Data, err = decodeMap(r.Event.Data); err != nil {
		return Event{}, &CorruptError{Position: r.Position, Cause: fmt.Errorf("data: %w", err)}
	}
	if ev.Metadata, err = decodeMap(r.Event.Metadata); err != nil {
		return Event{}, &CorruptError{Position: r.Position, Cause: fmt.Errorf("metadata: %w", err)}
	}
	return ev, nil
}

// storeErr turns an error of the log or the index into the store's: ErrClosed once the
// store is closed, a *CorruptError for a damaged record, naming the last position of the
// damage (the one a forward read skips to after), which is that of the record unless the
// damage hides a run of them (a backward read names the run's first: firstOfRun). Damage a read meets is recorded (Problems, the log) as damage found at Open or by
// the scrub is: a record can go bad after the scrub read it.
func (s *Store) storeErr(err error) error {
	var ce *pmdlog.CorruptError
	switch {
	case errors.Is(err, pmdlog.ErrClosed), errors.Is(err, index.ErrClosed):
		return ErrClosed
	case errors.As(err, &ce):
		s.eng.NoteDamage(ce)
		pos := ce.Position
		if ce.End > pos+1 {
			// The damage hides a run of records (a sealed segment that cannot be
			// framed past it): the last of them, so that a read goes on after the run.
			pos = ce.End - 1
		}
		return &CorruptError{Position: pos, Cause: err}
	}
	return err
}

// firstOfRun makes err, a *CorruptError of storeErr's for damage that hides a run of
// records, name the run's first position instead of its last, for a read going
// backward: it goes on below the run. Other errors are returned as they are.
func firstOfRun(err error) error {
	if err == nil {
		return nil // the targets below escape: no allocation on a read's every event
	}
	var ce *CorruptError
	var lce *pmdlog.CorruptError
	if errors.As(err, &ce) && errors.As(ce.Cause, &lce) && lce.End > lce.Position+1 {
		ce.Position = lce.Position
	}
	return err
}
