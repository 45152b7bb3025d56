package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestVerifyNotesAnOlderIndex: a data directory written by an older version, whose
// index the next start upgrades by rebuilding it from the log, verifies OK, the upgrade
// a note: it is no damage.
func TestVerifyNotesAnOlderIndex(t *testing.T) {
	for _, fixture := range []string{"index2", "format2"} {
		t.Run(fixture, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", fixture, "data"))); err != nil {
				t.Fatal(err)
			}
			r, err := engine.Verify(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() {
				t.Fatalf("problems %q, want none", r.Problems)
			}
			found := false
			for _, n := range r.Notes {
				found = found || strings.Contains(n, "the next start upgrades it, rebuilding it from the log")
			}
			if !found {
				t.Fatalf("notes %q: none says the next start upgrades the index", r.Notes)
			}
		})
	}
}

// TestVerifyNotesTheFormat2Upgrade: a data directory of format 2 verifies OK, with a
// note that the next start raises it to format 5, after which older releases refuse it
// (a rollback needs a copy taken before): no damage. TestOfflineToolsLeaveFormat2 checks
// that verify leaves FORMAT as it is.
func TestVerifyNotesTheFormat2Upgrade(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "format2", "data"))); err != nil {
		t.Fatal(err)
	}
	r, err := engine.Verify(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("problems %q, want none", r.Problems)
	}
	if r.Format != 2 {
		t.Fatalf("format %d, want 2", r.Format)
	}
	found := false
	for _, n := range r.Notes {
		found = found || strings.Contains(n, "data directory format 2: the next start raises it to format 5") &&
			strings.Contains(n, "releases of pmd that wrote format 2, 3 or 4 refuse")
	}
	if !found {
		t.Fatalf("notes %q: none says the next start raises format 2 to 5", r.Notes)
	}
}
