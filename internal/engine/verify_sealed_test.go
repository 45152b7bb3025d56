package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestVerifySealedSegmentDamageOpens: damage in a sealed segment that hides a run of
// positions (here: the segment after it is missing, so it holds fewer records than the
// names say) is damage, but not one that stops the next start: Open reads no sealed
// segment. The report names the segment and the run of positions the damage hides, once
// (the index built before it went missing disagrees with the log there, which the damage
// explains), and does not say that the next start fails.
func TestVerifySealedSegmentDamageOpens(t *testing.T) {
	dir, _ := makeStore(t, 300)
	logDir := filepath.Join(dir, engine.LogDir)
	l, err := pmdlog.Open(logDir, pmdlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(segs[3].Path); err != nil {
		t.Fatal(err)
	}
	r, err := engine.Verify(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Damage) != 1 || len(r.Problems) != 2 || !strings.Contains(r.Problems[1], "damaged log records it covers can explain it") {
		t.Fatalf("damage %v, problems %q, want the damaged segment's and the index's", r.Damage, r.Problems)
	}
	p := r.Problems[0]
	// The segment before the missing one names every position the missing one held.
	run := fmt.Sprintf("positions %d to %d", segs[3].First, segs[4].First-1)
	for _, want := range []string{segs[2].Path, run} {
		if !strings.Contains(p, want) {
			t.Errorf("problem %q does not contain %q", p, want)
		}
	}
	if strings.Contains(p, "next start fails") {
		t.Errorf("problem %q says the next start fails", p)
	}
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatalf("the store must open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
