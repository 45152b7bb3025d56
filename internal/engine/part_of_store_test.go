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

// TestOpenRefusesAPartOfAStore: a store's log or index directory named as the data
// directory (pmd serve --data DIR/log), or a log directory moved out of its store, is
// refused by Open, saying which directory to name, and by HaveStore in the same words
// (pmd verify, repair and scavenge), with nothing made there: Open made a new, empty
// store in it and served that, at position 0, in the store's place, and one made in the
// index would have gone with the index at the store's next rebuild.
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

func TestOpenRefusesAPartOfAStore(t *testing.T) {
	opts := engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T, store string) string
		want string
	}{
		{"log directory", func(t *testing.T, store string) string {
			return filepath.Join(store, engine.LogDir)
		}, "is the log directory of the store in "},
		{"index directory", func(t *testing.T, store string) string {
			return filepath.Join(store, engine.IndexDir)
		}, "is the index directory of the store in "},
		{"log directory moved", func(t *testing.T, store string) string {
			moved := filepath.Join(t.TempDir(), "segments")
			if err := os.Rename(filepath.Join(store, engine.LogDir), moved); err != nil {
				t.Fatal(err)
			}
			return moved
		}, "holds log segments: it is a store's log directory (log/), not a data directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := t.TempDir()
			makeStoreIn(t, store)
			dir := tc.dir(t, store)
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
