package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestRepairVoidsAMissingSealedSegment: a sealed segment file missing from the log hides
// its positions (the segment before it holds fewer records than the next one's name
// says), which the store's reads meet as one damaged run. The repair's preview names the
// run, and applied it writes a void record at each of its positions, after the records of
// the segment before it: pmd verify then finds nothing damaged, and the store serves
// every other event at its position.
func TestRepairVoidsAMissingSealedSegment(t *testing.T) {
	dir, events := makeStore(t, 300)
	l, err := pmdlog.Open(filepath.Join(dir, engine.LogDir), pmdlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(segs) < 5 {
		t.Fatalf("%d segments, want 5 or more", len(segs))
	}
	if err := os.Remove(segs[3].Path); err != nil {
		t.Fatal(err)
	}
	first, end := segs[3].First, segs[4].First

	before := snapshot(t, dir)
	p, err := engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatalf("PlanRepair: %v", err)
	}
	lines := p.Lines()
	if len(p.Actions) != 1 || len(lines) != 2 {
		t.Fatalf("plan %q, want the run voided and the index removed", lines)
	}
	if a := p.Actions[0]; a.Op != pmdlog.RepairVoid || a.Position != first || a.Records != int(end-first) || a.Segment != segs[2].Path || a.Bytes != 0 {
		t.Fatalf("action %+v, want positions %d to %d voided after %s", a, first, end-1, segs[2].Path)
	}
	contains := func(what, s, sub string) {
		t.Helper()
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
	contains("plan", lines[0], fmt.Sprintf("replace positions %d to %d", first, end-1))
	contains("plan", lines[0], "by void records")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	unchanged(t, before, dir)

	p, err = engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := engine.DefaultQuarantine(dir, time.Now())
	if err := p.Apply(q); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	qb, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	contains("quarantine", string(qb), fmt.Sprintf("void segment=%s offset=%d position=%d bytes=0 records=%d reason=",
		filepath.Base(segs[2].Path), segs[2].Size, first, end-first))

	r := verify(t, dir)
	if !r.OK() || r.Voids != int(end-first) || len(r.Damage) != 0 {
		t.Fatalf("after the repair: %+v", r)
	}
	gone := make(map[uint64]bool)
	for pos := first; pos < end; pos++ {
		gone[pos] = true
	}
	readBack(t, dir, events, gone)
	if r := verify(t, dir); !r.OK() || !r.Agrees || len(r.Notes) != 0 {
		t.Fatalf("after the repair and a start: %+v", r)
	}
}
