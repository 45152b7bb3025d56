package engine_test

import (
	"os"
	"slices"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// The damage the scrub finds is reported even when a segment it cannot read (a bad
// sector: here a link to a directory in the file's place) makes it fail: it was dropped, so a
// flipped record stayed out of /healthz for as long as that segment could not be read.
func TestScrubReportsDamageDespiteAnUnreadableSegment(t *testing.T) {
	dir, _ := makeStore(t, 60)
	segs := segments(t, dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments, want 4 or more", len(segs))
	}
	flip(t, dir, 3)
	if err := os.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), segs[1]); err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(dir, engine.Options{SegmentSize: segmentSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	<-e.Scrubbed()
	if !slices.ContainsFunc(e.Damage(), func(ce *pmdlog.CorruptError) bool { return ce.Position == 3 }) {
		t.Errorf("Damage() = %v, want position 3's", e.Damage())
	}
}
