package index

import (
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Counts are how many events and streams the index holds, for monitoring.
type Counts struct {
	// Events counts the events written (one per id), dead ones included: an event that
	// no stream shows any more still has its id entry, after a scavenge too, and in an
	// index rebuilt from the scavenged log, whose gone record in its place holds the id
	// (AddGone). Only the ids a scavenge of a release before gone records kept ids
	// removed are not counted by an index built from the log since.
	Events uint64
	// Streams counts the streams that exist: written to and not deleted since (a stream
	// whose events retention hides all still exists).
	Streams uint64
}

// counter keeps Counts without reading the index for them: the entries of every batch
// Apply makes visible move two deltas, and a background pass over the id and stream
// entries, started by the first call of Counts, sets the base they move from. The pass
// reads one iterator, a consistent view, taken while no Apply runs; the deltas of the
// batches applied after it are added to what it found.
type counter struct {
	// mu is held by Apply while it applies a batch and moves the deltas, and by the
	// pass while it takes its iterators and reads the deltas: the pass's view and the
	// deltas then agree on which batches they include.
	mu       sync.Mutex
	events   atomic.Int64 // events added by the batches applied since Open
	streams  atomic.Int64 // streams that came to exist, less those deleted
	base     atomic.Pointer[[2]int64]
	start    sync.Once
	stop     chan struct{} // closed by Close: the pass gives up
	done     chan struct{} // closed when the pass has returned
	stopOnce sync.Once

	// openedHook, if set (tests), is called by the pass once its iterators are open.
	openedHook func()
}

// Counts returns how many events and streams the index holds. The first call starts
// a background pass over the id and stream entries (about a second per few million
// entries) and returns false until it has finished; after that every call is two
// atomic loads. A pass that failed is not tried again: Counts returns false.
func (x *Index) Counts() (Counts, bool) {
	c := &x.cnt
	c.start.Do(func() {
		c.done = make(chan struct{})
		go func() {
			defer close(c.done)
			// A failed pass (the index closed, or damaged: the owner hears of that
			// through OnDamage) leaves the counts unknown.
			_ = x.countAll()
		}()
	})
	b := c.base.Load()
	if b == nil {
		return Counts{}, false
	}
	return Counts{Events: uint64(b[0] + c.events.Load()), Streams: uint64(b[1] + c.streams.Load())}, true
}

// countAll is the background pass of Counts.
func (x *Index) countAll() error {
	if err := x.enter(); err != nil {
		return err
	}
	defer x.exit()
	c := &x.cnt
	c.mu.Lock()
	// What the overlays hold, taken before the iterators as every read does: an overlay
	// a hand-off drops after this was ingested first, so the iterators or the overlays
	// have its entries. Pebble's ids of records after the cut are also the overlays', and
	// so are the streams they have a state of.
	x.ov.mu.RLock()
	cut := x.ov.cut()
	var ovEvents int64
	ovStreams := map[string]bool{} // name → exists
	x.ov.oldest(func(o *overlay) {
		ovEvents += int64(len(o.ids))
		for name, s := range o.streams {
			ovStreams[name] = s.rec.base < s.rec.next
		}
	})
	x.ov.mu.RUnlock()
	ids, err := x.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceID}, UpperBound: []byte{spaceID + 1}})
	if err != nil {
		c.mu.Unlock()
		return x.errorf("index: count events: %w", err)
	}
	defer ids.Close()
	streams, err := x.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceVersion}, UpperBound: []byte{spaceVersion + 1}})
	if err != nil {
		c.mu.Unlock()
		return x.errorf("index: count streams: %w", err)
	}
	defer streams.Close()
	if c.openedHook != nil {
		c.openedHook()
	}
	events0, streams0 := c.events.Load(), c.streams.Load()
	c.mu.Unlock()

	nEvents, nStreams := ovEvents, int64(0)
	for _, exists := range ovStreams {
		if exists {
			nStreams++
		}
	}
	n := 0
	stopped := func() bool {
		n++
		if n%4096 != 0 {
			return false
		}
		select {
		case <-c.stop:
			return true
		default:
			return false
		}
	}
	for ok := ids.First(); ok; ok = ids.Next() {
		if stopped() {
			return ErrClosed
		}
		pos, err := decodeUint(ids.Value())
		if err != nil {
			return x.errorf("index: count events: %w", err)
		}
		if pos <= cut {
			nEvents++
		}
	}
	if err := ids.Error(); err != nil {
		return x.errorf("index: count events: %w", err)
	}
	// A stream's state is its first key in the V space; a seek skips its versions.
	for ok := streams.First(); ok; ok = streams.SeekGE(pastState(streams.Key())) {
		if stopped() {
			return ErrClosed
		}
		if !isStateKey(streams.Key()) {
			return x.errorf("index: count streams: %w", formatErr("%s without the stream's state", describeKey(streams.Key())))
		}
		if _, ok := ovStreams[string(streams.Key()[1:len(streams.Key())-1])]; ok {
			continue
		}
		r, err := decodeStream(streams.Value())
		if err != nil {
			return x.errorf("index: count streams: %w", err)
		}
		if r.base < r.next {
			nStreams++
		}
	}
	if err := streams.Error(); err != nil {
		return x.errorf("index: count streams: %w", err)
	}
	c.base.Store(&[2]int64{nEvents - events0, nStreams - streams0})
	return nil
}

// stopCounting makes a running pass of Counts give up and waits for it, so that Close
// does not wait for a whole pass.
func (x *Index) stopCounting() {
	c := &x.cnt
	c.start.Do(func() {}) // no pass starts after this
	c.stopOnce.Do(func() { close(c.stop) })
	if c.done != nil {
		<-c.done
	}
}
