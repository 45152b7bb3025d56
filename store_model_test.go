package pmd_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// smEvent is an event the model holds: where it was written, and what it names as its
// cause.
type smEvent struct {
	id      uuid.UUID
	pos     uint64
	stream  string
	typ     string
	version uint64
	cause   uuid.UUID
	n       int // its data, {"n": n}
}

// smEntry is a version of a stream: the position of its event, own or linked.
type smEntry struct {
	pos  uint64
	link bool
}

// smStream is a stream as the contract describes it: every version ever assigned, the
// first after its last deletion, its retention floor and settings, and the version below
// which its events are erased.
type smStream struct {
	all         []smEntry
	first       uint64
	floor       uint64
	ret         pmd.Retention
	erasedBelow uint64
}

func (s *smStream) lo() uint64       { return max(s.first, s.floor) }
func (s *smStream) next() uint64     { return uint64(len(s.all)) }
func (s *smStream) exists() bool     { return s.first < s.next() }
func (s *smStream) aged() bool       { return s.ret.MaxAge == time.Nanosecond } // hides every event from reads; the only short max age used
func (s *smStream) in(v uint64) bool { return v >= s.lo() && v < s.next() }

// smodel is the plain, slow store every read of the real one is checked against.
type smodel struct {
	events  []*smEvent
	byPos   map[uint64]*smEvent
	streams map[string]*smStream
	log     []string // the steps so far, printed with a failure
	// rebuilt: the index was rebuilt from a log a scavenge may have removed events
	// from, so the id entries of those events are gone and Stats.Events may be below
	// len(events). A rebuild sets it, and so does a kill after a scavenge since the last
	// clean close: the restart replays the log past the index's durable point, and the
	// scavenged events there are gone records that hold no id.
	rebuilt bool
	// scavenged: a scavenge ran since the index was last closed cleanly (all of it on
	// disk).
	scavenged bool
}

func (m *smodel) st(name string) *smStream {
	s := m.streams[name]
	if s == nil {
		s = &smStream{}
		m.streams[name] = s
	}
	return s
}

func (m *smodel) put(name string, e smEntry) uint64 {
	s := m.st(name)
	s.all = append(s.all, e)
	if s.ret.MaxCount > 0 && s.next() > s.ret.MaxCount {
		s.floor = max(s.floor, s.next()-s.ret.MaxCount)
	}
	return s.next() - 1
}

// dead reports whether no stream holds e any more (a max age hides but does not kill).
func (m *smodel) dead(e *smEvent) bool {
	if m.streams[e.stream].in(e.version) {
		return false
	}
	for _, s := range m.streams {
		for v := s.lo(); v < s.next(); v++ {
			if s.all[v].pos == e.pos {
				return false
			}
		}
	}
	return true
}

// holds reports whether stream holds the event at pos, as Contains and Link's duplicate
// check answer: below its deletion or retention floor it does not, under a max age it does.
func (m *smodel) holds(name string, pos uint64) bool {
	s := m.streams[name]
	if s == nil {
		return false
	}
	for v := s.lo(); v < s.next(); v++ {
		if s.all[v].pos == pos {
			return true
		}
	}
	return false
}

func (m *smodel) expected(name string, exp pmd.ExpectedVersion) bool {
	s := m.streams[name]
	exists := s != nil && s.exists()
	switch exp {
	case pmd.Any:
		return true
	case pmd.NoStream:
		return !exists
	case pmd.StreamExists:
		return exists
	}
	return exists && exp == pmd.AtVersion(s.next()-1)
}

// smNames trap prefix iteration: a stream, a category and a longer name sharing a prefix.
var smNames = []string{"a", "a$1", "a$", "ab", "Order", "Order$1", "Order$10", "Order2$1", "b$a$c", "x"}
var smTypes = []string{"T1", "T2", "T3"}

