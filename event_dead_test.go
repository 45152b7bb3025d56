package pmd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestEventWithDead: EventOptions.Dead finds an event no stream shows (its stream
// deleted, or hidden by retention and the retention cleared), which Event does not;
// after a scavenge removed its record, with a live or a rebuilt index, it reads as its
// id and position, Erased. CausedSeqWith refuses it.
func TestEventWithDead(t *testing.T) {
	ctx := context.Background()
	opts := pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 2048, Logger: quietLogger()}
	dir := t.TempDir()
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	deleted, hidden, live := ev("T", "k", "deleted"), ev("T", "k", "hidden"), ev("T", "k", "live")
	delPos := mustAppend(t, s, "D$1", pmd.NoStream, deleted).FirstPosition
	hidPos := mustAppend(t, s, "H$1", pmd.NoStream, hidden).FirstPosition
	mustAppend(t, s, "H$1", pmd.Any, ev("T"))
	livePos := mustAppend(t, s, "L$1", pmd.NoStream, live).FirstPosition
	if err := s.DeleteStream(ctx, "D$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention(ctx, "H$1", pmd.Retention{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention(ctx, "H$1", pmd.Retention{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		e    pmd.EventData
		pos  uint64
		dead bool
	}{
		{"deleted", deleted, delPos, true},
		{"hidden", hidden, hidPos, true},
		{"live", live, livePos, false},
	}
	check := func(when string, scavenged bool) {
		t.Helper()
		for _, c := range cases {
			if _, err := s.Event(ctx, c.e.ID); c.dead != errors.Is(err, pmd.ErrEventNotFound) {
				t.Errorf("%s: Event of the %s event: %v", when, c.name, err)
			}
			got, err := s.EventWith(ctx, c.e.ID, pmd.EventOptions{Dead: true})
			if err != nil {
				t.Errorf("%s: EventWith Dead of the %s event: %v", when, c.name, err)
				continue
			}
			if got.ID != c.e.ID || got.Position != c.pos {
				t.Errorf("%s: EventWith Dead of the %s event = %+v, want id %s at %d", when, c.name, got, c.e.ID, c.pos)
			}
			if gone := scavenged && c.dead; got.Erased != gone || !gone && got.Data["k"] != c.e.Data["k"] {
				t.Errorf("%s: EventWith Dead of the %s event = %+v, want erased %t, else its data", when, c.name, got, gone)
			}
		}
		if _, err := s.EventWith(ctx, ev("T").ID, pmd.EventOptions{Dead: true}); !errors.Is(err, pmd.ErrEventNotFound) {
			t.Errorf("%s: EventWith Dead of an id never written: %v, want event_not_found", when, err)
		}
		for _, err := range s.CausedSeqWith(ctx, live.ID, pmd.EventOptions{Dead: true}) {
			if !errors.Is(err, pmd.ErrInvalidArgument) {
				t.Errorf("%s: CausedSeqWith Dead: %v, want invalid_argument", when, err)
			}
		}
	}
	check("dead", false)
	for range 60 { // seals the segments that hold them, for the scavenge
		mustAppend(t, s, "P$1", pmd.Any, ev("T"))
	}
	if res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil || res.Gone != 2 {
		t.Fatalf("Scavenge = %+v, %v; want the 2 dead events gone", res, err)
	}
	check("scavenged", true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	if s, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	check("rebuilt index", true)
}
