package pm

import "time"

// SteppedSystemClock is the system clock reading wall for the time and looking at it
// again at least every step: for tests of a wall clock that steps.
func SteppedSystemClock(wall func() time.Time, step time.Duration) Clock {
	return systemClock{wall: wall, step: step}
}