func smID(n uint64) uuid.UUID {
	var id uuid.UUID
	id[0] = 0xab
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

// TestStoreMatchesModel runs random sequences of appends (with expected versions, several
// events, causations, an id already taken), links, deletions, retention settings, erasures,
// scavenges, reopens, kills (a copy of the open store's files) and index rebuilds through
// the public API, and after each step checks every read against smodel: stream reads in
// both directions with from and limit, $all, type and category reads, lookups by id,
// EventStreams, Caused, Contains, Erased, StreamInfo, Streams and Stats' counts.
// By default two seeds of 30 steps (about 10 s under -race on a loaded 2-core machine),
// each with its own IndexFlushEvery and ending in a long stream of more than 256 events,
// so that reads cross a page and Caused a chunk (any later step would check a model that
// large, slowly). PMD_STORE_MODEL_SEEDS=n runs n seeds of 150 steps
// (PMD_STORE_MODEL_SEED=k only seed k), with random flush settings and long steps;
// PMD_STORE_MODEL_STEPS=n sets their steps.
func TestStoreMatchesModel(t *testing.T) {
	first, seeds, steps := 0, 2, 30
	// The default seeds' settings: a long last step, and IndexFlushEvery per seed.
	cfg := func(seed int) smConfig { return smConfig{longAt: steps - 1, flushEvery: []int{1, 7}[seed%2]} }
	random := func(int) smConfig { return smConfig{longAt: -1, flushEvery: -1} }
	if n, err := strconv.Atoi(os.Getenv("PMD_STORE_MODEL_SEEDS")); err == nil && n > 0 {
		seeds, steps, cfg = n, 150, random
	}
	if k, err := strconv.Atoi(os.Getenv("PMD_STORE_MODEL_SEED")); err == nil {
		first, seeds, steps, cfg = k, 1, 150, random
	}
	if n, err := strconv.Atoi(os.Getenv("PMD_STORE_MODEL_STEPS")); err == nil && n > 0 {
		steps = n
	}
	for seed := first; seed < first+seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { testStoreMatchesModel(t, uint64(seed), steps, cfg(seed)) })
	}
}

// smConfig fixes what a seed would otherwise draw: the step that is a long stream of more
// than 256 events (-1: none forced) and Options.IndexFlushEvery (-1: drawn).
type smConfig struct {
	longAt, flushEvery int
}

