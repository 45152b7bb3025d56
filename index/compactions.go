package index

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// compactionGate is pebble's compaction scheduler for the index: pebble's own policy (as
// many compactions at once as the DB allows), except that none starts before the index
// has finished opening.
//
// pebble.Open waits for every compaction running at its end, and pebble's default
// scheduler grants them from the moment the DB registers, early in Open. A store closed
// after a heavy load leaves level 0 full, its first compaction takes seconds, and Open
// took as long (2.6 s for a 10M-event store, against 0.2–0.3 s for the next opens). With
// the gate, that compaction runs after Open, beside the store's first reads and writes.
type compactionGate struct {
	db   pebble.DBForCompaction // set by Register, before any other call
	poke chan struct{}          // wakes the granter
	stop chan struct{}          // closed by Unregister
	done chan struct{}          // closed when the granter has returned

	mu      sync.Mutex
	open    bool          // set by start: compactions may run
	closed  bool          // set by Unregister: none may start any more
	running int           // compactions granted, or being granted, and not done
	granted int           // compactions the DB took or is being asked to take, and not done
	ended   chan struct{} // closed, and replaced, when a compaction is done
}

func newCompactionGate() *compactionGate {
	return &compactionGate{poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), ended: make(chan struct{})}
}

var _ pebble.CompactionScheduler = (*compactionGate)(nil)

// Register is called by pebble.Open.
func (g *compactionGate) Register(_ int, db pebble.DBForCompaction) {
	g.db = db
	go g.granter()
}

// Unregister is called by the DB's Close: once it returns, nothing is granted.
func (g *compactionGate) Unregister() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	close(g.stop)
	<-g.done
}

// start lets compactions run: the index is open.
func (g *compactionGate) start() {
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
	g.wake()
}

// hold stops granting compactions until the next start (tests).
func (g *compactionGate) hold() {
	g.mu.Lock()
	g.open = false
	g.mu.Unlock()
}

// TrySchedule is the DB asking to start a compaction now.
func (g *compactionGate) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open || g.closed || g.db.GetAllowedWithoutPermission() <= g.running {
		return false, nil
	}
	g.running++
	g.granted++
	return true, g
}

// UpdateGetAllowedWithoutPermission is the DB saying it may allow more compactions.
func (g *compactionGate) UpdateGetAllowedWithoutPermission() { g.wake() }

// The grant handle: only Done matters here.
func (g *compactionGate) Started()                                          {}
func (g *compactionGate) MeasureCPU(pebble.CompactionGoroutineKind)         {}
func (g *compactionGate) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done is a granted compaction ending.
func (g *compactionGate) Done() {
	g.mu.Lock()
	g.running--
	g.granted--
	close(g.ended)
	g.ended = make(chan struct{})
	g.mu.Unlock()
	g.wake()
}

// activity says whether a compaction runs or waits to run, with a channel closed when
// the next one is done (the same channel until then). It counts only the compactions
// the DB took or is being asked to take (one waits): not a grant that found none waiting
// (running counts those too). A grant the DB refuses may look busy for a moment: Warm's
// waits look again every warmRecheck.
func (g *compactionGate) activity() (ended <-chan struct{}, busy bool) {
	waiting, _ := g.db.GetWaitingCompaction()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ended, waiting || g.granted > 0
}

func (g *compactionGate) wake() {
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// granter grants waiting compactions when woken, and every 100 ms: the DB does not ask
// again for a compaction it was refused (it waits to be granted one), so some one must
// look, as pebble's own scheduler does.
func (g *compactionGate) granter() {
	defer close(g.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-g.poke:
		case <-g.stop:
			return
		}
		g.grant()
	}
}

// grant starts waiting compactions while the DB allows more. Each is counted as running
// before the DB is asked to schedule it, so that a TrySchedule meanwhile cannot exceed
// what the DB allows.
func (g *compactionGate) grant() {
	for {
		g.mu.Lock()
		ok := g.open && !g.closed && g.db.GetAllowedWithoutPermission() > g.running
		if ok {
			g.running++
		}
		g.mu.Unlock()
		if !ok {
			return
		}
		waiting, _ := g.db.GetWaitingCompaction()
		if waiting {
			// Counted before the DB takes it: its Done can come before Schedule
			// returns, and activity must not find it at 0 meanwhile.
			g.mu.Lock()
			g.granted++
			g.mu.Unlock()
		}
		scheduled := waiting && g.db.Schedule(g)
		g.mu.Lock()
		if !scheduled {
			g.running--
			if waiting {
				g.granted--
			}
		}
		g.mu.Unlock()
		if !scheduled {
			return
		}
	}
}
