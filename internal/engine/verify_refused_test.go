package engine_test

import (
	"os"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestVerifyOfALogOpenRefusesNamesTheRepair: a log the next start refuses (its first
// segment file missing) is a problem that names pmd repair, which plans past such
// refusals or says why it cannot; after the repair the store verifies clean. It said
// only that the next start fails, with no way out named.
func TestVerifyOfALogOpenRefusesNamesTheRepair(t *testing.T) {
	dir, _ := makeStore(t, 60)
	segs := segments(t, dir)
	if len(segs) < 2 {
		t.Fatalf("%d segments, want 2 or more", len(segs))
	}
	if err := os.Remove(segs[0]); err != nil {
		t.Fatal(err)
	}
	r, err := engine.Verify(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "pmd repair") {
		t.Fatalf("report %+v, want one problem naming pmd repair", r)
	}
	p, err := engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(dir + "-quarantine"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, dir); !r.OK() {
		t.Fatalf("after the repair: %+v", r)
	}
}
