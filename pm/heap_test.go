package pm

import (
	"testing"
	"time"
)

// A key set, removed and set again at the same time must not leave two live entries
// behind: repeated, that would grow the heap without bound and make every set pay for a
// full compaction.
func TestTimersSetRemoveSetKeepsOneEntry(t *testing.T) {
	tm := newTimers()
	at := time.Unix(100, 0)
	for range 1000 {
		tm.set("p", at)
		tm.remove("p")
		tm.set("p", at)
	}
	if n := len(tm.heap); n > 2*len(tm.due)+64 {
		t.Fatalf("heap holds %d entries for %d key(s)", n, len(tm.due))
	}
	key, ok := tm.pop(at)
	if !ok || key != "p" {
		t.Fatalf("pop = %q, %v; want p, true", key, ok)
	}
	if key, ok := tm.pop(at); ok {
		t.Fatalf("second pop = %q: the key fired twice", key)
	}
}

func TestTimersYieldInOrder(t *testing.T) {
	tm := newTimers()
	base := time.Unix(100, 0)
	tm.set("c", base.Add(3*time.Second))
	tm.set("a", base.Add(5*time.Second))
	tm.set("b", base.Add(time.Second))
	tm.set("a", base.Add(2*time.Second)) // moved earlier
	tm.set("d", base.Add(4*time.Second))
	tm.remove("d")
	var got []string
	for {
		key, ok := tm.pop(base.Add(time.Hour))
		if !ok {
			break
		}
		got = append(got, key)
	}
	want := []string{"b", "a", "c"}
	if len(got) != len(want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("popped %v, want %v", got, want)
		}
	}
}
