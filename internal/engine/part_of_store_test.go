package engine_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestOpenRefusesAPartOfAStore: a store's log or index directory named as the data
// directory (pmd serve --data DIR/log), or a log directory moved out of its store, is
// refused by Open, saying which directory to name, and by HaveStore in the same words
// (pmd verify, repair and scavenge), with nothing made there: Open made a new, empty
// store in it and served that, at position 0, in the store's place, and one made in the
// index would have gone with the index at the store's next rebuild.
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
