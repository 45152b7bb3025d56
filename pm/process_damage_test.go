package pm_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// markedDef is a definition whose process issues the command Ack with the key k<n> at
// its n-th event, its data marked "OWN-<process>-<n>-OWN": a record of the runtime's
// own a test can damage.
func markedDef() pm.Definition[int] {
	return goDef("Marked", func(n int) []pm.Command {
		var out []pm.Command
		for i := 1; i <= n; i++ {
			out = append(out, pm.Command{Type: "Ack", Key: fmt.Sprintf("k%d", i),
				Data: map[string]any{"pad": pad, "mark": fmt.Sprintf("OWN-%d-OWN", i)}})
		}
		return out
	})
}

// TestProcessViewPassesOverADamagedRecordOfItsOwn: Process and ProcessPage answer for a
// process whose stream holds a damaged record of the runtime's own (a command): the
// record is passed over, its version listed in Damaged, and the damage logged once.
// Both used to fail, so the process could not be looked at until a repair, though the
// store's problems name the record and Run stops on it (the operator needs the view).
func TestProcessViewPassesOverADamagedRecordOfItsOwn(t *testing.T) {
	for _, tc := range []struct{ snapshotEvery, victim int }{{-1, 2}, {4, 2}, {4, 1}} {
		t.Run(fmt.Sprintf("SnapshotEvery %d, command %d", tc.snapshotEvery, tc.victim), func(t *testing.T) {
			viewDamaged(t, tc.snapshotEvery, tc.victim)
		})
	}
}

// viewDamaged is TestProcessViewPassesOverADamagedRecordOfItsOwn with snapshots every
// snapshotEvery events (one covers the damaged record, which its ledger lists as
// issued) and the record of the victim-th command damaged (the first is the record
// that says whether the stream was erased since a snapshot).
func viewDamaged(t *testing.T, snapshotEvery, victim int) {
	ctx := context.Background()
	s := damagedStore(t, func(s *pmd.Store) {
		r := start(t, s, markedDef(), pm.Options{SnapshotEvery: snapshotEvery})
		for range 3 {
			appendFact(t, s, goFact("1"))
			r.idle(t)
		}
		r.stop(t)
		sealWithNoise(t, s)
	}, fmt.Sprintf("OWN-%d-OWN", victim))
	var logs lockedLog
	m, err := pm.New(s, markedDef(), pm.Options{Logger: logs.logger(), SnapshotEvery: snapshotEvery})
	if err != nil {
		t.Fatal(err)
	}
	// Versions: 0 link, 1 k1, 2 link, 3 k2, 4 link, 5 k3.
	damaged := uint64(2*victim - 1)
	var intact []uint64
	for v := range uint64(6) {
		if v != damaged {
			intact = append(intact, v)
		}
	}
	versions := func(events []pmd.Event) []uint64 {
		var out []uint64
		for _, e := range events {
			out = append(out, e.Version)
		}
		return out
	}
	v, err := m.Process(ctx, "1")
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if got, want := versions(v.Events), intact; !slices.Equal(got, want) || !slices.Equal(v.Damaged, []int64{int64(damaged)}) ||
		len(v.States) != len(v.Events) || v.Version != 5 {
		t.Errorf("Process: events %v, damaged %v, %d states, version %d; want events %v, damaged [%d], a state each, version 5",
			got, v.Damaged, len(v.States), v.Version, want, damaged)
	}
	for _, o := range []pm.PageOptions{{}, {PageBytes: 1 << 20}} {
		v, err = m.ProcessPage(ctx, "1", -1, 100, o)
		if err != nil {
			t.Fatalf("ProcessPage %+v: %v", o, err)
		}
		if got, want := versions(v.Events), intact; !slices.Equal(got, want) || !slices.Equal(v.Damaged, []int64{int64(damaged)}) ||
			len(v.Commands) != 2 {
			t.Errorf("ProcessPage %+v: events %v, damaged %v, %d commands; want events %v, damaged [%d], the 2 intact commands",
				o, got, v.Damaged, len(v.Commands), want, damaged)
		}
	}
	// Pages that end at the damaged record, or around it.
	for _, pg := range []struct {
		before int64
		limit  int
		want   []uint64
	}{{4, 1, nil}, {4, 2, []uint64{2}}, {5, 3, []uint64{2, 4}}} {
		if victim != 2 {
			break
		}
		v, err = m.ProcessPage(ctx, "1", pg.before, pg.limit, pm.PageOptions{PageBytes: 1 << 20})
		if err != nil {
			t.Fatalf("ProcessPage before %d: %v", pg.before, err)
		}
		if got := versions(v.Events); !slices.Equal(got, pg.want) || !slices.Contains(v.Damaged, int64(damaged)) {
			t.Errorf("ProcessPage before %d, limit %d: events %v, damaged %v; want %v and 3 damaged", pg.before, pg.limit, got, v.Damaged, pg.want)
		}
	}
	if lines := logs.lines("damaged"); len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("version=%d", damaged)) {
		t.Errorf("log lines about the damage:\n%s\nwant one naming version %d", strings.Join(lines, "\n"), damaged)
	}
}
