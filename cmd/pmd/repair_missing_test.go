package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestRepairVoidsAMissingSegment: a sealed segment file missing from a store's log is
// damage pmd verify names as the run of positions it held; pmd repair previews a void
// record at each of them and, with --yes, writes them, after which pmd verify is clean
// and a second repair finds nothing to do.
func TestRepairVoidsAMissingSegment(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 4096, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 120 {
		if _, err := s.Append(ctx, fmt.Sprintf("Order$%d", i%5), pmd.Any,
			pmd.EventData{Type: "Placed", Data: map[string]any{"i": i, "pad": strings.Repeat("x", 40)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := damagetest.Segments(t, dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments, want 4 or more", len(segs))
	}
	if err := os.Remove(segs[2]); err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprintf("positions %d to %d", damagetest.First(t, segs[2]), damagetest.First(t, segs[3])-1)

	code, out, errOut := runPMD(t, ctx, "verify", dir)
	if code != exitFailed || !strings.Contains(out, "DAMAGE: "+segs[1]) || !strings.Contains(out, run) {
		t.Fatalf("verify: exit %d, want the damage of %s (%s):\n%s%s", code, segs[1], run, out, errOut)
	}
	code, out, errOut = runPMD(t, ctx, "repair", dir)
	if code != exitOK || !strings.Contains(out, "a repair would\n  replace "+run+" (segment "+segs[1]) ||
		!strings.Contains(out, "by void records") || !strings.Contains(out, "nothing changed") {
		t.Fatalf("repair preview: exit %d:\n%s%s", code, out, errOut)
	}
	q := filepath.Join(t.TempDir(), "q.bin")
	code, out, errOut = runPMD(t, ctx, "repair", dir, "--yes", "--quarantine", q)
	if code != exitOK || !strings.Contains(out, "repaired; the removed bytes are in "+q) {
		t.Fatalf("repair --yes: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runPMD(t, ctx, "verify", dir)
	if code != exitOK || !strings.Contains(out, "voided by a repair") || strings.Contains(out, "DAMAGE") {
		t.Fatalf("verify after the repair: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, _ = runPMD(t, ctx, "repair", dir)
	if code != exitOK || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("repair after the repair: exit %d:\n%s", code, out)
	}
}
