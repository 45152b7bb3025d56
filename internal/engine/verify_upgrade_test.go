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