func testStoreMatchesModel(t *testing.T, seed uint64, steps int, cfg smConfig) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quietLogger(), NoScrub: true, SegmentSize: 2048, IndexFlushEvery: []int{0, 1, 3, 7, 20, 50}[rng.IntN(6)]}
	if cfg.flushEvery >= 0 {
		opts.IndexFlushEvery = cfg.flushEvery
	}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	m := &smodel{byPos: map[uint64]*smEvent{}, streams: map[string]*smStream{}}
	nextID := uint64(1)
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("seed %d\n%s\n"+format, append([]any{seed, strings.Join(m.log, "\n")}, a...)...)
	}
	randExp := func(name string) pmd.ExpectedVersion {
		switch rng.IntN(6) {
		case 0, 1:
			return pmd.Any
		case 2:
			return pmd.NoStream
		case 3:
			return pmd.StreamExists
		}
		v := uint64(0)
		if st := m.streams[name]; st != nil && st.next() > 0 {
			v = st.next() - 1
		}
		if rng.IntN(4) == 0 {
			v += uint64(rng.IntN(3)) // wrong more often than not
		}
		return pmd.AtVersion(v)
	}
	liveEvent := func() *smEvent {
		var live []*smEvent
		for _, e := range m.events {
			if !m.dead(e) {
				live = append(live, e)
			}
		}
		if len(live) == 0 {
			return nil
		}
		return live[rng.IntN(len(live))]
	}
	for step := 0; step < steps; step++ {
		name := smNames[rng.IntN(len(smNames))]
		op := rng.IntN(100)
		if step == cfg.longAt {
			op = 99
		}
		switch {
		case op < 40: // append
			exp := randExp(name)
			k := 1 + rng.IntN(3)
			var evs []pmd.EventData
			var specs []*smEvent
			dupe := false
			for i := 0; i < k; i++ {
				id := smID(nextID)
				nextID++
				if k > 1 && i == k-1 && rng.IntN(15) == 0 {
					if e := liveEvent(); e != nil {
						id = e.id
						dupe = true
					}
				}
				ae := &smEvent{id: id, stream: name, typ: smTypes[rng.IntN(len(smTypes))], n: int(nextID)}
				meta := map[string]any{}
				if rng.IntN(3) == 0 {
					if p := liveEvent(); p != nil {
						ae.cause = p.id
						meta[pmd.CausationID] = p.id.String()
					}
				}
				evs = append(evs, pmd.EventData{ID: id, Type: ae.typ, Data: map[string]any{"n": ae.n}, Metadata: meta})
				specs = append(specs, ae)
			}
			m.log = append(m.log, fmt.Sprintf("append %q %v x%d dupe=%v", name, exp, k, dupe))
			res, err := s.Append(ctx, name, exp, evs...)
			ok := m.expected(name, exp)
			switch {
			case !ok:
				if !errors.Is(err, pmd.ErrWrongExpectedVersion) {
					fail("append: want wrong expected version, got %v", err)
				}
				continue
			case dupe:
				if !errors.Is(err, pmd.ErrDuplicateEvent) {
					fail("append: want duplicate, got %v %+v", err, res)
				}
				continue
			case err != nil:
				fail("append: %v", err)
			}
			if res.LastPosition-res.FirstPosition+1 != uint64(k) {
				fail("append positions %+v", res)
			}
			var v uint64
			for i, ae := range specs {
				ae.pos = res.FirstPosition + uint64(i)
				ae.version = m.st(name).next()
				v = m.put(name, smEntry{pos: ae.pos})
				m.events = append(m.events, ae)
				m.byPos[ae.pos] = ae
			}
			if res.Version != v {
				fail("append version %d want %d", res.Version, v)
			}
		case op < 55: // link
			exp := randExp(name)
			k := 1 + rng.IntN(2)
			var ids []uuid.UUID
			var targets []*smEvent
			for i := 0; i < k; i++ {
				var e *smEvent
				if len(m.events) > 0 && rng.IntN(5) == 0 {
					e = m.events[rng.IntN(len(m.events))]
				} else {
					e = liveEvent()
				}
				if e == nil || slices.Contains(targets, e) {
					continue
				}
				ids = append(ids, e.id)
				targets = append(targets, e)
			}
			if len(ids) == 0 {
				continue
			}
			m.log = append(m.log, fmt.Sprintf("link %q %v %v", name, exp, func() (ps []uint64) {
				for _, e := range targets {
					ps = append(ps, e.pos)
				}
				return
			}()))
			res, err := s.Link(ctx, name, exp, ids...)
			var wantErr error
			if !m.expected(name, exp) {
				wantErr = pmd.ErrWrongExpectedVersion
			}
			for _, e := range targets {
				if wantErr == nil && m.dead(e) {
					wantErr = pmd.ErrEventNotFound
				}
				if wantErr == nil && m.holds(name, e.pos) {
					wantErr = pmd.ErrDuplicateEvent
				}
			}
			if wantErr != nil {
				if !errors.Is(err, wantErr) {
					fail("link: want %v, got %v", wantErr, err)
				}
				continue
			}
			if err != nil {
				fail("link: %v", err)
			}
			var v uint64
			for _, e := range targets {
				v = m.put(name, smEntry{pos: e.pos, link: true})
			}
			if res.Version != v {
				fail("link version %d want %d", res.Version, v)
			}
		case op < 62: // delete
			m.log = append(m.log, fmt.Sprintf("delete %q", name))
			if err := s.DeleteStream(ctx, name, pmd.Any); err != nil {
				fail("delete: %v", err)
			}
			if st := m.streams[name]; st != nil {
				st.first = st.next()
			}
		case op < 72: // retention
			st := m.st(name)
			var r pmd.Retention
			switch rng.IntN(6) {
			case 0:
			case 1:
				r.MaxCount = uint64(1 + rng.IntN(3))
			case 2:
				r.TruncateBefore = uint64(rng.IntN(int(st.next()) + 1))
			case 3:
				r.MaxAge = time.Nanosecond
			case 4:
				r.MaxAge = time.Hour
			case 5:
				r.MaxCount = uint64(1 + rng.IntN(3))
				r.TruncateBefore = uint64(rng.IntN(int(st.next()) + 1))
			}
			m.log = append(m.log, fmt.Sprintf("retention %q %+v", name, r))
			if err := s.SetRetention(ctx, name, r); err != nil {
				fail("retention: %v", err)
			}
			st.ret = r
			st.floor = max(st.floor, r.TruncateBefore)
			if r.MaxCount > 0 && st.next() > r.MaxCount {
				st.floor = max(st.floor, st.next()-r.MaxCount)
			}
		case op < 77: // erase
			m.log = append(m.log, fmt.Sprintf("erase %q", name))
			if err := s.EraseStream(ctx, name); err != nil {
				fail("erase: %v", err)
			}
			if st := m.streams[name]; st != nil {
				st.erasedBelow = st.next()
			}
		case op < 85: // scavenge
			m.log = append(m.log, "scavenge")
			if _, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil {
				fail("scavenge: %v", err)
			}
			m.scavenged = true
			for _, st := range m.streams { // its expiry kills what a max age hides
				if st.aged() && st.exists() && st.lo() < st.next() {
					st.floor = st.next()
				}
			}
		case op < 92: // reopen
			m.log = append(m.log, "reopen")
			if err := s.Close(); err != nil {
				fail("close: %v", err)
			}
			if s, err = pmd.Open(dir, opts); err != nil {
				fail("open: %v", err)
			}
			m.scavenged = false // the clean close put the whole index on disk
		case op < 95: // kill: a copy of the open store's files, as crash_origin_test.go takes one
			m.log = append(m.log, "kill")
			crashed := filepath.Join(t.TempDir(), "crashed")
			// A compaction may remove an index file the copy listed: copy again.
			for try := 0; ; try++ {
				if err := os.RemoveAll(crashed); err != nil {
					t.Fatal(err)
				}
				err := os.CopyFS(crashed, os.DirFS(dir))
				if err == nil {
					break
				}
				if try == 20 {
					t.Fatal(err)
				}
			}
			s.Close() // the copy is what survives
			dir = crashed
			// The restart replays the log past the index's durable point: the events a
			// scavenge removed there come back as gone records without their ids, as
			// after a rebuild (see Stats.Events).
			if m.scavenged {
				m.rebuilt = true
			}
			if s, err = pmd.Open(dir, opts); err != nil {
				fail("open after kill: %v", err)
			}
		case op < 97: // rebuild
			m.log = append(m.log, "rebuild")
			m.rebuilt = true
			if err := s.Close(); err != nil {
				fail("close: %v", err)
			}
			if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
			if s, err = pmd.Open(dir, opts); err != nil {
				fail("open: %v", err)
			}
		default: // a long stream: versions past a read's page of 256, a cause of more children than a Caused chunk
			n := 100 + rng.IntN(200)
			if step == cfg.longAt {
				n = max(n, 257+rng.IntN(43))
			}
			parent := liveEvent()
			m.log = append(m.log, fmt.Sprintf("long %q %d", name, n))
			for i := 0; i < n; i++ {
				id := smID(nextID)
				nextID++
				ae := &smEvent{id: id, stream: name, typ: smTypes[rng.IntN(len(smTypes))], n: int(nextID)}
				meta := map[string]any{}
				if parent != nil {
					ae.cause = parent.id
					meta[pmd.CausationID] = parent.id.String()
				}
				res, err := s.Append(ctx, name, pmd.Any, pmd.EventData{ID: id, Type: ae.typ, Data: map[string]any{"n": ae.n}, Metadata: meta})
				if err != nil {
					fail("long: %v", err)
				}
				ae.pos = res.FirstPosition
				ae.version = m.st(name).next()
				m.put(name, smEntry{pos: ae.pos})
				m.events = append(m.events, ae)
				m.byPos[ae.pos] = ae
			}
		}
		smCheck(t, rng, s, m, fail)
	}
}

