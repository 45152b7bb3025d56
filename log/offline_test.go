package log

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestPlanRepairClean shows that a clean log, and an empty directory, plan nothing, and
// that applying an empty plan changes nothing.
func TestPlanRepairClean(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 500}
	l := mustOpen(t, dir, opts)
	writeBatches(t, l, nil, 4, 4, 4, 4, 4)
	mustClose(t, l)
	before := snapshot(t, dir)
	for _, d := range []string{dir, t.TempDir()} {
		p, err := PlanRepair(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Actions) != 0 {
			t.Fatalf("plan for a clean log: %v", p.Actions)
		}
		q := filepath.Join(t.TempDir(), "quarantine")
		if err := p.Apply(q); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(q); !os.IsNotExist(err) {
			t.Fatalf("an empty plan wrote a quarantine file: %v", err)
		}
	}
	if !reflect.DeepEqual(snapshot(t, dir), before) {
		t.Fatal("planning or applying nothing changed files")
	}
}

// TestRepairVoids damages records in sealed segments (a body bit, a header bit, a length
// prefix) and in the tail, and tears the last batch: PlanRepair lists every one, Apply
// replaces the damaged records by void records at their positions, cuts the torn batch,
// and quarantines the removed bytes; the log then opens clean with every other record
// unchanged.
func TestRepairVoids(t *testing.T) {
	opts := Options{NoSync: true, SegmentSize: 500}
	dir, want, damaged := damagedLog(t, opts)
	// A torn last batch, as a crash leaves it.
	l := mustOpen(t, dir, opts)
	if len(l.Damage()) != 1 {
		t.Fatalf("Damage = %v", l.Damage())
	}
	writeBatches(t, l, nil, 1)
	mustClose(t, l)
	path, off, n := entryAt(t, dir, uint64(len(want))+1)
	truncateFile(t, path, off+int64(n)-3)

	old := make(map[uint64][]byte)
	for _, pos := range damaged {
		path, off, _ := entryAt(t, dir, pos)
		b, _ := os.ReadFile(path)
		old[pos] = b[off : off+int64(len(encodedEntry(want[pos-1])))]
	}
	before := snapshot(t, dir)
	plan, err := PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snapshot(t, dir), before) {
		t.Fatal("PlanRepair changed files")
	}
	var voids []uint64
	cuts := 0
	for _, a := range plan.Actions {
		t.Log(a)
		switch a.Op {
		case RepairVoid:
			voids = append(voids, a.Position)
			path, off, _ := entryAt(t, dir, a.Position)
			n := len(encodedEntry(want[a.Position-1]))
			if a.Segment != path || a.Offset != off || a.Bytes != int64(n) || a.Reason == "" {
				t.Errorf("action %v, want segment %s offset %d, %d bytes", a, path, off, n)
			}
			contains(t, "description", a.String(), fmt.Sprintf("position %d", a.Position))
		case RepairCut:
			cuts++
			if a.Position != uint64(len(want))+1 {
				t.Errorf("cut %v, want the torn record at %d", a, len(want)+1)
			}
			contains(t, "description", a.String(), "cut")
		}
	}
	if !reflect.DeepEqual(voids, damaged) || cuts == 0 {
		t.Fatalf("plan voids %v and %d cuts, want voids %v and a cut", voids, cuts, damaged)
	}

	q := filepath.Join(t.TempDir(), "quarantine")
	if err := plan.Apply(q); err != nil {
		t.Fatal(err)
	}
	qb, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range damaged {
		if !bytes.Contains(qb, old[pos]) {
			t.Errorf("quarantine lacks the bytes of position %d", pos)
		}
		contains(t, "quarantine", string(qb), fmt.Sprintf("void segment=%s", filepath.Base(mustPath(t, dir, pos))))
	}
	if n := strings.Count(string(qb), "pmd-quarantine 1 "); n != len(plan.Actions) {
		t.Errorf("quarantine holds %d entries, want %d", n, len(plan.Actions))
	}

	for i := range want {
		for _, d := range damaged {
			if want[i].Position == d {
				want[i] = Record{Position: d, Kind: KindVoid, Commit: want[i].Commit}
			}
		}
	}
	l = mustOpen(t, dir, opts)
	if len(l.Damage()) != 0 || len(l.Repairs()) != 0 {
		t.Fatalf("after repair Open found damage %v, cut %v", l.Damage(), l.Repairs())
	}
	checkContent(t, l, want)
	if found, err := l.Scrub(context.Background(), nil); err != nil || len(found) != 0 {
		t.Fatalf("Scrub after repair: %v, %v", found, err)
	}
	want = writeBatches(t, l, want, 3)
	checkFiles(t, l)
	segs := l.Segments()
	mustClose(t, l)
	// Progress: once a segment, growing, ending at the log's size.
	var calls [][2]int64
	p, err := PlanRepair(dir, func(done, total int64) { calls = append(calls, [2]int64{done, total}) })
	if err != nil || len(p.Actions) != 0 {
		t.Fatalf("second plan: %v, %v", p, err)
	}
	var size int64
	for _, s := range segs {
		size += s.Size
	}
	if len(calls) != len(segs) || calls[len(calls)-1] != [2]int64{size, size} {
		t.Fatalf("progress %v over %d segments, want one call a segment ending at %d of %d", calls, len(segs), size, size)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] {
			t.Fatalf("progress went back: %v", calls)
		}
	}
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkContent(t, l, want)
}

func mustPath(t *testing.T, dir string, pos uint64) string {
	p, _, _ := entryAt(t, dir, pos)
	return p
}

// TestRepairApplyRefusesChangedLog shows that a plan is not applied to a log that was
// written after it was made.
func TestRepairApplyRefusesChangedLog(t *testing.T) {
	opts := Options{NoSync: true, SegmentSize: 500}
	dir, _, _ := damagedLog(t, opts)
	plan, err := PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := mustOpen(t, dir, opts)
	writeBatches(t, l, nil, 30)
	mustClose(t, l)
	before := snapshot(t, dir)
	err = plan.Apply(filepath.Join(t.TempDir(), "q"))
	contains(t, "error", errString(err), "plan again")
	if !reflect.DeepEqual(snapshot(t, dir), before) {
		t.Fatal("Apply changed files")
	}
}
