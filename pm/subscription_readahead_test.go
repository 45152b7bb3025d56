package pm_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/pm"
)

// TestSubscriptionReadAheadHoldsNoData: the events a subscription reads ahead of a
// parked one cost their ids and places, not their data, which every attempt reads again
// anyway: a receiver that is down, behind ReadAhead events of the largest size the API
// takes (16 MiB), must not cost gigabytes. The parked event, the one attempted, keeps
// what its attempt read: Status, which reads it again, shows it once its record is
// damaged too.
func TestSubscriptionReadAheadHoldsNoData(t *testing.T) {
	const events, size = 48, 1 << 20
	dir := t.TempDir()
	s := openStore(t, dir)
	blob := strings.Repeat("x", size)
	for i := range events {
		data := map[string]any{"n": i, "blob": blob, "mark": fmt.Sprintf("MARK-%03d-MARK", i)}
		if _, err := s.Append(context.Background(), "S$1", pmd.Any, pmd.EventData{Type: "Big", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	blob = ""
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.HeapAlloc

	sub := startSub(t, s, "slow", pm.Filter{Types: []string{"Big"}}, pm.SubscriptionOptions{MaxAttempts: 1,
		Deliver: func(context.Context, pmd.Event) error { return errors.New("receiver down") }})
	sub.idle(t) // the first event parked, every other one read ahead behind it

	runtime.GC()
	runtime.ReadMemStats(&m)
	// The parked event's data, and room for the runtime's noise: far below the
	// events*size the read-ahead held with its data.
	if held := int64(m.HeapAlloc) - int64(before); held > 8*size {
		t.Fatalf("the subscription holds %d MiB with %d events of 1 MiB read ahead, want at most 8 MiB", held>>20, events)
	}
	damagetest.FlipIn(t, dir, "MARK-000-MARK")
	st := sub.status(t)
	if len(st.Parked) != 1 || st.Parked[0].Event.Data["mark"] != "MARK-000-MARK" || len(st.Parked[0].Event.Data["blob"].(string)) != size {
		t.Fatalf("status %+v, want the first event parked with its data", st)
	}
	if _, err := s.Event(context.Background(), st.Parked[0].Event.ID); !errors.Is(err, pmd.ErrCorrupt) {
		t.Fatalf("reading the parked event: %v, want it damaged", err)
	}
}
