package pm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// tally is the state of the definition the fold tests run: it keeps a little of
// everything a snapshot must carry back (counts in a map, a list, times, data merged
// from the events as msgpack decoded it, a nested struct behind a pointer).
type tally struct {
	ID      string
	Seen    map[string]int
	Data    map[string]any
	Order   []string
	First   time.Time
	Issued  []string
	Last    *mark
	Expired bool
}

type mark struct {
	Type     string
	Version  uint64
	Position uint64
	At       time.Time
}

var tallyTypes = []string{"Tick", "Tock", "Stop"}

// tallyDef issues Ring every fifth Tick, Stop's command once, and keeps a deadline
// pending while fewer than three Tocks are seen, so that processes write every kind of
// record. applied counts the calls of Apply.
func tallyDef(version string, applied *atomic.Int64) Definition[tally] {
	return Definition[tally]{
		Name:      "Tally",
		Version:   version,
		Handles:   tallyTypes,
		ProcessID: DataField("p"),
		Init:      func(id string) tally { return tally{ID: id, Seen: map[string]int{}, Data: map[string]any{}} },
		Apply: func(s tally, e pmd.Event) tally {
			applied.Add(1)
			s.Seen = maps.Clone(s.Seen)
			s.Data = maps.Clone(s.Data)
			if e.Link {
				s.Seen[e.Type]++
				maps.Copy(s.Data, e.Data)
				if s.First.IsZero() {
					s.First = e.Timestamp
				}
				s.Order = append(slices.Clip(s.Order), e.Type)
			} else if e.Metadata[MetaKind] == KindCommand {
				s.Issued = append(slices.Clip(s.Issued), e.Type)
				s.Expired = s.Expired || e.Type == "Expire"
			}
			s.Last = &mark{Type: e.Type, Version: e.Version, Position: e.Position, At: e.Timestamp}
			return s
		},
		Decide: func(s tally) []Command {
			var out []Command
			for n := 5; n <= s.Seen["Tick"]; n += 5 {
				out = append(out, Command{Type: "Ring", Key: fmt.Sprintf("ring-%d", n), Data: map[string]any{"n": n}})
			}
			if s.Seen["Stop"] > 0 {
				out = append(out, Command{Type: "Stopped"})
			}
			if s.Seen["Tock"] < 3 && !s.Expired && !s.First.IsZero() {
				out = append(out, Command{Type: "Expire", At: s.First.Add(time.Hour)})
			}
			return out
		},
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTestStore(t *testing.T, dir string) *pmd.Store {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runFor runs m until f returns, waiting for it to be idle before and after f.
func runFor(t *testing.T, m *Manager, f func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	idle := func() {
		wctx, stop := context.WithTimeout(ctx, time.Minute)
		defer stop()
		if err := m.WaitIdle(wctx); err != nil {
			t.Fatalf("WaitIdle: %v", err)
		}
	}
	idle()
	f()
	idle()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// appendTicks appends events of the given types for process pid, in batches of
// random sizes.
func appendTicks(t *testing.T, s *pmd.Store, rng *rand.Rand, pid string, types []string) {
	t.Helper()
	for len(types) > 0 {
		n := min(len(types), 1+rng.IntN(4))
		batch := make([]pmd.EventData, n)
		for i, typ := range types[:n] {
			batch[i] = pmd.EventData{Type: typ, Data: map[string]any{"p": pid, "k" + typ: rng.IntN(1000), "f": rng.Float64()}}
		}
		if _, err := s.Append(context.Background(), "Facts$"+pid, pmd.Any, batch...); err != nil {
			t.Fatal(err)
		}
		types = types[n:]
	}
}

// fullReplay folds the stream of pid from its first event, with no snapshot.
func fullReplay(t *testing.T, m *Manager, pid string) proc {
	t.Helper()
	p, _, _, err := m.replay(context.Background(), pid, nil)
	if err != nil {
		t.Fatalf("replay %s: %v", pid, err)
	}
	return p
}

// sameFold fails the test unless a and b hold the same state and ledger.
func sameFold(t *testing.T, what string, a, b proc) {
	t.Helper()
	if !reflect.DeepEqual(a.state(), b.state()) {
		t.Errorf("%s: state\n%#v\nwant (full replay)\n%#v", what, a.state(), b.state())
	}
	la, lb := a.ledger(), b.ledger()
	type view struct {
		Last, First     int64
		Issued          map[string]uint64
		Deadlines       []Deadline
		Commands, Fired int
		Links           int
		Linked          uint64
		Status          Status
	}
	see := func(l *ledger) view {
		issued := l.issued
		if issued == nil {
			issued = map[string]uint64{}
		}
		return view{l.last, l.first, issued, l.deadlines(), l.commands, l.fired, l.links, l.linked, l.status()}
	}
	if va, vb := see(la), see(lb); !reflect.DeepEqual(va, vb) {
		t.Errorf("%s: ledger\n%+v\nwant (full replay)\n%+v", what, va, vb)
	}
}

// TestFoldsAgree is the property the cache and the snapshots rest on: for random
// event sequences, random snapshot intervals and cache sizes, and restarts in between,
// the state kept in the cache, the state from the newest snapshot plus the events
// after it, and the state from a replay of the whole stream are the same.
func TestFoldsAgree(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 15))
			s := openTestStore(t, t.TempDir())
			var applied atomic.Int64
			opts := Options{
				Logger: quietLogger(), Workers: 1 + rng.IntN(4),
				CacheSize: []int{-1, 1, 2, 100}[rng.IntN(4)], SnapshotEvery: 1 + rng.IntN(7),
			}
			pids := []string{"a", "b", "c", "d"}[:1+rng.IntN(4)]
			var m *Manager
			var touched map[string]bool // by the last manager, whose cache is checked
			for round := range 3 {
				touched = map[string]bool{}
				var err error
				if m, err = New(s, tallyDef("1", &applied), opts); err != nil {
					t.Fatal(err)
				}
				runFor(t, m, func() {
					for range 3 + rng.IntN(6) {
						pid := pids[rng.IntN(len(pids))]
						touched[pid] = true
						types := make([]string, 1+rng.IntN(12))
						for i := range types {
							types[i] = tallyTypes[rng.IntN(len(tallyTypes))]
						}
						if round == 2 && rng.IntN(2) == 0 {
							types = append(types, "Stop")
						}
						appendTicks(t, s, rng, pid, types)
					}
				})
			}
			snapshots := 0
			for _, pid := range pids {
				if info, err := s.StreamInfo(m.name + "$" + pid); err != nil || !info.Exists {
					continue
				}
				want := fullReplay(t, m, pid)
				if e, ok := m.cache.take(pid); ok {
					sameFold(t, pid+" from the cache", e.p, want)
				} else if opts.CacheSize > len(pids) && touched[pid] {
					t.Errorf("%s is not in a cache of %d", pid, opts.CacheSize)
				}
				e, err := m.fold(context.Background(), pid)
				if err != nil {
					t.Fatal(err)
				}
				sameFold(t, pid+" from its snapshot", e.p, want)
				if e.snap >= 0 {
					snapshots++
				}
				if e.snap < 0 && want.ledger().last >= int64(opts.SnapshotEvery) {
					t.Errorf("%s: %d events and no snapshot, one every %d", pid, want.ledger().last+1, opts.SnapshotEvery)
				}
			}
			t.Logf("%d processes, %d with a snapshot; options %+v", len(pids), snapshots, opts)
		})
	}
}

