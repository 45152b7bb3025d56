package pm_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// model is the catering process manager written the simplest way: a map of orders
// updated in log order, with the clock stepping between batches of facts. A deadline
// falls between the facts stored before it and those stored after it.
type model struct {
	orders   map[string]*modelOrder
	commands map[string]map[string]int // by process, by command type
}

type modelOrder struct {
	seen      map[string]bool
	first     time.Time
	facts     int
	confirmed bool
	cancelled bool
}

func newModel() *model {
	return &model{orders: map[string]*modelOrder{}, commands: map[string]map[string]int{}}
}

func (m *model) issue(id, typ string) {
	if m.commands[id] == nil {
		m.commands[id] = map[string]int{}
	}
	m.commands[id][typ]++
}

// fact handles a fact the store wrote at ts: after the deadline of its order if that
// was due by then.
func (m *model) fact(id, typ string, ts time.Time) {
	o := m.orders[id]
	if o == nil {
		o = &modelOrder{seen: map[string]bool{}, first: ts}
		m.orders[id] = o
	}
	m.expire(id, o, ts)
	o.facts++
	o.seen[typ] = true
	if !o.confirmed && !o.cancelled && o.seen["CustomerConfirmedMenu"] && o.seen["CatererConfirmedMenu"] {
		o.confirmed = true
		m.issue(id, "ConfirmOrder")
	}
}

// tick expires the orders whose time is up when the clock reads now.
func (m *model) tick(now time.Time) {
	for id, o := range m.orders {
		m.expire(id, o, now)
	}
}

// expire cancels order o if it is open and its deadline is due at now.
func (m *model) expire(id string, o *modelOrder, now time.Time) {
	if !o.confirmed && !o.cancelled && !o.first.Add(timeout).After(now) {
		o.cancelled = true
		m.issue(id, "CancelOrder")
	}
}

func (m *model) counts() pm.Counts {
	var c pm.Counts
	for _, o := range m.orders {
		switch {
		case o.cancelled:
			c.Expired++
		case o.confirmed:
			c.Completed++
		default:
			c.Open++
		}
	}
	return c
}

// TestRuntimeMatchesModel appends random interleavings of facts over many processes,
// concurrently, moves the clock and restarts the manager at random points (sometimes
// losing its checkpoint, so that it handles every event again), and checks the store
// against the model and against pm.Memory fed the same events.
func TestRuntimeMatchesModel(t *testing.T) {
	seeds, processes := 8, 60
	if testing.Short() {
		seeds, processes = 3, 30
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			checkAgainstModel(t, uint64(seed), processes)
		})
	}
}

func checkAgainstModel(t *testing.T, seed uint64, processes int) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	begin := time.Now()
	clock := pmtest.NewClock(begin)
	def := matchDef("CateringMatch")
	mem, err := pm.NewMemory(def, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := newModel()
	opts := pm.Options{Clock: clock, Workers: 1 + rng.IntN(8), CheckpointEvery: 1 + rng.IntN(20)}
	r := start(t, s, def, opts)

	var facts []pmd.Event
	for p := range processes {
		id := fmt.Sprint(p)
		nCustomer, nCaterer := rng.IntN(3), rng.IntN(3)
		if nCustomer+nCaterer == 0 {
			nCustomer = 1
		}
		for range nCustomer {
			facts = append(facts, customer(id))
		}
		for range nCaterer {
			facts = append(facts, caterer(id))
		}
	}
	rng.Shuffle(len(facts), func(i, j int) { facts[i], facts[j] = facts[j], facts[i] })

	read := uint64(1) // next position of $all the model has not seen
	steps := []time.Duration{time.Hour, 24 * time.Hour, 47 * time.Hour, 49 * time.Hour}
	for len(facts) > 0 {
		batch := facts[:min(len(facts), 1+rng.IntN(10))]
		facts = facts[len(batch):]
		writers := 1 + rng.IntN(4)
		if clock.Now().Sub(begin) > timeout {
			// The clock is so far ahead of the store's timestamps that a new order's
			// deadline is due as soon as it is set. The runtime decides it on the facts
			// stored by then: a batch written in several appends would race it (a real
			// clock stores the later ones after the deadline, and they come after it).
			writers = 0
		}
		appendConcurrently(t, s, batch, writers)
		r.idle(t)
		for e, err := range s.ReadAll(ctx, pmd.ReadOptions{From: read, Types: def.Handles}) {
			if err != nil {
				t.Fatal(err)
			}
			read = e.Position + 1
			id, _ := def.ProcessID(e)
			want.fact(id, e.Type, e.Timestamp)
			if _, err := mem.Handle(e); err != nil {
				t.Fatal(err)
			}
		}
		// What fell due with the facts, by the clock, is done by now.
		want.tick(clock.Now())
		if _, err := mem.Advance(0); err != nil {
			t.Fatal(err)
		}
		switch x := rng.IntN(10); {
		case x < 3:
			d := steps[rng.IntN(len(steps))]
			clock.Advance(d)
			want.tick(clock.Now())
			if _, err := mem.Advance(d); err != nil {
				t.Fatal(err)
			}
			r.idle(t)
		case x < 4:
			r.stop(t)
			if rng.IntN(2) == 0 {
				if err := s.DeleteStream(ctx, "CateringMatch.checkpoint", pmd.Any); err != nil {
					t.Fatal(err)
				}
			}
			r = start(t, s, def, opts)
			r.idle(t)
		}
	}

	got := map[string]map[string]int{}
	for id, o := range want.orders {
		links, cmds := tally(t, processStream(t, s, "CateringMatch$"+id))
		if links != o.facts {
			t.Errorf("process %s: %d facts linked, want %d", id, links, o.facts)
		}
		if len(cmds) > 0 {
			got[id] = cmds
		}
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want.commands)) {
		t.Errorf("commands in the store:\n%v\nthe model:\n%v", sorted(got), sorted(want.commands))
	}
	memCmds := map[string]map[string]int{}
	for _, c := range mem.Commands() {
		if memCmds[c.ProcessID] == nil {
			memCmds[c.ProcessID] = map[string]int{}
		}
		memCmds[c.ProcessID][c.Type]++
	}
	if fmt.Sprint(sorted(memCmds)) != fmt.Sprint(sorted(want.commands)) {
		t.Errorf("commands of pm.Memory:\n%v\nthe model:\n%v", sorted(memCmds), sorted(want.commands))
	}
	if got, want := r.Counts(), want.counts(); got != want {
		t.Errorf("Counts() = %+v, the model says %+v", got, want)
	}
}

// sorted renders commands by process in process order, for comparison and messages.
func sorted(cmds map[string]map[string]int) []string {
	var out []string
	for id, byType := range cmds {
		out = append(out, fmt.Sprint(id, byType))
	}
	sort.Strings(out)
	return out
}

// appendConcurrently appends facts from writers goroutines, each to its own stream;
// writers 0 appends them all at once, in one write.
func appendConcurrently(t *testing.T, s *pmd.Store, facts []pmd.Event, writers int) {
	t.Helper()
	if writers == 0 {
		events := make([]pmd.EventData, len(facts))
		for i, f := range facts {
			events[i] = pmd.EventData{Type: f.Type, Data: f.Data}
		}
		if _, err := s.Append(context.Background(), "Writer$0", pmd.Any, events...); err != nil {
			t.Fatal(err)
		}
		return
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(facts); i += writers {
				f := facts[i]
				_, err := s.Append(context.Background(), fmt.Sprint("Writer$", w), pmd.Any, pmd.EventData{Type: f.Type, Data: f.Data})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
