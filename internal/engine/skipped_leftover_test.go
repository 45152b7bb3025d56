package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestLeftoverSkippedMarkerLoosensNoReplayFromTheStart: index.skipped speaks of the index
// on disk that a replay left; a replay from position 1 starts from none, so a marker
// still there (the index removed by pmd repair, by hand, or rebuilt at a start) says
// nothing about it. It was honoured all the same: that replay let any stream's version
// jump, and a log that disagrees with itself opened as if it were fine. It is removed
// instead, and a repair, which removes the index, removes it too.
func TestLeftoverSkippedMarkerLoosensNoReplayFromTheStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		marker bool
	}{
		{"no marker", false},
		{"a marker left over", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, func(s *pmd.Store) { appendTo(t, s, "X$1", 1) })
			opts := engine.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()}
			writeStrayVersion(t, dir, opts)
			if err := os.RemoveAll(filepath.Join(dir, engine.IndexDir)); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(dir, engine.SkippedFile)
			if tc.marker {
				if err := os.WriteFile(marker, nil, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			e, err := engine.Open(dir, opts)
			if err == nil {
				e.Close()
				t.Fatal("Open succeeded on a log that puts X$1 at version 5 after version 0")
			}
			var gap *engine.VersionGapError
			if !errors.As(err, &gap) || gap.Stream != "X$1" || gap.Record != 5 || gap.Derived != 1 {
				t.Errorf("Open: %v, want X$1's version 5 where the index derives 1", err)
			}
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there after a replay from position 1 (%v)", engine.SkippedFile, err)
			}
		})
	}
}

// TestRepairRemovesTheSkippedMarker: a repair removes the index, and with it the marker of
// a replay that skipped records: the next start replays from position 1.
func TestRepairRemovesTheSkippedMarker(t *testing.T) {
	dir, _ := makeStore(t, 30)
	flip(t, dir, 3)
	marker := filepath.Join(dir, engine.SkippedFile)
	if err := os.WriteFile(marker, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	repairNow(t, dir)
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there after a repair (%v)", engine.SkippedFile, err)
	}
	if _, err := os.Stat(filepath.Join(dir, engine.IndexDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the index is still there after a repair (%v)", err)
	}
}

// writeStrayVersion writes X$1's version 5 to the log of the store in dir, as no store
// would (X$1 is at 1): the index, which does not take it, disagrees with the log at
// the next replay.
func writeStrayVersion(t *testing.T, dir string, opts engine.Options) {
	t.Helper()
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true, Event: pmdlog.Event{ID: uuid.New(), Stream: "X$1", Version: 5, Type: "T"}}
	if err := e.Log.Write([]pmdlog.Record{r}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}
