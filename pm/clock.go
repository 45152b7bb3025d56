package pm

import "time"

// Clock is the time source of a Manager: deadlines and delivery retries follow it. Tests
// use a clock they move by hand (pmtest.Clock) and need no sleeps.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
