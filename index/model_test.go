package index

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// testID returns a distinct id for each n.
func testID(n uint64) uuid.UUID {
	var id uuid.UUID
	id[0] = 0x1d
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

// model is the obvious, slow index the real one is checked against: it keeps every version
// ever assigned and answers queries by filtering.
type model struct {
	pos     uint64
	links   int
	events  []modelEvent
	streams map[string]*modelStream
	linkLog []modelLink         // every link, in log order
	causes  map[uint64][]uint64 // parent position → the positions of the events it caused
	erased  map[string]uint64
}

type modelLink struct {
	event   uint64
	stream  string
	version uint64
}

type modelEvent struct {
	pos          uint64
	id           uuid.UUID
	stream, kind string
	version      uint64
}

type modelStream struct {
	all   []Entry // every version ever assigned
	first uint64  // the version after the last deletion
	floor uint64  // the retention floor
	ret   Retention
}

// lo is the first visible version.
func (s *modelStream) lo() uint64 { return max(s.first, s.floor) }

func (s *modelStream) visible(version uint64) bool {
	return version >= s.lo() && version < uint64(len(s.all))
}

func newModel() *model {
	return &model{streams: map[string]*modelStream{}, causes: map[uint64][]uint64{}, erased: map[string]uint64{}}
}

// dead reports whether no stream shows the event at pos any more.
func (m *model) dead(e modelEvent) bool {
	if m.stream(e.stream).visible(e.version) {
		return false
	}
	for _, l := range m.linkLog {
		if l.event == e.pos && m.stream(l.stream).visible(l.version) {
			return false
		}
	}
	return true
}

func (m *model) event(pos uint64) modelEvent {
	i, _ := slices.BinarySearchFunc(m.events, pos, func(e modelEvent, p uint64) int { return cmp.Compare(e.pos, p) })
	return m.events[i]
}

func (m *model) setRetention(pos uint64, stream string, r Retention, expired uint64) {
	m.pos = pos
	s := m.stream(stream)
	s.ret = r
	next := uint64(len(s.all))
	s.floor = max(s.floor, r.TruncateBefore, expired)
	if r.MaxCount > 0 && next > r.MaxCount {
		s.floor = max(s.floor, next-r.MaxCount)
	}
}

func (m *model) erase(pos uint64, stream string, before uint64) {
	m.pos = pos
	m.erased[stream] = max(m.erased[stream], before)
}

func (m *model) stream(name string) *modelStream {
	s := m.streams[name]
	if s == nil {
		s = &modelStream{}
		m.streams[name] = s
	}
	return s
}

func (m *model) addEvent(pos uint64, id uuid.UUID, stream, typ string) uint64 {
	m.pos = pos
	s := m.stream(stream)
	m.events = append(m.events, modelEvent{pos, id, stream, typ, uint64(len(s.all))})
	return s.put(Entry{Version: uint64(len(s.all)), Position: pos})
}

func (s *modelStream) put(e Entry) uint64 {
	s.all = append(s.all, e)
	if next := uint64(len(s.all)); s.ret.MaxCount > 0 && next > s.ret.MaxCount {
		s.floor = max(s.floor, next-s.ret.MaxCount)
	}
	return e.Version
}

func (m *model) addLink(pos uint64, stream string, event uint64) uint64 {
	m.pos = pos
	m.links++
	s := m.stream(stream)
	m.linkLog = append(m.linkLog, modelLink{event, stream, uint64(len(s.all))})
	return s.put(Entry{Version: uint64(len(s.all)), Position: event, Link: true})
}

func (m *model) addCausation(child, parent uint64) {
	m.causes[parent] = append(m.causes[parent], child)
}

func (m *model) deleteStream(pos uint64, stream string) {
	m.pos = pos
	if s := m.streams[stream]; s != nil {
		s.first = uint64(len(s.all))
	}
}

func (m *model) state(name string) StreamState {
	s := m.streams[name]
	if s == nil {
		return StreamState{Last: -1}
	}
	next := uint64(len(s.all))
	return StreamState{Exists: s.first < next, Last: int64(next) - 1, Next: next, First: s.lo(), Retention: s.ret}
}

func (m *model) versions(name string, from uint64, backward bool, limit int) []Entry {
	s := m.streams[name]
	if s == nil {
		return nil
	}
	var out []Entry
	visible := s.all[min(s.lo(), uint64(len(s.all))):]
	if backward {
		visible = slices.Clone(visible)
		slices.Reverse(visible)
	}
	for _, e := range visible {
		if limit > 0 && len(out) == limit {
			break
		}
		if backward && e.Version <= from || !backward && e.Version >= from {
			out = append(out, e)
		}
	}
	return out
}

func (m *model) contains(name string, event uint64) bool {
	s := m.streams[name]
	if s == nil {
		return false
	}
	for _, e := range s.all[min(s.lo(), uint64(len(s.all))):] {
		if e.Position == event {
			return true
		}
	}
	return false
}

// linkedInto lists the streams event was linked into that still hold it, each at its
// last link.
func (m *model) linkedInto(event uint64) []string {
	var out []string
	for _, l := range m.linkLog {
		if l.event == event && m.contains(l.stream, event) {
			out = slices.DeleteFunc(out, func(s string) bool { return s == l.stream })
			out = append(out, l.stream)
		}
	}
	return out
}

func (m *model) caused(event uint64, limit int) []uint64 {
	var c []uint64
	for _, child := range m.causes[event] {
		if !m.dead(m.event(child)) {
			c = append(c, child)
		}
	}
	if limit > 0 && len(c) > limit {
		c = c[:limit]
	}
	return c
}

func (m *model) lookup(id uuid.UUID) (uint64, bool) {
	for _, e := range m.events {
		if e.id == id && !m.dead(e) {
			return e.pos, true
		}
	}
	return 0, false
}

// positions pages the positions of the events keep accepts.
func (m *model) positions(keep func(modelEvent) bool, from uint64, backward bool, limit int) []uint64 {
	var out []uint64
	for i := range m.events {
		e := m.events[i]
		if backward {
			e = m.events[len(m.events)-1-i]
		}
		if limit > 0 && len(out) == limit {
			break
		}
		if keep(e) && (backward && e.pos <= from || !backward && e.pos >= from) && !m.dead(e) {
			out = append(out, e.pos)
		}
	}
	return out
}

func (m *model) category(c string, from uint64, backward bool, limit int) []uint64 {
	return m.positions(func(e modelEvent) bool { return CategoryOf(e.stream) == c }, from, backward, limit)
}

func (m *model) types(types []string, from uint64, backward bool, limit int) []uint64 {
	return m.positions(func(e modelEvent) bool { return slices.Contains(types, e.kind) }, from, backward, limit)
}

func (m *model) streamNames(prefix, after string, limit int) []StreamInfo {
	var names []string
	for name := range m.streams {
		if strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if limit > 0 && len(names) > limit {
		names = names[:limit]
	}
	var out []StreamInfo
	for _, name := range names {
		out = append(out, StreamInfo{Name: name, StreamState: m.state(name)})
	}
	return out
}

// workload applies n random records to m and to each of xs, from position m.pos+1 on, in
// batches of random sizes, and checks that every writer returns the version the model
// expects. Positions have gaps,
// streams of a few categories (with and without '$') get events and links, some get
// deleted, and one stream, "Long$1", grows past setThreshold, is deleted and grows again.
func workload(t testing.TB, rng *rand.Rand, m *model, n int, xs ...*Index) {
	t.Helper()
	cats := []string{"Order", "Cart", "Plain", "$sys"}
	kinds := []string{"Created", "Paid", "Shipped", "Cancelled", "Noted"}
	streamName := func() string {
		c := cats[rng.IntN(len(cats))]
		if c == "Plain" {
			return fmt.Sprintf("Plain%d", rng.IntN(5))
		}
		return fmt.Sprintf("%s$%d", c, rng.IntN(40))
	}
	pos := m.pos
	batches := make([]*Batch, len(xs))
	for i, x := range xs {
		batches[i] = x.NewBatch()
		batches[i].Origin = func(pos uint64) (string, uint64, error) {
			e := m.event(pos)
			return e.stream, e.version, nil
		}
	}
	for k := range n {
		pos += 1 + uint64(rng.IntN(3))
		var want uint64
		var write func(b *Batch) (uint64, error)
		switch r := rng.IntN(100); {
		case r < 55 || len(m.events) == 0:
			id := testID(pos)
			stream, typ := streamName(), kinds[rng.IntN(len(kinds))]
			if r < 15 {
				stream = "Long$1"
			}
			// A third of the events have a causation parent, most of them one of a few
			// early events, so that some parents cause many.
			var parent uint64
			if len(m.events) > 0 && rng.IntN(3) == 0 {
				parent = m.events[rng.IntN(min(len(m.events), 1+rng.IntN(2)*20))].pos
			}
			want = m.addEvent(pos, id, stream, typ)
			if parent != 0 {
				m.addCausation(pos, parent)
			}
			write = func(b *Batch) (uint64, error) {
				v, err := b.AddEvent(pos, id, stream, typ)
				if err == nil && parent != 0 {
					err = b.AddCausation(pos, parent)
				}
				return v, err
			}
		case r < 90:
			stream := streamName()
			if r < 80 {
				stream = "Long$1"
			}
			e := m.events[rng.IntN(len(m.events))]
			if m.dead(e) {
				m.pos = pos // the store links only what it finds by id
				write = func(b *Batch) (uint64, error) { return 0, b.Advance(pos) }
				break
			}
			event := e.pos
			want = m.addLink(pos, stream, event)
			write = func(b *Batch) (uint64, error) { return b.AddLink(pos, stream, event) }
		case r < 92:
			stream := streamName()
			var ret Retention
			switch rng.IntN(4) {
			case 0:
				ret.MaxCount = 1 + uint64(rng.IntN(4))
			case 1:
				ret.TruncateBefore = uint64(rng.IntN(int(m.state(stream).Next) + 3))
			case 2:
				ret.MaxAge = int64(1 + rng.IntN(1000))
			}
			expired := uint64(0)
			if rng.IntN(3) == 0 {
				expired = uint64(rng.IntN(int(m.state(stream).Next) + 1))
			}
			m.setRetention(pos, stream, ret, expired)
			write = func(b *Batch) (uint64, error) { return 0, b.SetRetention(pos, stream, ret, expired) }
		case r < 94:
			stream, before := streamName(), uint64(rng.IntN(10))
			m.erase(pos, stream, before)
			write = func(b *Batch) (uint64, error) { return 0, b.Erase(pos, stream, before) }
		case r < 97:
			stream := streamName()
			if long := m.state("Long$1"); long.Next-long.First > 500 {
				stream = "Long$1"
			}
			m.deleteStream(pos, stream)
			write = func(b *Batch) (uint64, error) { return 0, b.DeleteStream(pos, stream) }
		default:
			m.pos = pos
			write = func(b *Batch) (uint64, error) { return 0, b.Advance(pos) }
		}
		flush := k == n-1 || rng.IntN(8) == 0
		for i, x := range xs {
			got, err := write(batches[i])
			if err != nil {
				t.Fatalf("record at %d: %v", pos, err)
			}
			if got != want {
				t.Fatalf("record at %d: version %d, want %d", pos, got, want)
			}
			if flush {
				if err := x.Apply(batches[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// checkSame asks x and m every kind of question and fails on the first different answer.
func checkSame(t *testing.T, x *Index, m *model) {
	t.Helper()
	if x.Position() != m.pos {
		t.Fatalf("Position() = %d, want %d", x.Position(), m.pos)
	}
	names := []string{"Nope$1", ""}
	for name := range m.streams {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		want := m.state(name)
		if got := must(x.Stream(name)); got != want {
			t.Fatalf("Stream(%q) = %+v, want %+v", name, got, want)
		}
		for _, from := range []uint64{0, want.First, want.First + 1, want.Next / 2, uint64(max(want.Last, 0)), want.Next, math.MaxUint64} {
			for _, limit := range []int{0, 1, 3} {
				for _, backward := range []bool{false, true} {
					got, want := versions(x, name, from, backward, limit), m.versions(name, from, backward, limit)
					if !slices.Equal(got, want) {
						t.Fatalf("Versions(%q, from %d, backward %v, limit %d) = %v, want %v", name, from, backward, limit, got, want)
					}
				}
			}
		}
		// Every event ever in the stream, and a sample of the others.
		var ever []Entry
		if ms := m.streams[name]; ms != nil {
			ever = ms.all
		}
		for i, e := range m.events {
			if i%5 != 0 && !slices.ContainsFunc(ever, func(v Entry) bool { return v.Position == e.pos }) {
				continue
			}
			if got, want := must(x.Contains(name, e.pos)), m.contains(name, e.pos); got != want {
				t.Fatalf("Contains(%q, %d) = %v, want %v", name, e.pos, got, want)
			}
		}
		if must(x.Contains(name, 0)) || must(x.Contains(name, m.pos+1)) || must(x.Contains(name, MaxPosition)) {
			t.Fatalf("Contains(%q) holds a position that is no event", name)
		}
	}
	checkRelations(t, x, m)
	checkCounts(t, x, m)
	for name, before := range m.erased {
		for _, v := range []uint64{0, before - 1, before} {
			if got, want := x.Erased(name, v), v < before; got != want {
				t.Fatalf("Erased(%q, %d) = %v, want %v", name, v, got, want)
			}
		}
	}
	if x.Erased("Nope$1", 0) {
		t.Fatal("Erased holds for a stream never erased")
	}
	var dead []uint64
	for _, e := range m.events {
		if got, want := must(x.Dead(e.pos)), m.dead(e); got != want {
			t.Fatalf("Dead(%d) = %v, want %v", e.pos, got, want)
		}
		if m.dead(e) {
			dead = append(dead, e.pos)
		}
	}
	for _, r := range [][2]uint64{{0, m.pos}, {m.pos / 3, m.pos / 2}} {
		want := slices.DeleteFunc(slices.Clone(dead), func(p uint64) bool { return p < r[0] || p > r[1] })
		if got := must(x.DeadIn(nil, r[0], r[1])); !slices.Equal(got, want) {
			t.Fatalf("DeadIn(%d, %d) = %v, want %v", r[0], r[1], got, want)
		}
	}
	for _, e := range append(m.events, modelEvent{id: testID(0)}) {
		gotPos, gotOK, err := x.Lookup(e.id)
		if err != nil {
			t.Fatal(err)
		}
		wantPos, wantOK := m.lookup(e.id)
		if gotPos != wantPos || gotOK != wantOK {
			t.Fatalf("Lookup(%v) = %d, %v, want %d, %v", e.id, gotPos, gotOK, wantPos, wantOK)
		}
	}
	froms := []uint64{0, 1, m.pos / 3, m.pos / 2, m.pos, math.MaxUint64}
	for _, c := range []string{"Order", "Cart", "Plain0", "Plain1", "", "Long", "Nope"} {
		for _, from := range froms {
			for _, limit := range []int{0, 1, 7} {
				for _, backward := range []bool{false, true} {
					got, want := must(x.Category(nil, c, from, backward, limit)), m.category(c, from, backward, limit)
					if !slices.Equal(got, want) {
						t.Fatalf("Category(%q, from %d, backward %v, limit %d) = %v, want %v", c, from, backward, limit, got, want)
					}
				}
			}
		}
	}
	for _, types := range [][]string{nil, {"Nope"}, {"Paid"}, {"Paid", "Shipped"}, {"Shipped", "Paid", "Paid", "Nope"}, {"Created", "Paid", "Shipped", "Cancelled", "Noted"}} {
		for _, from := range froms {
			for _, limit := range []int{0, 1, 7} {
				for _, backward := range []bool{false, true} {
					got, want := must(x.Types(nil, types, from, backward, limit)), m.types(types, from, backward, limit)
					if !slices.Equal(got, want) {
						t.Fatalf("Types(%q, from %d, backward %v, limit %d) = %v, want %v", types, from, backward, limit, got, want)
					}
				}
			}
		}
	}
	for _, prefix := range []string{"", "Order$", "Order$1", "Plain", "$", "Z"} {
		for _, after := range []string{"", "Cart$3", "Order$1", "Order$2", "Plain2", "~"} {
			for _, limit := range []int{0, 1, 5} {
				got, want := must(x.StreamNames(prefix, after, limit)), m.streamNames(prefix, after, limit)
				if !slices.Equal(got, want) {
					t.Fatalf("StreamNames(%q, %q, %d) = %v, want %v", prefix, after, limit, got, want)
				}
			}
		}
	}
}

// checkCounts compares x's Counts with m's events and existing streams.
func checkCounts(t *testing.T, x *Index, m *model) {
	t.Helper()
	want := Counts{Events: uint64(len(m.events))}
	for name := range m.streams {
		if m.state(name).Exists {
			want.Streams++
		}
	}
	if got := awaitCounts(t, x); got != want {
		t.Fatalf("Counts() = %+v, want %+v", got, want)
	}
}

// awaitCounts returns x's Counts once its counting pass has finished.
func awaitCounts(t testing.TB, x *Index) Counts {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, ok := x.Counts()
		if ok {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("Counts() did not finish its pass within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// checkRelations asks x and m for the links and causations of every event, and of
// positions that are no event.
func checkRelations(t *testing.T, x *Index, m *model) {
	t.Helper()
	for _, e := range append(m.events, modelEvent{pos: 0}, modelEvent{pos: m.pos + 1}) {
		if got, want := must(x.LinkedInto(nil, e.pos)), m.linkedInto(e.pos); !slices.Equal(got, want) {
			t.Fatalf("LinkedInto(%d) = %q, want %q", e.pos, got, want)
		}
		// Links gives the same, hidden links marked (a stream linked twice while
		// visible comes at each link), and a page after a link's position goes on
		// from it.
		var all []Link
		if err := x.Links(e.pos, 0, func(l Link) (bool, error) { all = append(all, l); return true, nil }); err != nil {
			t.Fatal(err)
		}
		var visible []string
		for i, l := range all {
			if !l.Hidden {
				visible = slices.DeleteFunc(visible, func(s string) bool { return s == l.Stream })
				visible = append(visible, l.Stream)
			}
			var next []Link
			if err := x.Links(e.pos, l.Position, func(l Link) (bool, error) { next = append(next, l); return false, nil }); err != nil {
				t.Fatal(err)
			}
			if want := all[i+1 : min(i+2, len(all))]; !slices.Equal(next, want) {
				t.Fatalf("Links(%d) after %d = %+v, want %+v", e.pos, l.Position, next, want)
			}
		}
		if want := m.linkedInto(e.pos); !slices.Equal(visible, want) {
			t.Fatalf("Links(%d) shows %q, want %q", e.pos, visible, want)
		}
		for _, limit := range []int{0, 1, 2} {
			var got []uint64
			if err := x.Caused(e.pos, 0, func(child uint64) (bool, error) {
				got = append(got, child)
				return limit == 0 || len(got) < limit, nil
			}); err != nil {
				t.Fatal(err)
			}
			if want := m.caused(e.pos, limit); !slices.Equal(got, want) {
				t.Fatalf("Caused(%d, limit %d) = %v, want %v", e.pos, limit, got, want)
			}
		}
	}
}

// modelSize returns the seeds and the workload per round of TestMatchesModel and
// TestMatchesModelDuringHandOff: 4 seeds of 400 (TestMatchesModelDuringHandOff: 2 of
// 300), about 15 s without the race detector. Under it (make test), a small run by
// default, a seed with a full-size overlay and one with hand-offs all along: at the full
// size their -race runs took ~700 s and ~460 s on a loaded 2-core machine, against make
// test's 30 minutes for every package. PMD_MODEL_SEEDS=n runs n seeds at the full size,
// with or without it.
func modelSize() (seeds uint64, round int, full bool) {
	if n, err := strconv.Atoi(os.Getenv("PMD_MODEL_SEEDS")); err == nil && n > 0 {
		return uint64(n), 400, true
	}
	if !raceOn {
		return 4, 400, true
	}
	return 2, 40, false
}

func TestMatchesModel(t *testing.T) {
	seeds, round, _ := modelSize()
	for seed := range seeds {
		// With a small overlay (odd seeds), the background hand-offs run all along,
		// between and during the writes and the reads.
		limit := handOffEntries
		if seed%2 == 1 {
			limit = 64
		}
		t.Run(fmt.Sprint("seed", seed, "overlay", limit), func(t *testing.T) {
			testMatchesModel(t, seed, limit, round)
		})
	}
}

func testMatchesModel(t *testing.T, seed uint64, limit, round int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	x, m := openTest(t, dir), newModel()
	x.ov.limit = limit
	for range 3 {
		workload(t, rng, m, round, x)
		checkSame(t, x, m)
	}
	// What was flushed is what a reopen finds.
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openTest(t, dir)
	x.ov.limit = limit
	checkSame(t, x, m)
	workload(t, rng, m, round/2, x)
	checkSame(t, x, m)
	dead := 0
	for _, e := range m.events {
		if m.dead(e) {
			dead++
		}
	}
	if dead == 0 || dead == len(m.events) || len(m.erased) == 0 {
		t.Fatalf("%d of %d events dead, %d streams erased: the workload tests too little", dead, len(m.events), len(m.erased))
	}
	t.Logf("%d of %d events dead", dead, len(m.events))
}

// TestMatchesModelDuringHandOff reads the index while a hand-off of its overlay to pebble
// is stopped before the table is written (the overlay frozen, pebble without it) and after
// it is ingested (both have it), with more batches applied meanwhile.
func TestMatchesModelDuringHandOff(t *testing.T) {
	seeds, size, full := modelSize()
	seeds, size, during := max(1, seeds/2), size*3/4, size/8
	if !full {
		seeds, size, during = 1, 50, 10
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			dir := t.TempDir()
			x, m := openTest(t, dir), newModel()
			stages, resume := make(chan string), make(chan struct{})
			// A test that fails while the hand-off is paused releases it before the
			// cleanup of openTest (registered earlier, run later) closes the index,
			// whose Flush would wait for the hand-off.
			done := make(chan struct{})
			t.Cleanup(func() { close(done) })
			x.ov.pause = func(stage string) {
				select {
				case stages <- stage:
				case <-done:
					return
				}
				select {
				case <-resume:
				case <-done:
				}
			}
			for round := range 2 {
				workload(t, rng, m, size, x)
				flushed := make(chan error, 1)
				go func() { flushed <- x.Flush() }()
				for _, want := range []string{"frozen", "ingested"} {
					if got := <-stages; got != want {
						t.Fatalf("round %d: hand-off at %q, want %q", round, got, want)
					}
					workload(t, rng, m, during, x)
					checkSame(t, x, m)
					resume <- struct{}{}
				}
				if err := <-flushed; err != nil {
					t.Fatal(err)
				}
				checkSame(t, x, m)
			}
			x.ov.pause = nil
			if err := x.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
			x = openTest(t, dir)
			checkSame(t, x, m)
		})
	}
}

// must returns v, panicking on err: the reads of an index in a test directory do not fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// openTest opens the index in dir, closing it when the test ends unless it was closed.
func openTest(t testing.TB, dir string) *Index {
	t.Helper()
	x, err := Open(dir, Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// versions is Index.Versions without the state, panicking on an error.
func versions(x *Index, stream string, from uint64, backward bool, limit int) []Entry {
	st, got, err := x.Versions(nil, stream, from, backward, limit)
	if err != nil {
		panic(err)
	}
	if want := must(x.Stream(stream)); st != want {
		panic(fmt.Sprintf("Versions(%q) gives state %+v, Stream %+v", stream, st, want))
	}
	return got
}
