package engine_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestRepair: a plan changes nothing; applied, it voids the damaged records of a sealed
// segment and of the tail and cuts a torn tail, keeping the removed bytes in the
// quarantine file, and removes the index; the store then opens and serves every other
// event at its position, and verifies clean.
func TestRepair(t *testing.T) {
	dir, events := makeStore(t, 60)
	segs := segments(t, dir)
	var tailFirst uint64
	if _, err := fmt.Sscanf(filepath.Base(segs[len(segs)-1]), "%d", &tailFirst); err != nil {
		t.Fatal(err)
	}
	// Events of one-event streams (Solo$2 and one in the tail): see TestRepairVersionGap.
	bad := []uint64{3, tailFirst + 1}
	for !strings.HasPrefix(events[bad[1]].Stream, "Solo$") {
		bad[1]++
	}
	var old [][]byte
	for _, p := range bad {
		flip(t, dir, p)
		_, _, b := entryAt(t, dir, p)
		old = append(old, b)
	}
	torn := []byte{0x50, 1, 2, 3}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn)
	f.Close()

	// The preview changes nothing.
	before := snapshot(t, dir)
	p, err := engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := p.Lines()
	if len(p.Actions) != 3 || len(lines) != 4 {
		t.Fatalf("plan %v", lines)
	}
	if p.Actions[0].Op != pmdlog.RepairCut || p.Actions[1].Position != bad[0] || p.Actions[2].Position != bad[1] {
		t.Fatalf("plan %v", lines)
	}
	for i, want := range []string{"cut 4 bytes", "replace position 3 ", "replace position ", "remove the index"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d %q, want it to start with %q", i, lines[i], want)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	unchanged(t, before, dir)

	p, err = engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := engine.DefaultQuarantine(dir, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if filepath.Base(q) != "quarantine-20250102T030405Z.bin" {
		t.Fatalf("quarantine file %s", q)
	}
	if err := p.Apply(q); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, engine.IndexDir)); !os.IsNotExist(err) {
		t.Fatalf("the index is still there: %v", err)
	}
	qb, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range append(old, torn) {
		if !bytes.Contains(qb, b) {
			t.Errorf("the quarantine file lacks the removed bytes %d", i)
		}
	}

	r := verify(t, dir)
	// The rewritten segment's offsets file is rebuilt by the next start, as is the index.
	if !r.OK() || r.Voids != 2 || len(r.Notes) != 2 || !strings.Contains(r.Notes[0], "no index") ||
		!strings.Contains(r.Notes[1], "no offsets file; the first read of the segment rebuilds them") {
		t.Fatalf("after the repair: %+v", r)
	}
	gone := map[uint64]bool{bad[0]: true, bad[1]: true}
	readBack(t, dir, events, gone)
	if r := verify(t, dir); !r.OK() || !r.Agrees || len(r.Notes) != 0 {
		t.Fatalf("after the repair and a start: %+v", r)
	}

	// Nothing is left to repair.
	p, err = engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Actions) != 0 || p.Lines() != nil {
		t.Fatalf("plan after the repair: %v", p.Lines())
	}
	before = snapshot(t, dir)
	if err := p.Apply(filepath.Join(dir, "q.bin")); err != nil {
		t.Fatal(err)
	}
	unchanged(t, before, dir)
}

// TestRepairVersionGap: a damaged event followed by more events of its stream leaves a
// gap in the stream's versions. Verify reports the damage, not the gap it explains; after
// a repair voids it, the store opens (rebuilding its index across the gap) and serves the
// other events.
func TestRepairVersionGap(t *testing.T) {
	dir, events := makeStore(t, 30)
	flip(t, dir, 1) // Order$0's first event
	r := verify(t, dir)
	if len(r.Damage) != 1 || r.Damage[0].Position != 1 || strings.Contains(strings.Join(r.Problems, "\n"), "the index derives") {
		t.Fatalf("report %+v, want the damage at position 1 and no version gap", r)
	}
	repairNow(t, dir)
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	readBack(t, dir, events, map[uint64]bool{1: true})
}

// repairNow plans the repair of the closed store in dir, applies it with the quarantine
// file pmd repair --yes would take now, and closes the plan.
func repairNow(t *testing.T, dir string) {
	t.Helper()
	p, err := engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Apply(engine.DefaultQuarantine(dir, time.Now())); err != nil {
		t.Fatal(err)
	}
}
