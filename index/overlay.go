package index

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// The newest entries live in overlays, Go structures that take an entry without a key
// compare: per stream a slice of versions, per category and type a slice of positions,
// maps for ids, causations, links and dead marks. Inserting every entry into pebble's
// memtable (a skiplist, a score of key compares an entry) and flushing it was about a
// third of a busy store's CPU, and on a small machine CPU anywhere costs appends. The
// active overlay takes every applied batch; once it holds handOffEntries entries, or at
// Flush, it is frozen and a background hand-off writes it, sorted, as one table with
// pebble's table writer and ingests it, then drops it. Every read merges the overlays
// (the active one and the frozen ones not yet dropped) with pebble.
//
// A reader takes the overlays under ovState.mu and reads pebble after: an overlay it did
// not see was dropped after its table was ingested, so pebble has its entries. Pebble may
// also have the entries of an overlay the reader did see (ingested, not yet dropped):
// a record's entries are all in one overlay, so the reader skips pebble's entries of
// records after the oldest overlay's start (cut), or, where an entry's key does not name
// its record, lets the overlay's answer win. Slices in the active overlay only grow, and
// a reader copies a slice's header under the lock: the elements it sees never change.

// handOffEntries is how many entries make the active overlay full: about 16 MiB of
// Go structures, like the memtable the index had before.
const handOffEntries = 1 << 19

// maxFrozen bounds the frozen overlays waiting for their hand-off. While that many wait
// (the hand-offs keep failing: a full disk, an I/O error), Apply no longer freezes the
// active overlay: it keeps growing, so writers never wait for the index, and the frozen
// overlays' memory stays at most maxFrozen full overlays. Once a hand-off succeeds again,
// the next Apply freezes the active overlay, whatever it has grown to.
const maxFrozen = 4

// ovEntryBytes estimates the memory of one overlay entry (Metrics.OverlayBytes): a full
// overlay of handOffEntries entries is about 16 MiB.
const ovEntryBytes = 32

// handOffRetry is the first wait before a failed hand-off is tried again; each failure
// in a row doubles it, up to handOffRetryMax.
const (
	handOffRetry    = time.Second
	handOffRetryMax = 30 * time.Second
)

type ovEntry struct {
	version, pos uint64
	link         bool
}

// ovStream is a stream in an overlay: its state as of the overlay's last batch, and the
// versions the overlay added.
type ovStream struct {
	rec      streamRec
	vers     []ovEntry // ascending by version
	unsorted bool      // positions of vers not strictly ascending (a link of an older event)
}

type ovLink struct {
	pos, version uint64 // the link's position, and the version it gave the event
	stream       string
}

type posList struct{ p []uint64 }

// overlay holds the entries of the records at positions (start, pos].
type overlay struct {
	start, pos uint64
	streams    map[string]*ovStream
	cats       map[string]*posList
	types      map[string]*posList
	ids        map[uuid.UUID]uint64
	causes     map[uint64]*posList // parent → children, ascending
	links      map[uint64][]ovLink // event → its links, ascending by position
	dead       map[uint64]bool     // true: marked dead; false: a mark removed
	erased     map[string]uint64
	entries    int
	names      []string // the stream names, sorted: set by the hand-off, nil before
	order      []string // the stream names in the order they came (only appended to)
	deadPos    []uint64 // the positions of dead, sorted: set by deadSorted once frozen
	deadOnce   sync.Once
}

func newOverlay(start uint64) *overlay {
	return &overlay{
		start: start, pos: start,
		streams: map[string]*ovStream{}, cats: map[string]*posList{}, types: map[string]*posList{},
		ids: map[uuid.UUID]uint64{}, causes: map[uint64]*posList{}, links: map[uint64][]ovLink{},
		dead: map[uint64]bool{}, erased: map[string]uint64{},
	}
}

func (o *overlay) empty() bool { return o.pos == o.start }