// smGot renders a read event as smWant renders the model's, or says what is wrong with it.
func smGot(m *smodel, ev pmd.Event) string {
	e := m.byPos[ev.Position]
	if e == nil {
		return fmt.Sprintf("unknown position %d", ev.Position)
	}
	if ev.ID != e.id || ev.Stream != e.stream || ev.Type != e.typ {
		return fmt.Sprintf("bad event %+v", ev)
	}
	if !ev.Erased && fmt.Sprint(ev.Data["n"]) != fmt.Sprint(e.n) {
		return fmt.Sprintf("bad data %+v", ev)
	}
	if ev.Erased && (ev.Data != nil || ev.Metadata != nil) {
		return fmt.Sprintf("erased with data %+v", ev)
	}
	if ev.Link {
		return fmt.Sprintf("%d:%s@%d(%s) link erased=%v", ev.Position, ev.Type, ev.Version, ev.Stream, ev.Erased)
	}
	return fmt.Sprintf("%d:%s@%d(%s) erased=%v", ev.Position, ev.Type, ev.Version, ev.Stream, ev.Erased)
}

// smWant renders the model's event e as read at version of a stream.
func smWant(m *smodel, e *smEvent, version uint64, link bool) string {
	erased := m.streams[e.stream].erasedBelow > e.version
	if link {
		return fmt.Sprintf("%d:%s@%d(%s) link erased=%v", e.pos, e.typ, version, e.stream, erased)
	}
	return fmt.Sprintf("%d:%s@%d(%s) erased=%v", e.pos, e.typ, version, e.stream, erased)
}

