package index

import (
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// fakeDB is a DB with compactions waiting: it allows two at a time and records the ones
// it is granted. Each Schedule returns once the test says so on release, so the test can
// look at the gate while the granter is inside one.
type fakeDB struct {
	mu        sync.Mutex
	waiting   int
	scheduled chan pebble.CompactionGrantHandle
	release   chan struct{}
}

func (d *fakeDB) GetAllowedWithoutPermission() int { return 2 }

func (d *fakeDB) GetWaitingCompaction() (bool, pebble.WaitingCompaction) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waiting > 0, pebble.WaitingCompaction{}
}

func (d *fakeDB) Schedule(h pebble.CompactionGrantHandle) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiting == 0 {
		return false
	}
	d.waiting--
	d.mu.Unlock()
	d.scheduled <- h
	<-d.release
	d.mu.Lock()
	return true
}

// TestCompactionGate: nothing is granted before start, neither asked for (TrySchedule)
// nor waiting; after it, waiting compactions are granted up to what the DB allows, and
// more as they finish; after Unregister, nothing.
func TestCompactionGate(t *testing.T) {
	db := &fakeDB{waiting: 3, scheduled: make(chan pebble.CompactionGrantHandle), release: make(chan struct{})}
	g := newCompactionGate()
	g.Register(2, db)
	g.UpdateGetAllowedWithoutPermission() // wakes the granter: it must grant nothing yet
	if ok, _ := g.TrySchedule(); ok {
		t.Fatal("a compaction was granted before the index finished opening")
	}
	g.grant() // what the granter does when woken or on its tick
	select {
	case <-db.scheduled:
		t.Fatal("a waiting compaction was scheduled before the index finished opening")
	default:
	}

	g.start()
	first := <-db.scheduled
	db.release <- struct{}{}
	second := <-db.scheduled
	// The granter is inside the DB's Schedule of the second: it must count it already.
	if ok, _ := g.TrySchedule(); ok {
		t.Fatal("a third compaction was granted while the DB allows two")
	}
	db.release <- struct{}{}
	first.Done()
	third := <-db.scheduled
	db.release <- struct{}{}
	second.Done()
	third.Done()

	// Unregistered first: a compaction waiting before it would be granted by the wake of
	// third's Done, into a Schedule nobody receives from.
	g.Unregister()
	db.mu.Lock()
	db.waiting = 1
	db.mu.Unlock()
	if ok, _ := g.TrySchedule(); ok {
		t.Fatal("a compaction was granted after Unregister")
	}
	g.wake()
	select {
	case <-db.scheduled:
		t.Fatal("a waiting compaction was scheduled after Unregister")
	default:
	}
}