// ovState is the index's overlays and their hand-off.
type ovState struct {
	mu     sync.RWMutex
	active *overlay
	frozen []*overlay // oldest first

	limit    int           // entries that fill the active overlay
	kick     chan struct{} // wakes the hand-off
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when the hand-off goroutine has returned
	handing  sync.Mutex    // one hand-off at a time
	seq      int           // names the tables, under handing
	failures atomic.Int64  // hand-offs that failed (Metrics.HandOffFailures)
	retry    time.Duration // the first wait before a failed hand-off is tried again
	report   func(error)   // logs a failed hand-off (pebble's background errors' log)
	wopts    sstable.WriterOptions
	fs       vfs.FS // pebble's (indexFS): the table takes the index's permissions
	before   func() // Options.BeforeFlush

	// namesHook, if set (tests), is called by ovNames after each chunk of the active
	// overlay's streams, without the lock.
	namesHook func()

	// deadHook, if set (tests), is called by ovDeadIn with how many marks it examined.
	deadHook func(n int)

	// fail, if set (tests), is called by every hand-off before it writes an overlay's
	// table: an error it returns fails the hand-off.
	fail func() error

	// pause, if set (tests), is called by the hand-off with "frozen" before it writes an
	// overlay's table and "ingested" before it drops the overlay.
	pause func(stage string)
}

// newest calls fn with every overlay, newest first, until it returns false. The caller
// holds mu.
func (s *ovState) newest(fn func(o *overlay) bool) {
	if !fn(s.active) {
		return
	}
	for i := len(s.frozen) - 1; i >= 0; i-- {
		if !fn(s.frozen[i]) {
			return
		}
	}
}

// oldest calls fn with every overlay, oldest first. The caller holds mu.
func (s *ovState) oldest(fn func(o *overlay)) {
	for _, o := range s.frozen {
		fn(o)
	}
	fn(s.active)
}

// cut is the position after which pebble's entries are also in an overlay: the oldest
// overlay's start. The caller holds mu.
func (s *ovState) cut() uint64 {
	if len(s.frozen) > 0 {
		return s.frozen[0].start
	}
	return s.active.start
}

// ovStreamRec returns the state of stream from the overlays.
func (x *Index) ovStreamRec(name string) (r streamRec, ok bool) {
	x.ov.mu.RLock()
	x.ov.newest(func(o *overlay) bool {
		if s := o.streams[name]; s != nil {
			r, ok = s.rec, true
		}
		return !ok
	})
	x.ov.mu.RUnlock()
	return r, ok
}

// ovVersions returns the state of stream from the overlays (ok false if none has it),
// the overlays' version slices (oldest first) and the lowest version they hold
// (math.MaxUint64 if none): pebble's versions from it on are the overlays' too.
func (x *Index) ovVersions(name string) (r streamRec, ok bool, segs [][]ovEntry, low uint64) {
	low = math.MaxUint64
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	x.ov.oldest(func(o *overlay) {
		s := o.streams[name]
		if s == nil {
			return
		}
		r, ok = s.rec, true
		if len(s.vers) > 0 {
			segs = append(segs, s.vers)
			low = min(low, s.vers[0].version)
		}
	})
	return r, ok, segs, low
}

// ovMember returns the version at which the overlays last put the event at pos into
// stream.
func (x *Index) ovMember(name string, pos uint64) (version uint64, ok bool) {
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	x.ov.newest(func(o *overlay) bool {
		s := o.streams[name]
		if s == nil {
			return true
		}
		if s.unsorted {
			for i := len(s.vers) - 1; i >= 0; i-- {
				if s.vers[i].pos == pos {
					version, ok = s.vers[i].version, true
					break
				}
			}
		} else if i, found := slices.BinarySearchFunc(s.vers, pos, func(e ovEntry, p uint64) int { return cmpU(e.pos, p) }); found {
			version, ok = s.vers[i].version, true
		}
		return !ok
	})
	return version, ok
}

// ovLookup returns the position of the event with id id from the overlays.
func (x *Index) ovLookup(id uuid.UUID) (pos uint64, ok bool) {
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	x.ov.newest(func(o *overlay) bool {
		pos, ok = o.ids[id]
		return !ok
	})
	return pos, ok
}

