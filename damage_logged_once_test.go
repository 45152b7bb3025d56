package pmd_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestDamagedRecordIsLoggedOnce: a damaged record is logged once however it is found
// (the open's read of the tail, the replay into a rebuilt index, the background scrub),
// and counted once.
func TestDamagedRecordIsLoggedOnce(t *testing.T) {
	for _, where := range []string{"sealed segment", "tail segment", "sealed segment, index rebuilt", "tail segment, index rebuilt"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			const n = 300
			victim := 20 // in the first segment
			if strings.HasPrefix(where, "tail") {
				victim = n - 5
			}
			_, all := writeMarked(t, dir, n)
			s, logged, _ := reopenDamaged(t, dir, victim, strings.HasSuffix(where, "index rebuilt"))
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
