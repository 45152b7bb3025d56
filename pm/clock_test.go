package pm

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// steppedWall is a wall clock that a test steps forward: the real time plus an offset.
type steppedWall struct{ off atomic.Int64 }

func (w *steppedWall) now() time.Time { return time.Now().Add(time.Duration(w.off.Load())) }

// TestSystemClockFollowsAWallClockStep: a wait of the wall clock fires once the wall
// clock reads its time, also when the clock got there by a step forward (NTP, a resume
// from suspend) rather than by running: Go's timers follow the monotonic clock, which
// does not count a step or a suspend, so a deadline 48 hours ahead that a step made due
// must not wait another 48 hours.
func TestSystemClockFollowsAWallClockStep(t *testing.T) {
	for _, step := range []time.Duration{0, 10 * time.Millisecond} { // 0: wallStep
		w := &steppedWall{}
		var live atomic.Int64
		c := systemClock{wall: w.now, step: step, live: &live}
		due := c.Now().Round(0).Add(48 * time.Hour) // as a deadline read from the store: no monotonic reading
		fire := c.Until(due)
		select {
		case <-fire:
			t.Fatal("a wait 48h ahead fired at once")
		default:
		}
		w.off.Store(int64(48*time.Hour + time.Minute))
		select {
		case got := <-fire:
			if got.Before(due) {
				t.Fatalf("step %v: fired at %v, before %v", step, got, due)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("step %v: the wall clock stepped past the wait's time; it did not fire within 10s", step)
		}
		if n := live.Load(); n != 0 {
			t.Fatalf("step %v: %d timers armed after the wait fired, want 0", step, n)
		}
	}
}

// TestSystemClockWaitsReleaseTheirTimers: a wait of the wall clock holds one timer while
// it waits and none once it fired or was stopped, and no goroutine at all: the deadline
// timer and the delivery retries start a wait each time their next time changes and
// stop the one they no longer want.
func TestSystemClockWaitsReleaseTheirTimers(t *testing.T) {
	var live atomic.Int64
	c := systemClock{live: &live}
	goroutines := runtime.NumGoroutine()
	const waits = 10_000
	stops := make([]func(), 0, waits)
	for i := range waits {
		_, stop := wakeAt(c, c.Now().Add(48*time.Hour+time.Duration(i)))
		stops = append(stops, stop)
	}
	if n := live.Load(); n != waits {
		t.Fatalf("%d timers armed for %d waits", n, waits)
	}
	if n := runtime.NumGoroutine(); n > goroutines+10 {
		t.Fatalf("%d goroutines for %d waits, %d before", n, waits, goroutines)
	}
	for _, stop := range stops {
		stop()
		stop() // twice is once
	}
	if n := live.Load(); n != 0 {
		t.Fatalf("%d timers armed after every wait was stopped, want 0", n)
	}

	// Due already: it fires at once, with no timer.
	fire, stop := wakeAt(c, c.Now().Add(-time.Second))
	select {
	case <-fire:
	default:
		t.Fatal("a wait of a past time did not fire at once")
	}
	stop()
	if n := live.Load(); n != 0 {
		t.Fatalf("%d timers armed after a wait of the past, want 0", n)
	}

	// A short one fires on its own and then holds nothing; stopping it after does nothing.
	fire, stop = wakeAt(c, c.Now().Add(time.Millisecond))
	select {
	case <-fire:
	case <-time.After(10 * time.Second):
		t.Fatal("a wait 1ms ahead did not fire within 10s")
	}
	stop()
	if n := live.Load(); n != 0 {
		t.Fatalf("%d timers armed after a wait fired and was stopped, want 0", n)
	}
}

// TestSystemClockKeepsTheMonotonicReading: the runtime's own intervals (saving
// positions, rechecks, hang detection) are measured from the system clock's Now and must
// not follow wall-clock steps; only a retry's time is wall time
// (TestSubscriptionRetryAtIsWallTime), as a deadline read back from the store is.
func TestSystemClockKeepsTheMonotonicReading(t *testing.T) {
	if now := (systemClock{}).Now(); now == now.Round(0) {
		t.Fatal("the system clock's Now lost its monotonic reading: intervals would follow wall-clock steps")
	}
}
