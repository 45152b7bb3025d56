package pmd_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestDamagedRecordIsLoggedOnce: a damaged record is logged once however it is found
// (the open's read of the tail, the replay into a rebuilt index, the background scrub),
// and counted once.
func TestDamagedRecordIsLoggedOnce(t *testing.T) {
	for _, where := range []string{"sealed segment", "tail segment", "sealed segment, index rebuilt", "tail segment, index rebuilt"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			opts := pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 16 << 10}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			const n = 300
			victim := 20 // in the first segment
			if strings.HasPrefix(where, "tail") {
				victim = n - 5
			}
			for i := range n {
				mustAppend(t, s, fmt.Sprintf("Order$%d", i%3), pmd.Any,
					ev("E", "pad", strings.Repeat("p", 150), "mark", fmt.Sprintf("MARKER-%04d-MARKER", i)))
			}
			all := readAll(t, s, pmd.ReadOptions{})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			damagetest.FlipIn(t, dir, fmt.Sprintf("MARKER-%04d-MARKER", victim))
			if strings.HasSuffix(where, "index rebuilt") {
				if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
					t.Fatal(err)
				}
			}

			var logged lockedBuffer
			opts.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			s, err = pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			waitScrub(t, s)
			pos := fmt.Sprintf("position=%d", all[victim].Position)
			var lines []string
			for l := range strings.Lines(logged.String()) {
				if strings.Contains(l, pos) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("%d log lines name the damaged record's %s, want 1:\n%s", len(lines), pos, strings.Join(lines, ""))
			}
			if got := s.Stats().DamagedRecords; got != 1 {
				t.Fatalf("Stats().DamagedRecords = %d, want 1", got)
			}
		})
	}
}
