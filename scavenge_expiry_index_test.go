package pmd

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestScavengeRemovesTheEventsItsExpiryKills: the retention record a scavenge writes for
// the events past a stream's max age makes them dead in the index, and the scavenge reads
// the dead marks from the index; the applier answers the record before it indexes it. The
// scavenge must wait for the index to hold its own records, else the expired events stay
// on the disk until the next scavenge (a day later, as pmd serve schedules them). Here the
// applier is held after answering the expiry until the scavenge either waits for the index
// (it is then let go) or finishes without waiting.
func TestScavengeRemovesTheEventsItsExpiryKills(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{NoSync: true, NoScrub: true, SegmentSize: 4096, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := holdIndex(s)
	pad := strings.Repeat("x", 500)
	for i, stream := range []string{"S$a", "S$a", "S$a", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad"} {
		if _, err := s.Append(ctx, stream, Any, EventData{Type: "T", Data: map[string]any{"i": i, "pad": pad}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetRetention(ctx, "S$a", Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.visible(ctx); err != nil {
		t.Fatal(err)
	}
	h.armed.Store(true) // the expiry the scavenge records
	res, err := h.scavenge(ctx, s)
	// S$a's versions 0 and 1 go; version 2, its newest, stays for its version, without data.
	if err != nil || res.Expired != 1 || res.Gone != 2 || res.DeadKept != 1 || res.Erased != 0 {
		t.Fatalf("Scavenge = %+v, %v; want S$a's 3 expired events removed by the scavenge that recorded their expiry (2 gone, the newest kept without its data, none erased)", res, err)
	}
}
