package engine_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestOpenOfAFile: a file named as the data directory is refused saying so, rather than
// "open FILE/LOCK: not a directory", and is left as it was.
func TestOpenOfAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	writeFile(t, path, "x\n")
	e, err := engine.Open(path, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true})
	if err == nil {
		e.Close()
		t.Fatal("Open of a file succeeded")
	}
	if want := "open " + path + ": it is a file, not a data directory"; !errors.Is(err, syscall.ENOTDIR) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open: %v; want ENOTDIR saying %q", err, want)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "x\n" {
		t.Fatalf("the file after the refused Open: %q, %v", b, err)
	}
}

// TestOpenBelowAFile: a data directory named below a file (FILE/sub, FILE/sub/deeper) is
// refused naming the file, matching ENOTDIR, rather than "open FILE/sub/LOCK: not a
// directory", and the file is left as it was.
func TestOpenBelowAFile(t *testing.T) {
	for _, below := range []string{"sub", filepath.Join("sub", "deeper")} {
		t.Run(below, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "data")
			writeFile(t, file, "x\n")
			dir := filepath.Join(file, below)
			e, err := engine.Open(dir, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true})
			if err == nil {
				e.Close()
				t.Fatal("Open below a file succeeded")
			}
			if want := "open " + dir + ": " + file + " is a file, not a directory"; !errors.Is(err, syscall.ENOTDIR) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open: %v; want ENOTDIR saying %q", err, want)
			}
			if b, err := os.ReadFile(file); err != nil || string(b) != "x\n" {
				t.Fatalf("the file after the refused Open: %q, %v", b, err)
			}
		})
	}
}

// TestOpenRefusesAPartOfAStore: a store's log or index directory named as the data
// directory (pmd serve --data DIR/log), or a log directory moved out of its store, is
// refused by Open, saying which directory to name, and by HaveStore in the same words
// (pmd verify, repair and scavenge), with nothing made there: Open made a new, empty
// store in it and served that, at position 0, in the store's place, and one made in the
// index would have gone with the index at the store's next rebuild. Only a parent that
// holds a store's files makes a directory named log or index part of it: an empty
// directory named index that its user made in a directory holding nothing else, or a log
// directory beside an index directory of no store, opens as a new store (want "").
func TestOpenRefusesAPartOfAStore(t *testing.T) {
	opts := engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
	mkdir := func(t *testing.T, path string) {
		t.Helper()
		if err := os.MkdirAll(path, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T, top string) string // the directory to open
		want string                                // what the refusal says; "" if it opens
	}{
		{"log directory", func(t *testing.T, top string) string {
			makeStoreIn(t, top)
			return filepath.Join(top, engine.LogDir)
		}, "is the log directory of the store in "},
		{"index directory", func(t *testing.T, top string) string {
			makeStoreIn(t, top)
			return filepath.Join(top, engine.IndexDir)
		}, "is the index directory of the store in "},
		{"log directory moved", func(t *testing.T, top string) string {
			makeStoreIn(t, top)
			moved := filepath.Join(t.TempDir(), "segments")
			if err := os.Rename(filepath.Join(top, engine.LogDir), moved); err != nil {
				t.Fatal(err)
			}
			return moved
		}, "holds log segments: it is a store's log directory (log/), not a data directory"},
		{"index directory of a store that lost its log", func(t *testing.T, top string) string {
			makeStoreIn(t, top)
			for _, name := range []string{engine.LogDir, engine.FormatFile} {
				if err := os.RemoveAll(filepath.Join(top, name)); err != nil {
					t.Fatal(err)
				}
			}
			return filepath.Join(top, engine.IndexDir)
		}, "is the index directory of the store in "},
		{"empty directory named index in an empty directory", func(t *testing.T, top string) string {
			dir := filepath.Join(top, engine.IndexDir)
			mkdir(t, dir)
			return dir
		}, ""},
		{"log beside an index directory of no store", func(t *testing.T, top string) string {
			mkdir(t, filepath.Join(top, engine.IndexDir, "photos"))
			return filepath.Join(top, engine.LogDir)
		}, ""},
		{"empty log beside an index directory of no store", func(t *testing.T, top string) string {
			mkdir(t, filepath.Join(top, engine.IndexDir))
			dir := filepath.Join(top, engine.LogDir)
			mkdir(t, dir)
			return dir
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t, t.TempDir())
			if tc.want == "" {
				e, err := engine.Open(dir, opts)
				if err != nil {
					t.Fatalf("Open of %s, no part of a store: %v; want a new store made there", dir, err)
				}
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				if err := engine.HaveStore(dir); err != nil {
					t.Errorf("HaveStore after Open made a store in %s: %v", dir, err)
				}
				return
			}
			before := listDir(t, dir)
			e, err := engine.Open(dir, opts)
			if err == nil {
				e.Close()
				t.Fatalf("Open of %s succeeded; want it refused", dir)
			}
			if !errors.Is(err, engine.ErrPartOfStore) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v; want ErrPartOfStore saying %q", err, tc.want)
			}
			if after := listDir(t, dir); !slices.Equal(after, before) {
				t.Errorf("the refused Open changed %s: %q, was %q", dir, after, before)
			}
			if err := engine.HaveStore(dir); !errors.Is(err, engine.ErrNoStore) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("HaveStore: %v; want ErrNoStore saying %q", err, tc.want)
			}
		})
	}
}
