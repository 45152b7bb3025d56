package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestStaleSkippedMarkerOfAnUnraisedFormat: an Open of this version killed before it
// raised format 3 to 5 may leave index.skipped; a release of format 3 that does not know
// the file then runs, indexes the log and writes, and leaves it. The next Open of this
// version heeded it: its replay let any stream's versions jump, so an index that
// disagrees with the log (here one that lacks S$1's first events below its position)
// was taken as it was, and those events were not read by their stream. The marker names
// the position its replay was to run to; one the index on disk has passed, before the
// raise, is stale: removed and not heeded, the disagreement has the index rebuilt. A
// marker whose replay the index has not passed (the Open was killed during it) is
// heeded still (TestStartAfterAKilledReplayThatSkippedRecords, "format 3").
func TestStaleSkippedMarkerOfAnUnraisedFormat(t *testing.T) {
	// An index at position held that knows nothing of S$1, beside a log whose S$1
	// events run from position 1 to past held.
	donor := t.TempDir()
	write(t, donor, func(s *pmd.Store) { appendTo(t, s, "Y$1", 2) })
	dir := t.TempDir()
	write(t, dir, func(s *pmd.Store) { appendTo(t, s, "S$1", 4) })
	if err := os.RemoveAll(filepath.Join(dir, engine.IndexDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(donor, engine.IndexDir), filepath.Join(dir, engine.IndexDir)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, engine.FormatFile), "pmd data directory format 3\n")
	opts := engine.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()}

	// The index's position, read by the offline reader, which writes nothing.
	verified := verify(t, dir)
	held := verified.Index
	if held == 0 || held >= verified.LastPosition {
		t.Fatalf("the index holds position %d, the log ends at %d; want an index below the log's end", held, verified.LastPosition)
	}
	// Written by a replay to held, the position the index holds now.
	marker := filepath.Join(dir, engine.SkippedFile)
	if err := os.WriteFile(marker, engine.SkippedMarker(held), 0o640); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale %s is still there (%v)", engine.SkippedFile, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, engine.FormatFile)); err != nil || string(b) != "pmd data directory format 5\n" {
		t.Errorf("FORMAT after the Open: %q (%v), want format 5", b, err)
	}

	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var versions []uint64
	for ev, err := range s.ReadStream(context.Background(), "S$1", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, ev.Version)
	}
	if len(versions) != 4 || versions[0] != 0 || versions[3] != 3 {
		t.Errorf("S$1 reads versions %v; want 0 to 3, every event of its log\n%s", versions, logs.String())
	}
}
