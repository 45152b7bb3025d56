package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestStartAfterAKilledReplayThatSkippedRecords: a replay of the log into the index
// skips the records that hold no stream's version any more (a damaged record, the gone
// records of a scavenge) and lets the later events of their streams keep the versions
// they carry. A start killed during a long replay (a rebuild: systemd's start timeout)
// once the index had put part of it on disk, past the skipped records but before a
// later event of their stream, left an index the next start's replay, no longer seeing
// them, found disagreeing with the log ("puts stream X at version 3, the index derives
// 0"): that start failed, and so did every one after it. The next start now goes on
// from where the killed one stopped, and reads the stream as a replay from the start
// does. So does it when the killed start was upgrading a store of format 3, which it
// raises to 4 only once its replay is done: the marker names a position the index has
// not reached, so it is not the stale one a release of format 3 may leave
// (TestStaleSkippedMarkerOfAnUnraisedFormat).
func TestStartAfterAKilledReplayThatSkippedRecords(t *testing.T) {
	ctx := context.Background()
	for _, format := range []string{"", "3"} {
		for _, tc := range []struct {
			name  string
			store func(t *testing.T, dir string) // writes X's events around 40 of Y's, closed
		}{
			{"a damaged record", func(t *testing.T, dir string) {
				write(t, dir, func(s *pmd.Store) {
					appendTo(t, s, "X$1", 1)
					appendTo(t, s, "Y$1", 40)
					appendTo(t, s, "X$1", 1)
				})
				flip(t, dir, 1)
			}},
			{"records a scavenge removed", func(t *testing.T, dir string) {
				write(t, dir, func(s *pmd.Store) {
					if err := s.SetRetention(ctx, "X$1", pmd.Retention{MaxCount: 1}); err != nil {
						t.Fatal(err)
					}
					appendTo(t, s, "X$1", 3)
					appendTo(t, s, "Y$1", 40)
					appendTo(t, s, "X$1", 1)
					res, err := s.Scavenge(ctx, pmd.ScavengeOptions{})
					if err != nil || res.Gone != 3 {
						t.Fatalf("scavenge: %+v, %v; want X's first 3 events gone", res, err)
					}
				})
			}},
		} {
			name := tc.name
			if format != "" {
				name = "format " + format + ", " + name
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				tc.store(t, dir)
				if format != "" {
					writeFile(t, filepath.Join(dir, engine.FormatFile), "pmd data directory format "+format+"\n")
				}
				// The index is rebuilt from the log, and the start killed at position 20.
				if err := os.RemoveAll(filepath.Join(dir, engine.IndexDir)); err != nil {
					t.Fatal(err)
				}
				opts := engine.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()}
				_, err := engine.Open(dir, engine.WithStopReplay(opts, func(pos uint64) bool { return pos == 20 }))
				if !errors.Is(err, engine.ErrReplayStopped) {
					t.Fatalf("the killed start: %v", err)
				}
				if format != "" {
					if b, err := os.ReadFile(filepath.Join(dir, engine.FormatFile)); err != nil || string(b) != "pmd data directory format "+format+"\n" {
						t.Fatalf("FORMAT after the killed start: %q (%v), want format %s still", b, err, format)
					}
				}
				var logs bytes.Buffer
				opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				e, err := engine.Open(dir, opts)
				if err != nil {
					t.Fatalf("the start after it: %v", err)
				}
				last := e.Log.LastPosition()
				if got := e.Replayed(); got != last-20 {
					t.Errorf("the start after it replayed %d records, want the %d after position 20\n%s", got, last-20, logs.String())
				}
				st, err := e.Index.Stream("X$1")
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(dir, engine.SkippedFile)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is still there after a replay that finished (%v)", engine.SkippedFile, err)
				}
				// What a replay from the start derives.
				if err := os.RemoveAll(filepath.Join(dir, engine.IndexDir)); err != nil {
					t.Fatal(err)
				}
				e, err = engine.Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				want, err := e.Index.Stream("X$1")
				if err != nil {
					t.Fatal(err)
				}
				if st.Next != want.Next || strings.Contains(logs.String(), "disagrees") {
					t.Errorf("X$1's next version is %d, %d from a replay from the start; log:\n%s", st.Next, want.Next, logs.String())
				}
			})
		}
	}
}

// write opens the store in dir, runs f on it and closes it.
func write(t *testing.T, dir string, f func(s *pmd.Store)) {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	f(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// appendTo appends n events to stream, one write each.
func appendTo(t *testing.T, s *pmd.Store, stream string, n int) {
	t.Helper()
	for range n {
		if _, err := s.Append(context.Background(), stream, pmd.Any, pmd.EventData{Type: "T"}); err != nil {
			t.Fatal(err)
		}
	}
}
