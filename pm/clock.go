package pm

import "time"

// Clock is the time source of a Manager: deadlines and delivery retries follow it. Tests
// use a clock they move by hand (pmtest.Clock) and need no sleeps.
type Clock interface {
	Now() time.Time
	// Until returns a channel that receives once the clock reads t or later. It takes a
	// time, not a duration, so that a clock moved between Now and Until loses no wake-up.
	Until(t time.Time) <-chan time.Time
}

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time                     { return time.Now() }
func (systemClock) Until(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }
