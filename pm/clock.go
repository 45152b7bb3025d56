package pm

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source of a Manager: deadlines and delivery retries follow it. Tests
// use a clock they move by hand (pmtest.Clock) and need no sleeps.
type Clock interface {
	Now() time.Time
	// Until returns a channel that receives once the clock reads t or later. It takes a
	// time, not a duration, so that a clock moved between Now and Until loses no wake-up.
	Until(t time.Time) <-chan time.Time
}

// wallStep is how long, at most, a wait of the system clock sleeps before it reads the
// clock again.
const wallStep = time.Second

// systemClock is the wall clock. Its waits fire once Now reads their time, however it got
// there: Go's timers follow the monotonic clock, which a step of the wall clock (NTP, a
// resume from suspend, a paused VM) does not move, so a wait never sleeps longer than
// wallStep without reading the clock again. A deadline a step made due fires within
// wallStep.
type systemClock struct {
	wall func() time.Time // nil: time.Now; tests step it
	step time.Duration    // 0: wallStep; tests shorten it
	live *atomic.Int64    // if set (tests), counts the waits whose timer is armed
}

func (c systemClock) Now() time.Time {
	if c.wall != nil {
		return c.wall()
	}
	return time.Now()
}

// Until fires once Now reads t. A wait no longer wanted goes on reading the clock every
// wallStep until then: the package's own waits use wakeAt, which can stop them.
func (c systemClock) Until(t time.Time) <-chan time.Time { return c.wait(t).c }

// wakeAt is clock.Until(t) with a stop that releases the wait (the system clock's timer)
// once the caller no longer waits on it. stop may be called more than once, and after
// the wait fired.
func wakeAt(clock Clock, t time.Time) (<-chan time.Time, func()) {
	if c, ok := clock.(systemClock); ok {
		w := c.wait(t)
		return w.c, w.stop
	}
	return clock.Until(t), func() {}
}

// wallWait is a wait of the system clock: one timer, armed for the time left or wallStep,
// whichever is shorter, that reads the clock again when it fires.
type wallWait struct {
	clock systemClock
	at    time.Time
	c     chan time.Time // receives once

	mu    sync.Mutex
	timer *time.Timer
	done  bool // fired or stopped: the timer is not armed
}

func (c systemClock) wait(t time.Time) *wallWait {
	w := &wallWait{clock: c, at: t, c: make(chan time.Time, 1)}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.check()
	return w
}

// check fires w if the clock reads its time, or arms its timer to look again. Call with
// mu held.
func (w *wallWait) check() {
	if w.done {
		return
	}
	now := w.clock.Now()
	if !now.Before(w.at) {
		w.finish()
		w.c <- now
		return
	}
	step := w.clock.step
	if step <= 0 {
		step = wallStep
	}
	left := min(w.at.Sub(now), step)
	if w.timer == nil {
		if w.clock.live != nil {
			w.clock.live.Add(1)
		}
		w.timer = time.AfterFunc(left, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.check()
		})
		return
	}
	w.timer.Reset(left)
}

// finish marks w done and releases its timer. Call with mu held.
func (w *wallWait) finish() {
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
		if w.clock.live != nil {
			w.clock.live.Add(-1)
		}
	}
}

func (w *wallWait) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.finish()
	}
}
