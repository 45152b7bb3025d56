package pm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A key set, removed and set again at the same time must not leave two live entries
// behind: repeated, that would grow the heap without bound and make every set pay for a
// full compaction.
func TestTimersSetRemoveSetKeepsOneEntry(t *testing.T) {
	tm := newTimers(strings.Compare)
	at := time.Unix(100, 0)
	for range 1000 {
		tm.set("p", at)
		tm.remove("p")
		tm.set("p", at)
	}
	if n := len(tm.heap.entries); n > 2*len(tm.due)+64 {
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
	tm := newTimers(strings.Compare)
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

// The dispatcher's timers are keyed by an item's id and count, not by a string built
// from them and parsed back: two copies of one event are two keys, and keys due at the
// same time come out in the order of their comparison.
func TestTimersStructKeys(t *testing.T) {
	tm := newTimers(deliveryRef.compare)
	at := time.Unix(100, 0)
	id := uuid.MustParse("00000000-0000-0000-0000-000000000002")
	other := uuid.MustParse("00000000-0000-0000-0000-000000000001")
	tm.set(deliveryRef{id, 10}, at)
	tm.set(deliveryRef{id, 9}, at)
	tm.set(deliveryRef{other, 11}, at)
	tm.set(deliveryRef{id, 12}, at.Add(time.Second))
	tm.remove(deliveryRef{id, 12})
	var got []deliveryRef
	for {
		key, ok := tm.pop(at.Add(time.Hour))
		if !ok {
			break
		}
		got = append(got, key)
	}
	want := []deliveryRef{{other, 11}, {id, 9}, {id, 10}}
	if !slices.Equal(got, want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
}