// smCollect renders what a read yields, up to its first error.
func smCollect(m *smodel, seq func(func(pmd.Event, error) bool)) ([]string, error) {
	var out []string
	for ev, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, smGot(m, ev))
	}
	return out, nil
}

// smCheck compares every read of s with the model.
func smCheck(t *testing.T, rng *rand.Rand, s *pmd.Store, m *smodel, fail func(string, ...any)) {
	t.Helper()
	ctx := context.Background()
	lastPos := s.LastPosition()
	// Which events are dead, found once: m.dead walks every stream, and the checks below
	// ask of every event, for every event (Caused), which after a long step is slow.
	deadAt := make(map[uint64]bool, len(m.events))
	for _, e := range m.events {
		deadAt[e.pos] = m.dead(e)
	}
	// streams
	// Contains is asked of every event while there are few, of one in stride (and of
	// every one the stream holds or held) after a long step: all would be most of the run.
	stride := 1 + len(m.events)/64
	for j, name := range smNames {
		st := m.streams[name]
		info, err := s.StreamInfo(name)
		if err != nil {
			fail("info %v", err)
		}
		wantInfo := pmd.StreamInfo{Name: name, Version: -1}
		if st != nil {
			wantInfo.Exists, wantInfo.Version = st.exists(), int64(st.next())-1
		}
		if info != wantInfo {
			fail("StreamInfo(%q) = %+v want %+v", name, info, wantInfo)
		}
		for range 3 {
			o := pmd.ReadOptions{Backward: rng.IntN(2) == 0, Limit: []int{0, 1, 2, 3, 255, 256, 257, 300}[rng.IntN(8)]}
			switch rng.IntN(3) {
			case 0:
			case 1:
				o.From = uint64(rng.IntN(12))
				if st != nil && rng.IntN(2) == 0 {
					o.From = uint64(rng.IntN(int(st.next()) + 2))
				}
			case 2:
				o.From = pmd.End
			}
			got, err := smCollect(m, s.ReadStream(ctx, name, o))
			if st == nil || !st.exists() {
				if !errors.Is(err, pmd.ErrStreamNotFound) {
					fail("read %q %+v: want not found, got %v %v", name, o, got, err)
				}
				continue
			}
			if err != nil {
				fail("read %q: %v", name, err)
			}
			var want []string
			if !st.aged() {
				for i := range st.all {
					v := uint64(i)
					if o.Backward {
						v = st.next() - 1 - uint64(i)
					}
					if !st.in(v) || (o.Backward && v > o.From) || (!o.Backward && v < o.From) {
						continue
					}
					if o.Limit > 0 && len(want) == o.Limit {
						break
					}
					en := st.all[v]
					want = append(want, smWant(m, m.byPos[en.pos], v, en.link))
				}
			}
			if !slices.Equal(got, want) {
				fail("read %q %+v:\n got %q\nwant %q", name, o, got, want)
			}
		}
		// contains
		for i, e := range m.events {
			if (i+j)%stride != 0 && (st == nil || !slices.ContainsFunc(st.all, func(en smEntry) bool { return en.pos == e.pos })) {
				continue
			}
			got, err := s.Contains(name, e.pos)
			if err != nil {
				fail("contains %v", err)
			}
			want := m.holds(name, e.pos)
			if got != want {
				fail("Contains(%q, %d) = %v want %v", name, e.pos, got, want)
			}
		}
	}
	// Streams list
	var wantNames []string
	for name := range m.streams {
		wantNames = append(wantNames, name)
	}
	slices.Sort(wantNames)
	list, err := s.Streams("", "", 1000)
	if err != nil {
		fail("streams %v", err)
	}
	var gotNames []string
	for _, i := range list {
		gotNames = append(gotNames, i.Name)
	}
	if !slices.Equal(gotNames, wantNames) {
		fail("Streams = %q want %q", gotNames, wantNames)
	}
	for _, prefix := range []string{"a", "a$", "Order", "Order$1", "b$"} {
		list, err := s.Streams(prefix, "", 1000)
		if err != nil {
			fail("streams %v", err)
		}
		gotNames = gotNames[:0]
		for _, i := range list {
			gotNames = append(gotNames, i.Name)
		}
		var want []string
		for _, n := range wantNames {
			if strings.HasPrefix(n, prefix) {
				want = append(want, n)
			}
		}
		if !slices.Equal(gotNames, want) {
			fail("Streams(%q) = %q want %q", prefix, gotNames, want)
		}
	}
	// $all, types, categories
	allOf := func(keep func(*smEvent) bool, o pmd.ReadOptions) []string {
		var want []string
		for i := range m.events {
			e := m.events[i]
			if o.Backward {
				e = m.events[len(m.events)-1-i]
			}
			if deadAt[e.pos] || !keep(e) || (o.Backward && e.pos > o.From) || (!o.Backward && e.pos < o.From) {
				continue
			}
			if o.Limit > 0 && len(want) == o.Limit {
				break
			}
			want = append(want, smWant(m, e, e.version, false))
		}
		return want
	}
	for range 4 {
		o := pmd.ReadOptions{Backward: rng.IntN(2) == 0, Limit: rng.IntN(5)}
		if rng.IntN(2) == 0 && lastPos > 0 {
			o.From = uint64(rng.IntN(int(lastPos) + 2))
		} else if o.Backward {
			o.From = pmd.End
		}
		got, err := smCollect(m, s.ReadAll(ctx, o))
		if err != nil {
			fail("all %v", err)
		}
		if want := allOf(func(*smEvent) bool { return true }, o); !slices.Equal(got, want) {
			fail("ReadAll %+v:\n got %q\nwant %q", o, got, want)
		}
		o.Types = []string{smTypes[rng.IntN(3)]}
		got, err = smCollect(m, s.ReadAll(ctx, o))
		if err != nil {
			fail("types %v", err)
		}
		if want := allOf(func(e *smEvent) bool { return e.typ == o.Types[0] }, o); !slices.Equal(got, want) {
			fail("ReadAll %+v:\n got %q\nwant %q", o, got, want)
		}
		o.Types = nil
		for _, c := range []string{"a", "ab", "Order", "Order2", "b", "x"} {
			got, err = smCollect(m, s.ReadCategory(ctx, c, o))
			if err != nil {
				fail("cat %v", err)
			}
			want := allOf(func(e *smEvent) bool { return strings.SplitN(e.stream, "$", 2)[0] == c }, o)
			if !slices.Equal(got, want) {
				fail("ReadCategory %q %+v:\n got %q\nwant %q", c, o, got, want)
			}
		}
	}
	// by id, relations
	for _, e := range m.events {
		ev, err := s.Event(ctx, e.id)
		dead := deadAt[e.pos]
		if dead {
			if !errors.Is(err, pmd.ErrEventNotFound) {
				fail("Event(%d) dead: %v %+v", e.pos, err, ev)
			}
		} else {
			if err != nil {
				fail("Event(%d): %v", e.pos, err)
			}
			if g, w := smGot(m, ev), smWant(m, e, e.version, false); g != w {
				fail("Event(%d) = %s want %s", e.pos, g, w)
			}
		}
		streams, err := s.EventStreams(ctx, e.id)
		if dead {
			if !errors.Is(err, pmd.ErrEventNotFound) {
				fail("EventStreams(%d) dead: %v %v", e.pos, err, streams)
			}
		} else {
			if err != nil {
				fail("EventStreams %v", err)
			}
			var want []string
			if own := m.streams[e.stream]; own.in(e.version) && !own.aged() {
				want = append(want, e.stream)
			}
			// Then the streams it is linked into and still shown in (the index's own
			// model test checks their order).
			for _, name := range smNames {
				st := m.streams[name]
				if st == nil || st.aged() {
					continue
				}
				for v := st.lo(); v < st.next(); v++ {
					if st.all[v].pos == e.pos && st.all[v].link && !slices.Contains(want, name) {
						want = append(want, name)
					}
				}
			}
			gs := slices.Clone(streams)
			if len(gs) > 0 && len(want) > 0 && gs[0] == want[0] && want[0] == e.stream {
				gs, want = gs[1:], want[1:]
			}
			slices.Sort(gs)
			slices.Sort(want)
			if !slices.Equal(gs, want) {
				fail("EventStreams(%d) = %q want (sorted rest) %q", e.pos, streams, want)
			}
		}
		caused, err := s.Caused(ctx, e.id, 0)
		if dead {
			if !errors.Is(err, pmd.ErrEventNotFound) {
				fail("Caused(%d) dead: %v", e.pos, err)
			}
			continue
		}
		if err != nil {
			fail("Caused %v", err)
		}
		var got, want []uint64
		for _, c := range caused {
			got = append(got, c.Position)
		}
		for _, c := range m.events {
			if c.cause == e.id && !deadAt[c.pos] && m.streams[c.stream].erasedBelow <= c.version {
				want = append(want, c.pos)
			}
		}
		if !slices.Equal(got, want) {
			fail("Caused(%d) = %v want %v", e.pos, got, want)
		}
	}
	// counts: the store offers no wait for its count, only Stats.Counted, so this polls
	// it up to a deadline (the pass is a background goroutine of the index).
	var stats pmd.Stats
	for deadline := time.Now().Add(10 * time.Second); ; {
		stats = s.Stats()
		if stats.Counted {
			break
		}
		if time.Now().After(deadline) {
			fail("Stats never counted in 10s")
		}
		time.Sleep(time.Millisecond)
	}
	var existing uint64
	for _, st := range m.streams {
		if st.exists() {
			existing++
		}
	}
	// After a rebuild (or a kill after a scavenge) the events a scavenge removed have no
	// id entry any more: Events is then between the events no stream lost and all.
	var live uint64
	for _, e := range m.events {
		if !deadAt[e.pos] {
			live++
		}
	}
	events := stats.Events == uint64(len(m.events)) || (m.rebuilt && stats.Events >= live && stats.Events <= uint64(len(m.events)))
	if !events || stats.Streams != existing {
		fail("Stats events %d streams %d, want %d %d (rebuilt %v: at least %d)", stats.Events, stats.Streams, len(m.events), existing, m.rebuilt, live)
	}
	// Erased
	for _, e := range m.events {
		got, err := s.Erased(e.stream, e.version)
		if err != nil {
			fail("erased %v", err)
		}
		if want := m.streams[e.stream].erasedBelow > e.version; got != want {
			fail("Erased(%q,%d)=%v want %v", e.stream, e.version, got, want)
		}
	}
}
