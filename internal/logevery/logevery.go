package logevery

import "time"

// Interval is how often, at most, a Line is logged.
const Interval = time.Minute

// Line is when a repeating log line was last logged, and how many times it was held
// back since. The zero Line was never logged. It is not safe for concurrent use: its
// owner's lock guards it.
type Line struct {
	at   time.Time
	held uint64
}

// Log reports whether the line may be logged at now: it was never logged, or not in the
// Interval before now (a clock that stepped back since does not hold it back). If it may,
// held is how many times it was held back since it was last logged; if not, this time
// is counted as held back.
func (l *Line) Log(now time.Time) (held uint64, ok bool) {
	if !l.at.IsZero() && !now.Before(l.at) && now.Sub(l.at) < Interval {
		l.held++
		return 0, false
	}
	held = l.held
	*l = Line{at: now}
	return held, true
}
