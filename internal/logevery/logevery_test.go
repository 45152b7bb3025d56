package logevery

import (
	"testing"
	"time"
)

// TestLine: a line repeated within Interval of the last one logged is held back and
// counted; the next one logged says how many were held back. A clock that stepped back
// does not hold it back.
func TestLine(t *testing.T) {
	now := time.Unix(1000, 0)
	var l Line
	for i, step := range []struct {
		after    time.Duration
		wantLog  bool
		wantHeld uint64
	}{
		{0, true, 0}, // never logged
		{0, false, 0},
		{10 * time.Second, false, 0},
		{49 * time.Second, false, 0},
		{time.Second, true, 3}, // Interval after the last line
		{Interval - time.Nanosecond, false, 0},
		{-time.Hour, true, 1}, // the clock stepped back
		{time.Second, false, 0},
		{Interval, true, 1},
	} {
		now = now.Add(step.after)
		held, ok := l.Log(now)
		if ok != step.wantLog || held != step.wantHeld {
			t.Fatalf("step %d, at %v: Log = %d, %t; want %d, %t", i, now.Unix(), held, ok, step.wantHeld, step.wantLog)
		}
	}
}
