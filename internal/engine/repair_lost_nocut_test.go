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
)

// TestRepairWithoutACutBelowTheIndex: a log that ends at a record boundary below the
// position the index held on disk (its last segment cut short) lost synced records, even
// where its repair writes only void records elsewhere (a damaged record in a sealed
// segment, a missing first segment) and cuts nothing. The repair removes the index, so it
// leaves index.rebuild naming the loss: the next start fills those positions with void
// records and reports it. It noted the loss only for a plan that cut the log, so the
// next writes took the acknowledged positions again. The loss says that a store with
// syncing off may have lost them to a power cut.
func TestRepairWithoutACutBelowTheIndex(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"damaged record in a sealed segment", func(t *testing.T, dir string) { flip(t, dir, 3) }},
		{"first segment missing", func(t *testing.T, dir string) {
			segs := segments(t, dir)
			if err := os.Remove(segs[0]); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(segs[0] + ".idx"); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}},
		{"none (nothing to repair: the start finds the loss)", func(t *testing.T, dir string) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, events := makeStore(t, 60)
			var last uint64
			for p := range events {
				last = max(last, p)
			}
			path, off, _ := entryAt(t, dir, last-2)
			if err := os.Truncate(path, off); err != nil { // the log ends at position last-3
				t.Fatal(err)
			}
			tc.damage(t, dir)
			p, err := engine.PlanRepair(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Join(p.Lines(), "\n")
			fill := fmt.Sprintf("fill positions %d to ", last-2)
			if len(p.Actions) > 0 && (!strings.Contains(lines, fill) || !strings.Contains(lines, "with syncing off, a power cut explains it")) {
				t.Errorf("the plan says\n%s\nwant it to say %q..., and that syncing off explains it", lines, fill)
			}
			if err := p.Apply(filepath.Join(t.TempDir(), "q")); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := pmd.Open(dir, pmd.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			lost := fmt.Sprintf("the synced records from position %d to ", last-2)
			probs := strings.Join(s.Problems(), "\n")
			if !strings.Contains(probs, lost) {
				t.Errorf("problems %q, want the loss from position %d reported", s.Problems(), last-2)
			}
			if len(p.Actions) > 0 && !strings.Contains(probs, "with syncing off, a power cut explains it") {
				t.Errorf("problems %q, want the loss to say that syncing off explains it", s.Problems())
			}
			res, err := s.Append(context.Background(), "X-1", pmd.Any, pmd.EventData{Type: "T"})
			if err != nil {
				t.Fatal(err)
			}
			if res.FirstPosition <= last {
				t.Errorf("the next append took position %d, which the index held on disk (up to at least %d); problems %q",
					res.FirstPosition, last, s.Problems())
			}
		})
	}
}
