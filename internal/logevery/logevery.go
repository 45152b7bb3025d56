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

// Flush returns how many times the line was held back since it was last logged, and
// forgets it: the next one is logged at once. It is for the end of a run of failures
// ("resumed"), which reports what the run left out.
func (l *Line) Flush() (held uint64) {
	held = l.held
	*l = Line{}
	return held
}

// MaxKeys bounds the keys a Lines keeps.
const MaxKeys = 32

// maxKeyLen bounds the length of a Key.
const maxKeyLen = 256

// Lines is a Line per key (a cause: an error's class or its text, Key), for a line whose
// causes differ: one cause repeating (a slow read timing out) does not hold back the
// first line of another (a full disk), and each line's count of those held back is of
// its own cause. At most MaxKeys keys are kept: a new key when they are all taken
// first drops those that may be logged again anyway (the Interval since they were is
// over), with the count they held back (their cause may never come again: kept, it
// would hold its place for good); if none is, the new keys share one Line. The zero Lines is ready for use. It is not safe for
// concurrent use: its owner's lock guards it.
type Lines struct {
	lines map[string]*Line
	other Line // the keys past MaxKeys
}

// Log is Line.Log for the line of key.
func (ls *Lines) Log(key string, now time.Time) (held uint64, ok bool) {
	l, found := ls.lines[key]
	if !found {
		if ls.lines == nil {
			ls.lines = make(map[string]*Line)
		}
		if len(ls.lines) >= MaxKeys {
			for k, l := range ls.lines {
				if now.Before(l.at) || now.Sub(l.at) >= Interval {
					delete(ls.lines, k)
				}
			}
		}
		if len(ls.lines) >= MaxKeys {
			return ls.other.Log(now)
		}
		l = new(Line)
		ls.lines[key] = l
	}
	return l.Log(now)
}

// Flush returns how many times a line of any key was held back since it was last
// logged, and forgets every key: the next line of each is logged at once. It is for
// the end of a run of failures ("resumed"), which reports what the run left out.
func (ls *Lines) Flush() (held uint64) {
	for _, l := range ls.lines {
		held += l.held
	}
	held += ls.other.held
	*ls = Lines{}
	return held
}

// Key is msg as the key of its cause: without its digits (positions, counts, file
// names, addresses' ports), at most 256 bytes long.
func Key(msg string) string {
	b := make([]byte, 0, min(len(msg), maxKeyLen))
	for i := 0; i < len(msg) && len(b) < maxKeyLen; i++ {
		if c := msg[i]; c < '0' || c > '9' {
			b = append(b, c)
		}
	}
	return string(b)
}
