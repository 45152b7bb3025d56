package engine_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestRepairKeepsTheIntactRecordsPastFramingDamage: a sealed segment without its offsets
// file whose framing breaks at one damaged length prefix hides the rest of its positions
// from the store's reads (pmd verify names the run), but the records past the damage are
// intact. The repair's preview says how many of the run's records it keeps and how many
// positions it voids; applied, it keeps every intact record at its position (the one
// whose length prefix alone was damaged too). Where that record's bytes are damaged as
// well, no record after it can be framed from a known entry start: every position from
// it is voided, the preview saying how many records that look intact it voids
// unconfirmed. pmd verify is then clean and the store serves every other event.
func TestRepairKeepsTheIntactRecordsPastFramingDamage(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bodyDamage bool // the damaged entry's record is damaged too
	}{
		{"length prefix", false},
		{"length prefix and record", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, events := makeStore(t, 300)
			l, err := pmdlog.Open(filepath.Join(dir, engine.LogDir), pmdlog.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			segs := l.Segments()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if len(segs) < 4 {
				t.Fatalf("%d segments, want 4 or more", len(segs))
			}
			seg := segs[2]
			bad, end := seg.First+2, segs[3].First
			if err := os.Remove(filepath.Join(filepath.Dir(seg.Path), "offsets", filepath.Base(seg.Path)+".offsets")); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			_, off, _ := entryAt(t, dir, bad)
			if tc.bodyDamage {
				flip(t, dir, bad)
			}
			swallowNext(t, seg.Path, off)

			r := verify(t, dir)
			run := fmt.Sprintf("positions %d to %d", bad, end-1)
			if r.OK() || len(r.Damage) != 1 || !strings.Contains(strings.Join(r.Problems, "\n"), run) {
				t.Fatalf("verify: %q, want the damage of %s", r.Problems, run)
			}

			p, err := engine.PlanRepair(dir, nil)
			if err != nil {
				t.Fatalf("PlanRepair: %v", err)
			}
			voids, unconfirmed := 0, 0
			if tc.bodyDamage {
				voids, unconfirmed = int(end-bad), int(end-bad)-1
			}
			lines := p.Lines()
			a := p.Actions[0]
			if len(p.Actions) != 1 || a.Op != pmdlog.RepairVoid || a.Position != bad || a.Records != voids || a.Kept != int(end-bad)-voids || a.Unconfirmed != unconfirmed {
				t.Fatalf("plan %q, want positions %d to %d with %d voided", lines, bad, end-1, voids)
			}
			wants := []string{fmt.Sprintf("%d void record(s)", voids)}
			if voids == 0 {
				wants = append(wants, fmt.Sprintf("%d intact record(s) kept", int(end-bad)))
			} else {
				wants = append(wants, fmt.Sprintf("%d record(s) that look intact", unconfirmed))
			}
			for _, want := range wants {
				if !strings.Contains(lines[0], want) {
					t.Errorf("plan %q does not say %q", lines[0], want)
				}
			}
			if err := p.Apply(engine.DefaultQuarantine(dir, time.Now())); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			r = verify(t, dir)
			if !r.OK() || r.Voids != voids || len(r.Damage) != 0 {
				t.Fatalf("after the repair: %+v", r)
			}
			gone := make(map[uint64]bool)
			for p := bad; p < bad+uint64(voids); p++ {
				gone[p] = true
			}
			readBack(t, dir, events, gone)
		})
	}
}

// swallowNext rewrites the length prefix of the entry at off in the segment file path
// so that it takes in the next entry as well.
func swallowNext(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, k := binary.Uvarint(b[off:])
	next := off + int64(k) + int64(n)
	n2, k2 := binary.Uvarint(b[next:])
	if k <= 0 || k2 <= 0 {
		t.Fatalf("%s: no two entries at offset %d", path, off)
	}
	out := binary.AppendUvarint(slices.Clip(b[:off]), n+uint64(k2)+n2)
	out = append(out, b[off+int64(k):]...)
	if err := os.WriteFile(path, out, 0o640); err != nil {
		t.Fatal(err)
	}
}