// ovDead returns whether the overlays mark the event at pos dead (dead), or removed its
// mark (found and not dead); found is false if they do not know.
func (x *Index) ovDead(pos uint64) (dead, found bool) {
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	x.ov.newest(func(o *overlay) bool {
		dead, found = o.dead[pos]
		return !found
	})
	return dead, found
}

type deadMarks map[uint64]bool

func (m deadMarks) has(p uint64) bool { _, ok := m[p]; return ok }

// ovDeadIn returns the overlays' marks (true) and removed marks (false) of the positions
// in [from, to], the newest of each. A frozen overlay's marks (which nothing changes any
// more) are found by a binary search of its sorted positions, without the lock; the
// active overlay's are walked under it.
func (x *Index) ovDeadIn(from, to uint64) deadMarks {
	x.ov.mu.RLock()
	frozen := slices.Clone(x.ov.frozen)
	var active deadMarks
	if x.ov.deadHook != nil {
		x.ov.deadHook(len(x.ov.active.dead))
	}
	for p, dead := range x.ov.active.dead {
		if p >= from && p <= to {
			if active == nil {
				active = deadMarks{}
			}
			active[p] = dead
		}
	}
	x.ov.mu.RUnlock()
	var out deadMarks
	for _, f := range frozen {
		ps := f.deadSorted()
		start, _ := slices.BinarySearch(ps, from)
		i := start
		for ; i < len(ps) && ps[i] <= to; i++ {
			if out == nil {
				out = deadMarks{}
			}
			out[ps[i]] = f.dead[ps[i]]
		}
		if x.ov.deadHook != nil {
			x.ov.deadHook(i - start)
		}
	}
	for p, dead := range active {
		if out == nil {
			out = deadMarks{}
		}
		out[p] = dead
	}
	return out
}

