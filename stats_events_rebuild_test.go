package pmd_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestStatsEventsAfterAScavengeAndARebuild: Stats.Events counts an event's id entry,
// which a dead event keeps, after a scavenge too, and after the index is rebuilt from the
// scavenged log: the gone record the scavenge left in its place holds the id, which stays
// taken (docs/retention.md).
func TestStatsEventsAfterAScavengeAndARebuild(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quietLogger(), NoScrub: true, SegmentSize: 1024}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	mustAppend(t, s, "Dead$1", pmd.NoStream, ev("T"), ev("T"))
	if err := s.DeleteStream(ctx, "Dead$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	for range 10 { // seals the segment that holds the dead events, for the scavenge
		mustAppend(t, s, "Kept$1", pmd.Any, ev("T", "pad", strings.Repeat("x", 200)))
	}
	for _, step := range []struct {
		name   string
		do     func()
		events uint64
	}{
		{"dead", func() {}, 12},
		{"scavenged", func() {
			if r, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil || r.Gone != 2 {
				t.Fatalf("Scavenge = %+v, %v; want the 2 dead events gone", r, err)
			}
		}, 12},
		{"reopened", func() { s = reopenStore(t, s, dir, opts, false) }, 12},
		{"rebuilt", func() { s = reopenStore(t, s, dir, opts, true) }, 12},
	} {
		step.do()
		if got := countedStats(t, s); got.Events != step.events || got.Streams != 1 {
			t.Errorf("%s: Stats Events %d, Streams %d; want %d, 1", step.name, got.Events, got.Streams, step.events)
		}
	}
}

// reopenStore closes s and opens dir again, without its index if rebuild.
func reopenStore(t *testing.T, s *pmd.Store, dir string, opts pmd.Options, rebuild bool) *pmd.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if rebuild {
		if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
			t.Fatal(err)
		}
	}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// countedStats returns s.Stats() once its background count has finished.
func countedStats(t *testing.T, s *pmd.Store) pmd.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if st.Counted {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatal("Stats never counted the index")
		}
		runtime.Gosched()
	}
}
