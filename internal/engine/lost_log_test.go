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
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestLostLogIsRefused: a data directory without FORMAT whose log lost every segment
// (its log directory empty, gone, or a file) but that holds what a store leaves beside
// it (format 1's index.ckpt, STORE_ID, the index) is a store that lost its log: Open
// refuses it with a *LostLogError naming what is missing and what was found, matching
// log.ErrCorrupt (damage), and changes nothing; HaveStore takes it for a store, so the
// offline tools look; Verify reports it as damage; PlanRepair lists it as damage a repair
// does not change. Open made a new, empty store there, removing index.ckpt.
func TestLostLogIsRefused(t *testing.T) {
	fixture := filepath.Join("..", "..", "testdata", "format1", "data")
	for _, tc := range []struct {
		name  string
		make  func(t *testing.T, dir string)
		found []string
	}{
		{"format 1, log empty", func(t *testing.T, dir string) {
			copyFixture(t, fixture, dir)
			for _, s := range segments(t, dir) {
				if err := os.Remove(s); err != nil {
					t.Fatal(err)
				}
			}
		}, []string{"index.ckpt"}},
		{"format 1, log gone", func(t *testing.T, dir string) {
			copyFixture(t, fixture, dir)
			if err := os.RemoveAll(filepath.Join(dir, engine.LogDir)); err != nil {
				t.Fatal(err)
			}
		}, []string{"index.ckpt"}},
		{"format 1, log a file", func(t *testing.T, dir string) {
			copyFixture(t, fixture, dir)
			if err := os.RemoveAll(filepath.Join(dir, engine.LogDir)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, engine.LogDir), nil, 0o640); err != nil {
				t.Fatal(err)
			}
		}, []string{"index.ckpt"}},
		{"FORMAT and log gone", func(t *testing.T, dir string) {
			makeStoreIn(t, dir)
			for _, name := range []string{engine.FormatFile, engine.LogDir} {
				if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}, []string{engine.StoreIDFile, engine.IndexDir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.make(t, dir)
			before := listDir(t, dir)

			_, err := engine.Open(dir, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true})
			var le *engine.LostLogError
			if !errors.As(err, &le) || !errors.Is(err, pmdlog.ErrCorrupt) {
				t.Fatalf("Open: %v; want a *LostLogError matching log.ErrCorrupt", err)
			}
			if !slices.Equal(le.Found, tc.found) {
				t.Errorf("Found %q, want %q", le.Found, tc.found)
			}
			for _, want := range append([]string{filepath.Join(dir, engine.LogDir), "restore"}, tc.found...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open: %v; want it to name %q", err, want)
				}
			}
			if after := listDir(t, dir); !slices.Equal(after, before) {
				t.Errorf("the refused Open changed the directory: %q, was %q", after, before)
			}

			if err := engine.HaveStore(dir); err != nil {
				t.Errorf("HaveStore: %v; want nil, a store that lost its log", err)
			}
			r, err := engine.Verify(t.Context(), dir, nil)
			if err != nil {
				t.Fatalf("Verify: %v; want a report of the damage", err)
			}
			if r.OK() || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], le.Error()) {
				t.Errorf("Verify's problems %q, want one: %q", r.Problems, le.Error())
			}
			p, err := engine.PlanRepair(dir, nil)
			if err != nil {
				t.Fatalf("PlanRepair: %v; want a plan listing the damage it leaves", err)
			}
			defer p.Close()
			if len(p.Actions) != 0 || len(p.Unrepaired) != 1 || !strings.Contains(p.Unrepaired[0], le.Error()) {
				t.Errorf("plan: actions %v, unrepaired %q; want no action and the lost log unrepaired", p.Actions, p.Unrepaired)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if after := listDir(t, dir); !slices.Equal(after, before) {
				t.Errorf("the offline tools changed the directory: %q, was %q", after, before)
			}
		})
	}
}

// copyFixture copies the fixture's data directory src into dir.
func copyFixture(t *testing.T, src, dir string) {
	t.Helper()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// makeStoreIn makes a store of a few events in dir.
func makeStoreIn(t *testing.T, dir string) {
	t.Helper()
	appendEvents(t, dir, 0, 5)
}

// listDir lists the names in dir, with those of its directories' entries under them.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