// deadSorted returns the positions of the frozen overlay o's dead marks, sorted once.
func (o *overlay) deadSorted() []uint64 {
	o.deadOnce.Do(func() {
		ps := make([]uint64, 0, len(o.dead))
		for p := range o.dead {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		o.deadPos = ps
	})
	return o.deadPos
}

// ovPositions returns the overlays' position slices of name in space (spaceCategory or
// spaceType), oldest first, and the cut.
func (x *Index) ovPositions(space byte, name string) (segs [][]uint64, cut uint64) {
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	x.ov.oldest(func(o *overlay) {
		m := o.cats
		if space == spaceType {
			m = o.types
		}
		if l := m[name]; l != nil && len(l.p) > 0 {
			segs = append(segs, l.p)
		}
	})
	return segs, x.ov.cut()
}

// ovLinks returns the overlays' links of the event at pos, in log order, and the cut.
func (x *Index) ovLinks(pos uint64) (links []ovLink, cut uint64) {
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	x.ov.oldest(func(o *overlay) { links = append(links, o.links[pos]...) })
	return links, x.ov.cut()
}

// ovLinksAfter returns the overlays' links of the event at pos whose records are after
// position after, in log order, and the cut.
func (x *Index) ovLinksAfter(pos, after uint64) (links []ovLink, cut uint64) {
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	x.ov.oldest(func(o *overlay) {
		ls := o.links[pos]
		i := sort.Search(len(ls), func(i int) bool { return ls[i].pos > after }) // after+1 would wrap at the last position
		links = append(links, ls[i:]...)
	})
	return links, x.ov.cut()
}

// ovCaused returns the overlays' children of the event at pos, oldest first, and the cut.
func (x *Index) ovCaused(pos uint64) (segs [][]uint64, cut uint64) {
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	x.ov.oldest(func(o *overlay) {
		if l := o.causes[pos]; l != nil {
			segs = append(segs, l.p)
		}
	})
	return segs, x.ov.cut()
}

// ovNames returns the streams of the overlays whose names start with prefix and are
// above after, sorted, with their newest states: with limit > 0, only the first limit of
// them, which are all a listing of limit streams can take from the overlays.
//
// It holds ovState.mu, which Apply waits for, only for moments whatever the overlays'
// size: it takes the overlays under it, reads the frozen ones (which nothing changes any
// more) without it, takes the active overlay's names from its order (appended to, never
// changed) without it, and its matching streams' states under it namesChunk at a time.
//
// With a limit, its work on an overlay is a pass over the names that match (a binary
// search and limit names, for a frozen overlay whose hand-off sorted them) and the states
// of at most limit streams: a name among the first limit of them all is among the first
// limit of every overlay that has it.
func (x *Index) ovNames(prefix, after string, limit int) []StreamInfo {
	x.ov.mu.RLock()
	frozen := slices.Clone(x.ov.frozen)
	sorted := make([][]string, len(frozen))
	for i, f := range frozen {
		sorted[i] = f.names
	}
	active := x.ov.active
	order := active.order[:len(active.order):len(active.order)]
	x.ov.mu.RUnlock()

	want := func(name string) bool { return strings.HasPrefix(name, prefix) && name > after }
	states := map[string]StreamState{}
	for i, f := range frozen {
		if names := sorted[i]; names != nil {
			// Sorted: start at the first name above after and the prefix.
			j, _ := slices.BinarySearch(names, max(after, prefix))
			for n := 0; j < len(names) && strings.HasPrefix(names[j], prefix) && (limit <= 0 || n < limit); j++ {
				if want(names[j]) {
					states[names[j]] = f.streams[names[j]].rec.state()
					n++
				}
			}
			continue
		}
		first := firstNames{limit: limit}
		for name := range f.streams {
			if want(name) {
				first.add(name)
			}
		}
		for _, name := range first.result() {
			states[name] = f.streams[name].rec.state()
		}
	}
	first := firstNames{limit: limit}
	for _, name := range order {
		if want(name) {
			first.add(name)
		}
	}
	for names := first.result(); len(names) > 0; {
		chunk := names[:min(len(names), namesChunk)]
		names = names[len(chunk):]
		x.ov.mu.RLock()
		for _, name := range chunk {
			states[name] = active.streams[name].rec.state()
		}
		x.ov.mu.RUnlock()
		if x.ov.namesHook != nil {
			x.ov.namesHook()
		}
	}
	out := make([]StreamInfo, 0, len(states))
	for name, st := range states {
		out = append(out, StreamInfo{Name: name, StreamState: st})
	}
	slices.SortFunc(out, func(a, b StreamInfo) int { return strings.Compare(a.Name, b.Name) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// firstNames keeps the first limit names added to it in byte order (all of them if limit
// <= 0). Up to firstSorted, it keeps them sorted as they come (a name above the last of
// limit kept costs a compare); above, it takes them all and sorts them in result.
type firstNames struct {
	limit int
	names []string
}

// firstSorted is the largest limit firstNames keeps sorted as names come: an insert
// moves up to limit names.
const firstSorted = 64

func (f *firstNames) add(name string) {
	if f.limit <= 0 || f.limit > firstSorted {
		f.names = append(f.names, name)
		return
	}
	full := len(f.names) >= f.limit
	if full && name >= f.names[len(f.names)-1] {
		return
	}
	i, _ := slices.BinarySearch(f.names, name)
	if full {
		f.names = f.names[:len(f.names)-1]
	}
	f.names = slices.Insert(f.names, i, name)
}

// result returns the first limit names (all of them if limit <= 0, not sorted then).
func (f *firstNames) result() []string {
	if f.limit > firstSorted && len(f.names) > f.limit {
		slices.Sort(f.names)
		f.names = f.names[:f.limit]
	}
	return f.names
}

// namesChunk is how many streams of the active overlay ovNames reads under one lock.
const namesChunk = 256

// apply adds the batch b to the active overlay and moves Position; it freezes the overlay
// when it is full. The caller holds x.cnt.mu.
func (x *Index) applyOverlay(b *Batch) {
	st := &x.ov
	st.mu.Lock()
	a := st.active
	for _, name := range b.changed {
		s := a.streams[name]
		if s == nil {
			s = &ovStream{}
			a.streams[b.streams[name].name] = s
			a.order = append(a.order, b.streams[name].name)
		}
		s.rec = b.streams[name].streamRec
		a.entries++
	}
	for i := range b.adds {
		ad := &b.adds[i]
		s := a.streams[ad.stream] // every stream put into is in b.changed
		if n := len(s.vers); n > 0 && s.vers[n-1].pos >= ad.pos {
			s.unsorted = true
		}
		s.vers = append(s.vers, ovEntry{ad.version, ad.pos, ad.link})
		a.entries += 2
		if ad.link {
			a.links[ad.pos] = append(a.links[ad.pos], ovLink{ad.rec, ad.version, ad.stream})
			a.entries++
			continue
		}
		a.ids[ad.id] = ad.pos
		addPos(a.cats, ad.cat, ad.pos)
		addPos(a.types, ad.typ, ad.pos)
		a.entries += 3
	}
	for _, g := range b.gone {
		a.ids[g.id] = g.pos
		a.entries++
	}
	for _, c := range b.causes {
		l := a.causes[c.parent]
		if l == nil {
			l = &posList{}
			a.causes[c.parent] = l
		}
		l.p = append(l.p, c.child)
		a.entries++
	}
	for _, d := range b.deadMarks {
		a.dead[d.pos] = d.dead
		a.entries++
	}
	for name, before := range b.erased {
		a.erased[name] = max(a.erased[name], before)
		a.entries++
	}
	a.pos = b.pos
	x.pos.Store(b.pos)
	// With maxFrozen overlays waiting, the active one keeps growing (see maxFrozen); the
	// hand-off, which retries by itself after a failure, is still woken.
	full := a.entries >= st.limit
	if full && len(st.frozen) < maxFrozen {
		st.frozen = append(st.frozen, a)
		st.active = newOverlay(a.pos)
	}
	st.mu.Unlock()
	if full {
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
}

// addPos appends pos to the list of name in m, adding the list (under a copy of name,
// which may be a record's) if it is new. The map's values are pointers so that an append
// never stores the key again.
func addPos(m map[string]*posList, name string, pos uint64) {
	l := m[name]
	if l == nil {
		l = &posList{}
		m[strings.Clone(name)] = l
	}
	l.p = append(l.p, pos)
}

// freeze makes the active overlay frozen, if it holds anything, for the hand-off.
func (x *Index) freeze() {
	st := &x.ov
	st.mu.Lock()
	if a := st.active; !a.empty() {
		st.frozen = append(st.frozen, a)
		st.active = newOverlay(a.pos)
	}
	st.mu.Unlock()
}

// handOffLoop hands frozen overlays to pebble when Apply freezes one, until Close.
func (x *Index) handOffLoop() {
	defer close(x.ov.done)
	var retry <-chan time.Time // set after a failure
	var wait time.Duration     // the next wait after a failure; 0: x.ov.retry
	for {
		select {
		case <-x.ov.kick:
			if retry != nil {
				continue // a failure waits for its retry: a kick per Apply would spin
			}
		case <-retry:
		case <-x.ov.stop:
			return
		}
		if x.enter() != nil {
			return
		}
		// A failure is logged like pebble's background errors (a failed flush on main
		// was one), counted in Metrics, and tried again after a wait that doubles with
		// every failure in a row; the overlay stays, so reads stay right meanwhile.
		err := x.handOff()
		x.exit()
		if err == nil {
			retry, wait = nil, 0
			continue
		}
		x.ov.failures.Add(1)
		if x.ov.report != nil {
			x.ov.report(err)
		}
		if wait == 0 {
			wait = x.ov.retry
		}
		retry = time.After(wait)
		wait = min(2*wait, handOffRetryMax)
	}
}

// handOff writes every frozen overlay to pebble, oldest first, raising Durable. The
// caller has entered the index.
func (x *Index) handOff() error {
	st := &x.ov
	st.handing.Lock()
	defer st.handing.Unlock()
	for {
		st.mu.RLock()
		var f *overlay
		if len(st.frozen) > 0 {
			f = st.frozen[0]
		}
		st.mu.RUnlock()
		if f == nil {
			return nil
		}
		if err := x.ingest(f); err != nil {
			return err
		}
		if st.pause != nil {
			st.pause("ingested")
		}
		st.mu.Lock()
		st.frozen = st.frozen[1:]
		st.mu.Unlock()
		x.raiseDurable(f.pos)
	}
}

// ingest writes the overlay f as one sorted table and ingests it into pebble. The caller
// holds handing.
func (x *Index) ingest(f *overlay) error {
	if f.names == nil {
		names := make([]string, 0, len(f.streams))
		for n := range f.streams {
			names = append(names, n)
		}
		slices.Sort(names)
		x.ov.mu.Lock()
		f.names = names
		x.ov.mu.Unlock()
	}
	if x.ov.pause != nil {
		x.ov.pause("frozen")
	}
	if x.ov.fail != nil {
		if err := x.ov.fail(); err != nil {
			return fmt.Errorf("index: hand-off up to position %d: %w", f.pos, err)
		}
	}
	x.ov.seq++
	path := filepath.Join(x.dir, fmt.Sprintf("overlay-%06d.sst.tmp", x.ov.seq))
	file, err := x.ov.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("index: hand-off: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(file), x.ov.wopts)
	err = writeOverlay(w, f)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The table holds the position: the log must hold on disk what it covers
		// before it is (see Options.BeforeFlush).
		if x.ov.before != nil {
			x.ov.before()
		}
		err = x.db.Ingest(context.Background(), []string{path})
	}
	// Ingest links the table into pebble's directory: this name goes either way.
	if rerr := os.Remove(path); rerr != nil && err == nil && !os.IsNotExist(rerr) {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("index: hand-off up to position %d: %w", f.pos, err)
	}
	return nil
}

// writeOverlay writes the entries of f to w in key order: C, D, E, I, K, L, M, P, T, V.
func writeOverlay(w *sstable.Writer, f *overlay) error {
	// Every key and value is built in kb and vb, which the writer copies: a key built
	// from nil each time took up to three allocations.
	var kb, vb []byte
	var err error
	set := func(k, v []byte) {
		if err == nil {
			err = w.Set(k, v)
		}
	}
	sortedKeys := func(m map[string]*posList) []string {
		out := make([]string, 0, len(m))
		for n := range m {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	for _, n := range sortedKeys(f.cats) {
		for _, p := range f.cats[n].p {
			kb = namedKey(kb[:0], spaceCategory, n, p)
			set(kb, nil)
		}
	}
	for _, p := range f.deadSorted() {
		kb = deadKey(kb[:0], p)
		if f.dead[p] {
			set(kb, nil)
		} else if err == nil {
			err = w.Delete(kb)
		}
	}
	erased := make([]string, 0, len(f.erased))
	for n := range f.erased {
		erased = append(erased, n)
	}
	slices.Sort(erased)
	for _, n := range erased {
		kb, vb = nameKey(kb[:0], spaceErased, n), appendUvs(vb[:0], f.erased[n])
		set(kb, vb)
	}
	ids := make([]uuid.UUID, 0, len(f.ids))
	for id := range f.ids {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		kb, vb = idKey(kb[:0], id), appendUvs(vb[:0], f.ids[id])
		set(kb, vb)
	}
	parents := make([]uint64, 0, len(f.causes))
	for p := range f.causes {
		parents = append(parents, p)
	}
	slices.Sort(parents)
	for _, p := range parents {
		for _, c := range f.causes[p].p {
			kb = pairKey(kb[:0], spaceCaused, p, c)
			set(kb, nil)
		}
	}
	events := make([]uint64, 0, len(f.links))
	for e := range f.links {
		events = append(events, e)
	}
	slices.Sort(events)
	for _, e := range events {
		for _, l := range f.links[e] {
			kb, vb = pairKey(kb[:0], spaceLinked, e, l.pos), linkedValue(vb[:0], l.version, l.stream)
			set(kb, vb)
		}
	}
	vb = appendUvs(vb[:0], f.pos)
	set(keyPosition, vb)
	for _, n := range f.names {
		s := f.streams[n]
		vers := s.vers
		if s.unsorted {
			vers = slices.Clone(vers)
			slices.SortStableFunc(vers, func(a, b ovEntry) int { return cmpU(a.pos, b.pos) })
		}
		for i, e := range vers {
			if i+1 < len(vers) && vers[i+1].pos == e.pos {
				continue // put into the stream again later: the last put is the member entry
			}
			kb, vb = namedKey(kb[:0], spaceMember, n, e.pos), appendUvs(vb[:0], e.version)
			set(kb, vb)
		}
	}
	for _, n := range sortedKeys(f.types) {
		for _, p := range f.types[n].p {
			kb = namedKey(kb[:0], spaceType, n, p)
			set(kb, nil)
		}
	}
	for _, n := range f.names {
		s := f.streams[n]
		kb, vb = stateKey(kb[:0], n), streamValue(vb[:0], &s.rec)
		set(kb, vb)
		for _, e := range s.vers {
			kb, vb = namedKey(kb[:0], spaceVersion, n, e.version), entryValue(vb[:0], e.pos, e.link)
			set(kb, vb)
		}
	}
	return err
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// posCursor walks a list of positions from pebble (an iterator over those at or below
// the cut) followed by the overlays' slices (above it), ascending, or descending with
// backward: the slices newest first, then pebble.
type posCursor struct {
	it       *pebble.Iterator // nil if pebble has none in range
	itOK     bool
	segs     [][]uint64 // non-empty slices, oldest first
	seg, i   int
	backward bool
}

func newPosCursor(it *pebble.Iterator, itOK bool, segs [][]uint64, backward bool) *posCursor {
	c := &posCursor{it: it, itOK: itOK, segs: segs, backward: backward}
	if backward && len(segs) > 0 {
		c.seg = len(segs) - 1
		c.i = len(segs[c.seg]) - 1
	} else if backward {
		c.seg = -1
	}
	return c
}

func (c *posCursor) valid() bool {
	if c.backward {
		return c.seg >= 0 || c.itOK
	}
	return c.itOK || c.seg < len(c.segs)
}

func (c *posCursor) pos() uint64 {
	if c.backward {
		if c.seg >= 0 {
			return c.segs[c.seg][c.i]
		}
		return suffix64(c.it.Key())
	}
	if c.itOK {
		return suffix64(c.it.Key())
	}
	return c.segs[c.seg][c.i]
}

func (c *posCursor) next() {
	if c.backward {
		if c.seg < 0 {
			c.itOK = c.it.Prev()
			return
		}
		if c.i--; c.i < 0 {
			if c.seg--; c.seg >= 0 {
				c.i = len(c.segs[c.seg]) - 1
			}
		}
		return
	}
	if c.itOK {
		c.itOK = c.it.Next()
		return
	}
	if c.i++; c.i >= len(c.segs[c.seg]) {
		c.seg, c.i = c.seg+1, 0
	}
}

// close closes the cursor's iterator.
func (c *posCursor) close() error {
	if c.it == nil {
		return nil
	}
	err := c.it.Close()
	c.it = nil
	return err
}

// clipSegs cuts the slices to the positions in [lo, hi].
func clipSegs(segs [][]uint64, lo, hi uint64) [][]uint64 {
	out := segs[:0:0]
	for _, s := range segs {
		i, _ := slices.BinarySearch(s, lo)
		j, found := slices.BinarySearch(s, hi)
		if found {
			j++
		}
		if i < j {
			out = append(out, s[i:j])
		}
	}
	return out
}

// ovMetrics returns the entries of the active overlay, the frozen overlays waiting for
// their hand-off and an estimate of the bytes of them all.
func (x *Index) ovMetrics() (active, frozen int, bytes uint64) {
	x.ov.mu.RLock()
	defer x.ov.mu.RUnlock()
	entries := 0
	x.ov.oldest(func(o *overlay) { entries += o.entries })
	return x.ov.active.entries, len(x.ov.frozen), uint64(entries) * ovEntryBytes
}