// TestSnapshotsAreUsed proves a fold after a restart starts from the snapshot: Apply
// runs for the events after it only.
func TestSnapshotsAreUsed(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	var applied atomic.Int64
	opts := Options{Logger: quietLogger(), SnapshotEvery: 10}
	m, err := New(s, tallyDef("1", &applied), opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	runFor(t, m, func() { appendTicks(t, s, rng, "a", slices.Repeat([]string{"Tock"}, 25)) })
	// 25 links, and the deadline scheduled then cancelled at the third Tock.
	want := fullReplay(t, m, "a")
	if last := want.ledger().last; last != 26 {
		t.Fatalf("the stream ends at version %d, want 26", last)
	}
	m, err = New(s, tallyDef("1", &applied), opts)
	if err != nil {
		t.Fatal(err)
	}
	applied.Store(0)
	e, err := m.fold(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	// Where the snapshots fall depends on how the events were batched; the newest one is
	// less than SnapshotEvery events behind the end.
	if e.snap <= 26-int64(opts.SnapshotEvery) {
		t.Errorf("fold started from the snapshot at %d, want one after %d", e.snap, 26-opts.SnapshotEvery)
	}
	if applied.Load() != 26-e.snap {
		t.Errorf("fold from the snapshot at %d applied %d events, want %d", e.snap, applied.Load(), 26-e.snap)
	}
	sameFold(t, "snapshot", e.p, want)
}

// TestChangedDefinitionDoesNotTrustSnapshots: a definition with another Version or
// another state shape folds the whole stream, and agrees with a full replay.
func TestChangedDefinitionDoesNotTrustSnapshots(t *testing.T) {
	type wider struct {
		tally
		Extra int
	}
	var applied atomic.Int64
	widen := func(d Definition[tally]) Definition[wider] {
		return Definition[wider]{
			Name: d.Name, Version: d.Version, Handles: d.Handles, ProcessID: d.ProcessID,
			Init:   func(id string) wider { return wider{tally: d.Init(id)} },
			Apply:  func(s wider, e pmd.Event) wider { return wider{d.Apply(s.tally, e), s.Extra + 1} },
			Decide: func(s wider) []Command { return d.Decide(s.tally) },
		}
	}
	doubling := func(d Definition[tally]) Definition[tally] {
		apply := d.Apply
		d.Apply = func(s tally, e pmd.Event) tally { return apply(apply(s, e), e) }
		return d
	}
	for _, tc := range []struct {
		name    string
		trusted bool
		fold    func(t *testing.T, s *pmd.Store) (proc, proc, int64)
	}{
		{"same definition", true, func(t *testing.T, s *pmd.Store) (proc, proc, int64) {
			return foldTwice(t, s, tallyDef("1", &applied))
		}},
		{"new Version", false, func(t *testing.T, s *pmd.Store) (proc, proc, int64) {
			return foldTwice(t, s, doubling(tallyDef("2", &applied)))
		}},
		{"new state shape", false, func(t *testing.T, s *pmd.Store) (proc, proc, int64) {
			return foldTwice(t, s, widen(tallyDef("1", &applied)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t, t.TempDir())
			m, err := New(s, tallyDef("1", &applied), Options{Logger: quietLogger(), SnapshotEvery: 4})
			if err != nil {
				t.Fatal(err)
			}
			runFor(t, m, func() { appendTicks(t, s, rand.New(rand.NewPCG(3, 4)), "a", slices.Repeat([]string{"Tick"}, 12)) })
			got, want, snap := tc.fold(t, s)
			sameFold(t, tc.name, got, want)
			if trusted := snap >= 0; trusted != tc.trusted {
				t.Errorf("snapshot at %d trusted: %v, want %v", snap, trusted, tc.trusted)
			}
		})
	}
}

// foldTwice folds process "a" of def from its snapshot and from its whole stream, and
// says which version the snapshot used covers (-1 for none).
func foldTwice[S any](t *testing.T, s *pmd.Store, def Definition[S]) (proc, proc, int64) {
	t.Helper()
	m, err := New(s, def, Options{Logger: quietLogger(), SnapshotEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.fold(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	return e.p, fullReplay(t, m, "a"), e.snap
}

// TestStreamsWithoutSnapshots: processes written before snapshots existed (or with
// them off) fold from their streams, and get snapshots as they grow.
func TestStreamsWithoutSnapshots(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	var applied atomic.Int64
	rng := rand.New(rand.NewPCG(5, 6))
	m, err := New(s, tallyDef("1", &applied), Options{Logger: quietLogger(), SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	runFor(t, m, func() { appendTicks(t, s, rng, "a", slices.Repeat([]string{"Tick"}, 30)) })
	if info, _ := s.StreamInfo(snapshotStream("Tally", "a")); info.Exists {
		t.Fatal("snapshots written with SnapshotEvery -1")
	}
	m, err = New(s, tallyDef("1", &applied), Options{Logger: quietLogger(), SnapshotEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	runFor(t, m, func() { appendTicks(t, s, rng, "a", []string{"Tock"}) })
	e, err := m.fold(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if e.snap < 0 {
		t.Error("no snapshot after an event of a 30-event process")
	}
	sameFold(t, "after snapshots were turned on", e.p, fullReplay(t, m, "a"))
}

// opaque cannot be snapshotted: msgpack would drop its unexported field.
type opaque struct {
	n int
}

// TestUnencodableStatesAreCached: a state msgpack cannot carry gets no snapshot, and
// is still folded once and then kept in the cache.
func TestUnencodableStatesAreCached(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	var applied atomic.Int64
	def := Definition[opaque]{
		Name: "Opaque", Handles: []string{"Tick"}, ProcessID: DataField("p"),
		Init:   func(string) opaque { return opaque{} },
		Apply:  func(s opaque, e pmd.Event) opaque { applied.Add(1); s.n++; return s },
		Decide: func(opaque) []Command { return nil },
	}
	m, err := New(s, def, Options{Logger: quietLogger(), SnapshotEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	runFor(t, m, func() {
		for i := range 10 {
			appendTicks(t, s, rng, "a", []string{"Tick"})
			if err := m.WaitIdle(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := applied.Load(); n != int64(i+1) {
				t.Fatalf("after %d events Apply ran %d times: the state was not kept", i+1, n)
			}
		}
	})
	if info, _ := s.StreamInfo(snapshotStream("Opaque", "a")); info.Exists {
		t.Error("a snapshot of a state with an unexported field")
	}
	e, ok := m.cache.take("a")
	if !ok || e.p.state().(opaque).n != 10 {
		t.Errorf("cached: %v %+v, want n 10", ok, e)
	}
}

// TestCacheIsBounded: the cache keeps at most CacheSize processes, the last handled.
func TestCacheIsBounded(t *testing.T) {
	c := newCache(2)
	for _, pid := range []string{"a", "b", "c"} {
		c.put(&entry{pid: pid})
	}
	if _, ok := c.take("a"); ok {
		t.Error("a, used longest ago, is still cached")
	}
	for _, pid := range []string{"b", "c"} {
		if _, ok := c.take(pid); !ok {
			t.Errorf("%s is not cached", pid)
		}
	}
	off := newCache(-1)
	off.put(&entry{pid: "a"})
	if _, ok := off.take("a"); ok {
		t.Error("a cache of size -1 kept an entry")
	}
}

func TestEncodable(t *testing.T) {
	type inner struct{ At time.Time }
	type ok struct {
		A map[string][]inner
		B *inner
		C any
		D [2]uint8
	}
	type dropped struct {
		A int `msgpack:"-"`
	}
	type withFunc struct{ F func() }
	type withError struct{ E error }
	for _, tc := range []struct {
		t    reflect.Type
		want bool
	}{
		{reflect.TypeFor[ok](), true},
		{reflect.TypeFor[tally](), true},
		{reflect.TypeFor[int](), true},
		{reflect.TypeFor[opaque](), false},
		{reflect.TypeFor[dropped](), false},
		{reflect.TypeFor[withFunc](), false},
		{reflect.TypeFor[withError](), false},
		{reflect.TypeFor[chan int](), false},
	} {
		if reason := encodable(tc.t); (reason == "") != tc.want {
			t.Errorf("%s: encodable says %q, want encodable %v", tc.t, reason, tc.want)
		}
	}
}

func TestEncodeStateRoundTrips(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	s := tally{ID: "x", Seen: map[string]int{"Tick": 2}, Data: map[string]any{"n": int8(3), "s": "x"},
		Order: []string{"Tick"}, First: at, Last: &mark{Type: "Tick", At: at}}
	b, err := encodeState(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeState[tally](b)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("decodeState: %#v, %v; want %#v", back, err, s)
	}
	local := s
	local.First = at.In(time.FixedZone("X", 3600))
	if _, err := encodeState(local); !errors.Is(err, errUnencodable) {
		t.Errorf("a state holding a non-UTC time encoded: %v; want errUnencodable, as it comes back in UTC", err)
	}
	// msgpack would encode a state that holds itself until the stack overflowed, which
	// no recover catches: the program would end at the process's first snapshot.
	type link struct {
		Name string
		Next *link
	}
	loop := &link{Name: "a"}
	loop.Next = loop
	if _, err := encodeState(loop); !errors.Is(err, errUnencodable) || !strings.Contains(err.Error(), ".Next") {
		t.Errorf("a state holding itself: %v; want errUnencodable naming where", err)
	}
}

// TestProcessPage pages through a long process newest first: the pages hold the whole
// stream once, each event with the state a full replay has after it, and the state of
// the process comes from its newest snapshot.
func TestProcessPage(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	var applied atomic.Int64
	m, err := New(s, tallyDef("1", &applied), Options{Logger: quietLogger(), SnapshotEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	types := make([]string, 33)
	for i := range types {
		types[i] = tallyTypes[rng.IntN(2)]
	}
	runFor(t, m, func() { appendTicks(t, s, rng, "a", types) })
	ctx := context.Background()
	full, err := m.Process(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var read pagesRead
	before := int64(-1)
	for pages := 0; ; pages++ {
		page, err := m.ProcessPage(ctx, "a", before, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) > 7 || pages > len(full.Events) {
			t.Fatalf("page %d: %d events", pages, len(page.Events))
		}
		if !reflect.DeepEqual(page.State, full.State) || page.Version != full.Version || !reflect.DeepEqual(page.Commands, full.Commands) {
			t.Errorf("page %d: state %v version %d commands %v; want %v %d %v", pages, page.State, page.Version, page.Commands, full.State, full.Version, full.Commands)
		}
		if page.Snapshot == nil || page.Snapshot.Version < full.Version-4 {
			t.Errorf("page %d: snapshot %+v, want one at %d or later", pages, page.Snapshot, full.Version-4)
		}
		read.add(page)
		if page.Older < 0 {
			break
		}
		before = page.Older
	}
	read.check(t, full)
}

// pagesRead gathers the pages of a process read newest first, to be checked against the
// whole process as one replay shows it.
type pagesRead struct {
	events []pmd.Event
	states []any
}

// add puts page, older than those added so far, before them.
func (r *pagesRead) add(page Process) {
	r.events = append(slices.Clone(page.Events), r.events...)
	r.states = append(slices.Clone(page.States), r.states...)
}

// check fails t unless the pages hold full's events and states, each once, in order.
func (r *pagesRead) check(t *testing.T, full Process) {
	t.Helper()
	if !reflect.DeepEqual(r.events, full.Events) {
		t.Errorf("the pages hold %d events, the stream %d", len(r.events), len(full.Events))
	}
	if !reflect.DeepEqual(r.states, full.States) {
		t.Error("the states of the pages are not those of a full replay")
	}
}
