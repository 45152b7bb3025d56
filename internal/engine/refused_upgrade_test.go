package engine_test

import (
	"bytes"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestRefusedUpgradeKeepsFormat: an Open of a format 2, 3 or 4 directory refused after it
// read STORE_ID (an index.rebuild it cannot read, a log that refuses to open, a start
// stopped in its rebuild of the index once it had put part of it on disk, the same after it
// quarantined and cut a log that lost records the index held and filled their positions
// with void records) leaves FORMAT byte for byte as it was: nothing such an Open writes
// is unreadable to the release that wrote the directory, and it raises FORMAT to 5, which
// that release refuses, only last. What it left reads as that format (Verify, this version's
// reader of every format, finds it and the whole log, with no gone record), its log's
// segments byte for byte as they were but where it handled a loss. Once the cause is
// gone, the next Open upgrades the directory to format 5 and reads it whole.
func TestRefusedUpgradeKeepsFormat(t *testing.T) {
	opts := engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
	fixture := filepath.Join("..", "..", "testdata", "format2", "data")
	stopped := engine.WithStopReplay(opts, func(uint64) bool { return true })
	for _, format := range []string{"2", "3", "4"} {
		for _, tc := range []struct {
			name   string
			break_ func(t *testing.T, dir string) (opts engine.Options, mend func())
		}{
			{"index.rebuild unreadable", func(t *testing.T, dir string) (engine.Options, func()) {
				marker := filepath.Join(dir, engine.RebuildFile)
				if err := os.Mkdir(marker, 0o750); err != nil {
					t.Fatal(err)
				}
				return opts, func() { remove(t, marker) }
			}},
			{"log refuses to open", func(t *testing.T, dir string) (engine.Options, func()) {
				// The first segment starting at 2: the segments before it are missing.
				segs := segments(t, dir)
				moved := filepath.Join(dir, engine.LogDir, "00000000000000000002")
				if err := os.Rename(segs[0], moved); err != nil {
					t.Fatal(err)
				}
				return opts, func() {
					if err := os.Rename(moved, segs[0]); err != nil {
						t.Fatal(err)
					}
				}
			}},
			{"rebuild stopped", func(t *testing.T, dir string) (engine.Options, func()) {
				if err := os.RemoveAll(filepath.Join(dir, engine.IndexDir)); err != nil {
					t.Fatal(err)
				}
				return stopped, func() {}
			}},
			{"replay stopped after the log lost records", func(t *testing.T, dir string) (engine.Options, func()) {
				// The log's last entry torn: the index on disk holds it.
				segs := segments(t, dir)
				fi, err := os.Stat(segs[len(segs)-1])
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(segs[len(segs)-1], fi.Size()-3); err != nil {
					t.Fatal(err)
				}
				return stopped, func() {
					if format == "2" {
						return // its index, of layout 1, was rebuilt: it held nothing
					}
					// The refused Open wrote what a loss needs before it stopped.
					if q, _ := filepath.Glob(filepath.Join(dir, "quarantine-*")); len(q) != 1 {
						t.Errorf("quarantine directories %q, want one", q)
					}
					if b, err := os.ReadFile(filepath.Join(dir, engine.RebuildFile)); err != nil || !bytes.HasPrefix(b, []byte("lost records up to position ")) {
						t.Errorf("%s: %q (%v), want the lost records marker", engine.RebuildFile, b, err)
					}
				}
			}},
		} {
			t.Run("format "+format+", "+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				copyFixture(t, fixture, dir)
				if format != "2" {
					// As a release of format 3 or 4 leaves it: the index in today's layout,
					// flushed at the log's end.
					e, err := engine.Open(dir, opts)
					if err != nil {
						t.Fatal(err)
					}
					if err := e.Close(); err != nil {
						t.Fatal(err)
					}
				}
				formatFile := filepath.Join(dir, engine.FormatFile)
				writeFile(t, formatFile, "pmd data directory format "+format+"\n")
				before, err := os.ReadFile(formatFile)
				if err != nil {
					t.Fatal(err)
				}
				logBefore := segmentBytes(t, dir)
				refusing, mend := tc.break_(t, dir)
				if e, err := engine.Open(dir, refusing); err == nil {
					e.Close()
					t.Fatal("Open succeeded; want it refused")
				}
				if after, err := os.ReadFile(formatFile); err != nil || !bytes.Equal(after, before) {
					t.Fatalf("FORMAT after the refused Open: %q (%v), was %q", after, err, before)
				}

				mend()
				// What the refused Open left reads as the format it says: this version's
				// offline reader finds that format and the log whole, and the log is the
				// one the release of that format wrote, byte for byte, but where the
				// Open handled a loss (a cut and void records, which it reads).
				r := verify(t, dir)
				if want, _ := strconv.Atoi(format); r.Format != want || r.LastPosition < 80 || r.Gone != 0 {
					t.Errorf("verify after the refused Open: format %d, log to %d, %d gone records; want format %d, the fixture's records, no gone record",
						r.Format, r.LastPosition, r.Gone, want)
				}
				if tc.name != "replay stopped after the log lost records" {
					if logAfter := segmentBytes(t, dir); !maps.Equal(logAfter, logBefore) {
						t.Errorf("the refused Open changed the log's segments")
					}
				}
				e, err := engine.Open(dir, opts)
				if err != nil {
					t.Fatalf("Open once the cause is gone: %v", err)
				}
				defer e.Close()
				if got, err := os.ReadFile(formatFile); err != nil || string(got) != "pmd data directory format 5\n" {
					t.Fatalf("FORMAT after the Open: %q (%v), want format 5", got, err)
				}
				if last := e.Log.LastPosition(); last < 80 || e.Index.Position() != last {
					t.Fatalf("the log ends at %d, the index at %d; want the fixture's 85 records (less a torn one) indexed",
						last, e.Index.Position())
				}
			})
		}
	}
}

// segmentBytes returns the bytes of each of the log's segment files, by path.
func segmentBytes(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	for _, path := range segments(t, dir) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m[path] = string(b)
	}
	return m
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
