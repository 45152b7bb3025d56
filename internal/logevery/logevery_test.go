package logevery

import (
	"fmt"
	"strings"
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
	l.Log(now)
	l.Log(now)
	if held := l.Flush(); held != 2 {
		t.Fatalf("Flush = %d, want the 2 held back", held)
	}
	if held, ok := l.Log(now); !ok || held != 0 {
		t.Fatalf("Log after Flush = %d, %t; want logged at once", held, ok)
	}
}

// TestLines: each key is a Line of its own, so that one cause repeating does not hold
// back the first line of another; Flush reports what all held back and starts afresh.
// The keys are bounded: past MaxKeys a new key shares one Line with the others past it,
// after the keys that are due anyway (whatever they held back) were dropped.
func TestLines(t *testing.T) {
	now := time.Unix(1000, 0)
	var ls Lines
	for i, step := range []struct {
		after    time.Duration
		key      string
		wantLog  bool
		wantHeld uint64
	}{
		{0, "timeout", true, 0},
		{time.Second, "timeout", false, 0},
		{time.Second, "disk full", true, 0}, // another cause: logged at once
		{time.Second, "disk full", false, 0},
		{time.Second, "timeout", false, 0},
		{Interval, "timeout", true, 2},
		{time.Second, "disk full", true, 1},
	} {
		now = now.Add(step.after)
		held, ok := ls.Log(step.key, now)
		if ok != step.wantLog || held != step.wantHeld {
			t.Fatalf("step %d (%s): Log = %d, %t; want %d, %t", i, step.key, held, ok, step.wantHeld, step.wantLog)
		}
	}
	ls.Log("timeout", now)
	ls.Log("disk full", now)
	ls.Log("disk full", now)
	if held := ls.Flush(); held != 3 {
		t.Fatalf("Flush = %d, want the 3 held back", held)
	}
	if held, ok := ls.Log("timeout", now); !ok || held != 0 {
		t.Fatalf("Log after Flush = %d, %t; want logged at once", held, ok)
	}

	// Bounded: MaxKeys keys fill it; another new key shares the overflow Line.
	var b Lines
	for i := range MaxKeys {
		if _, ok := b.Log(fmt.Sprint("cause ", i), now); !ok {
			t.Fatalf("key %d not logged at once", i)
		}
	}
	if _, ok := b.Log("one more", now); !ok {
		t.Fatal("the first key past MaxKeys not logged")
	}
	if _, ok := b.Log("and another", now); ok {
		t.Fatal("a second key past MaxKeys within the minute logged: they share a Line")
	}
	if len(b.lines) > MaxKeys {
		t.Fatalf("%d keys kept, want at most %d", len(b.lines), MaxKeys)
	}
	// A minute on, the keys that are due are dropped for new ones.
	now = now.Add(Interval)
	if held, ok := b.Log("new cause", now); !ok || held != 0 {
		t.Fatalf("a new key once the others are due: Log = %d, %t; want logged", held, ok)
	}
	if _, ok := b.lines["new cause"]; !ok {
		t.Fatal("a new key once the others are due shares the overflow Line, want its own")
	}

	// Keys that held lines back and then never came again are dropped too, once due:
	// kept, they would take the places of new causes for good (a damaged record read
	// twice, never again), and each new cause would wait for the overflow Line.
	var c Lines
	for i := range MaxKeys {
		c.Log(fmt.Sprint("cause ", i), now)
		c.Log(fmt.Sprint("cause ", i), now)
	}
	now = now.Add(time.Hour)
	for _, key := range []string{"position 100", "position 200"} {
		now = now.Add(time.Second)
		if _, ok := c.Log(key, now); !ok {
			t.Fatalf("%s, a new cause an hour after the others: not logged", key)
		}
	}
}

// TestKey: numbers (positions, counts, file names) are not part of a cause.
func TestKey(t *testing.T) {
	a := Key("log: write positions 17-18: unavailable: write /d/00000000000000000017: no space left on device")
	b := Key("log: write positions 2-9: unavailable: write /d/00000000000000000001: no space left on device")
	if a != b {
		t.Errorf("Key differs by positions: %q, %q", a, b)
	}
	if c := Key("log: write positions 2-9: unavailable: write /d/1: input/output error"); c == a {
		t.Errorf("Key of another cause = %q, the same as %q", c, a)
	}
	if long := Key(strings.Repeat("x", 10*maxKeyLen)); len(long) > maxKeyLen {
		t.Errorf("Key is %d bytes long, want at most %d", len(long), maxKeyLen)
	}
}
