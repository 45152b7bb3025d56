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

// taggedDef is a definition whose process issues one command per fact, keyed by the
// fact's tag and its data marked "OWN-<tag>-OWN": a record of the runtime's own a test
// can damage, whatever the stream's versions.
func taggedDef() pm.Definition[[]string] {
	return pm.Definition[[]string]{
		Name:      "Tagged",
		Handles:   []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) []string { return nil },
		Apply: func(tags []string, e pmd.Event) []string {
			if tag, _ := e.Data["tag"].(string); e.Link && tag != "" {
				return append(slices.Clip(tags), tag)
			}
			return tags
		},
		Decide: func(tags []string) []pm.Command {
			var out []pm.Command
			for _, tag := range tags {
				out = append(out, pm.Command{Type: "Ack", Key: tag,
					Data: map[string]any{"pad": pad, "mark": "OWN-" + tag + "-OWN"}})
			}
			return out
		},
	}
}

// TestProcessPageEndsBeforeADamagedRecordPastIt: a page that ends below a damaged record
// of the runtime's own ends there. The read of a page is bounded by the number of
// versions from its start, and a stream deleted and written again starts past 0, so
// the read met the damaged record after the page's last version, and ProcessPage failed
// on it rather than end the page.
func TestProcessPageEndsBeforeADamagedRecordPastIt(t *testing.T) {
	ctx := context.Background()
	tagged := func(tag string) pmd.Event {
		return pmd.Event{Type: "Go", Data: map[string]any{"id": "1", "tag": tag}}
	}
	s := damagedStore(t, func(s *pmd.Store) {
		r := start(t, s, taggedDef(), pm.Options{SnapshotEvery: -1})
		for _, tag := range []string{"t1", "t2", "t3"} {
			appendFact(t, s, tagged(tag))
			r.idle(t)
		}
		r.stop(t)
		if err := s.DeleteStream(ctx, "Tagged$1", pmd.Any); err != nil {
			t.Fatal(err)
		}
		r = start(t, s, taggedDef(), pm.Options{SnapshotEvery: -1})
		for _, tag := range []string{"t4", "t5", "t6"} {
			appendFact(t, s, tagged(tag))
			r.idle(t)
		}
		r.stop(t)
		sealWithNoise(t, s)
	}, "OWN-t5-OWN")
	m, err := pm.New(s, taggedDef(), pm.Options{Logger: quiet(), SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Versions after the delete: 6 link t4, 7 Ack t4, 8 link t5, 9 Ack t5 (damaged),
	// 10 link t6, 11 Ack t6.
	for _, pg := range []struct {
		before int64
		limit  int
		want   []uint64
	}{{9, 1, []uint64{8}}, {9, 2, []uint64{7, 8}}, {8, 1, []uint64{7}}, {10, 1, nil}, {11, 2, []uint64{10}}} {
		v, err := m.ProcessPage(ctx, "1", pg.before, pg.limit)
		if err != nil {
			t.Errorf("ProcessPage before %d, limit %d: %v", pg.before, pg.limit, err)
			continue
		}
		var got []uint64
		for _, e := range v.Events {
			got = append(got, e.Version)
		}
		if !slices.Equal(got, pg.want) || !slices.Equal(v.Damaged, []int64{9}) || len(v.Commands) != 2 {
			t.Errorf("ProcessPage before %d, limit %d: events %v, damaged %v, %d commands; want %v, [9], the 2 intact commands",
				pg.before, pg.limit, got, v.Damaged, len(v.Commands), pg.want)
		}
	}
}

// TestADamagedLinkedFactIsLoggedOnce: the views of a process whose stream holds a damaged
// linked fact log it once, as they log a damaged record of the runtime's own: the
// browser asks for the same view again and again, and each Process logged it at ERROR,
// each ProcessPage twice.
func TestADamagedLinkedFactIsLoggedOnce(t *testing.T) {
	for _, snapshotEvery := range []int{-1, 1} {
		t.Run(fmt.Sprintf("SnapshotEvery %d", snapshotEvery), func(t *testing.T) {
			ctx := context.Background()
			s := damagedStore(t, func(s *pmd.Store) {
				r := start(t, s, matchDef("CateringMatch"), pm.Options{SnapshotEvery: snapshotEvery})
				e := customer("1")
				e.Data["pad"], e.Data["mark"] = pad, "MARK-c1-MARK"
				appendFact(t, s, e)
				r.idle(t)
				appendFact(t, s, caterer("1"))
				r.idle(t)
				r.stop(t)
				sealWithNoise(t, s)
			}, "MARK-c1-MARK")
			var logs lockedLog
			m, err := pm.New(s, matchDef("CateringMatch"), pm.Options{Logger: logs.logger(), SnapshotEvery: snapshotEvery})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				v, err := m.Process(ctx, "1")
				if err != nil || !slices.Equal(v.Damaged, []int64{0}) {
					t.Fatalf("Process: damaged %v, %v; want [0]", v.Damaged, err)
				}
				if v, err = m.ProcessPage(ctx, "1", -1, 100); err != nil {
					t.Fatalf("ProcessPage: %v", err)
				}
				if _, err := m.Processes(ctx, "", 10); err != nil {
					t.Fatalf("Processes: %v", err)
				}
			}
			if lines := logs.lines("damaged"); len(lines) != 1 || !strings.Contains(lines[0], "version=0") {
				t.Errorf("log lines about the damage:\n%s\nwant one, naming version 0", strings.Join(lines, "\n"))
			}
		})
	}
}

// TestListAgreesWithProcessOnADamagedCommand: Process and ProcessPage show a damaged
// command record below the newest snapshot as damaged, and so does the line of the
// process in List once the store knows the damage (Problems): it counted the command
// the snapshot's ledger lists as issued, which made Commands 4 and Damaged 0.
func TestListAgreesWithProcessOnADamagedCommand(t *testing.T) {
	for _, tc := range []struct{ snapshotEvery, victim int }{{-1, 2}, {4, 2}, {4, 1}, {2, 1}} {
		t.Run(fmt.Sprintf("SnapshotEvery %d, command %d", tc.snapshotEvery, tc.victim), func(t *testing.T) {
			ctx := context.Background()
			s := damagedStore(t, func(s *pmd.Store) {
				r := start(t, s, markedDef(), pm.Options{SnapshotEvery: tc.snapshotEvery})
				for range 4 {
					appendFact(t, s, goFact("1"))
					r.idle(t)
				}
				r.stop(t)
				sealWithNoise(t, s)
			}, fmt.Sprintf("OWN-%d-OWN", tc.victim))
			m, err := pm.New(s, markedDef(), pm.Options{Logger: quiet(), SnapshotEvery: tc.snapshotEvery})
			if err != nil {
				t.Fatal(err)
			}
			full, err := m.Process(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			page, err := m.ProcessPage(ctx, "1", -1, 100)
			if err != nil {
				t.Fatal(err)
			}
			list, err := m.Processes(ctx, "", 10)
			if err != nil || len(list) != 1 {
				t.Fatalf("Processes: %+v, %v; want the one process", list, err)
			}
			got := list[0]
			if len(full.Commands) != 3 || len(page.Commands) != 3 || got.Commands != 3 ||
				len(full.Damaged) != 1 || len(page.Damaged) != 1 || got.Damaged != 1 {
				t.Errorf("commands: Process %d, ProcessPage %d, List %d; damaged: Process %v, ProcessPage %v, List %d; want 3 commands and one damaged record in each",
					len(full.Commands), len(page.Commands), got.Commands, full.Damaged, page.Damaged, got.Damaged)
			}
		})
	}
}
