package pm_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// runtimeSnapshotID is the id the runtime gives the record at version of the snapshots
// stream stream in store s (FORMAT.md): a snapshot with another id is not trusted.
func runtimeSnapshotID(s *pmd.Store, stream string, version uint64) uuid.UUID {
	id := s.ID()
	ns := uuid.NewSHA1(uuid.MustParse("7b1c2f4e-5d1a-4f0e-9a57-3c0d8f6b2e91"), id[:])
	return uuid.NewSHA1(ns, fmt.Appendf(nil, "%s@%d", stream, version))
}

// namesShown returns the names in the states of v (State and States), failing the test
// on a state that is not a names.
func namesShown(t *testing.T, v pm.Process) [][]string {
	t.Helper()
	var out [][]string
	for i, st := range append([]any{v.State}, v.States...) {
		n, ok := st.(names)
		if !ok {
			t.Fatalf("state %d is %#v", i, st)
		}
		out = append(out, n.Names)
	}
	return out
}

// TestOldSnapshotGainsSources: a process whose newest snapshot was written before
// snapshots listed the streams of their facts ("sources") is checked by reading the
// links that snapshot covers, and the snapshots written from it afterwards list every
// stream: erasing a stream of its facts, one folded before the upgrade or one after,
// leaves its views. Before, the ledger restored from the old snapshot never knew its
// sources, nor did any snapshot written from it, and ProcessPage showed the erased data.
func TestOldSnapshotGainsSources(t *testing.T) {
	for _, tc := range []struct {
		snapshots int
		erase     string
	}{
		{1, "Customer-1"}, {2, "Customer-1"}, {1, "Customer-0"}, {2, "Customer-0"},
	} {
		t.Run(fmt.Sprintf("SnapshotEvery %d, erase %s", tc.snapshots, tc.erase), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s := openStore(t, dir)
			opts := pm.Options{SnapshotEvery: tc.snapshots}
			const snaps = "Names.snapshots$1"
			r := start(t, s, namesDef(), opts)
			appendNamed(t, s, "Customer-0", "old-0")
			appendNamed(t, s, "Customer-0", "old-1")
			r.idle(t)
			r.stop(t)

			// The newest snapshot as an earlier version wrote it: without sources.
			recs := processStream(t, s, snaps)
			if len(recs) == 0 {
				t.Fatal("no snapshot written")
			}
			last := recs[len(recs)-1]
			if _, ok := last.Data["sources"]; !ok {
				t.Fatalf("the snapshot has no sources: %v", last.Data)
			}
			delete(last.Data, "sources")
			if _, err := s.Append(ctx, snaps, pmd.AtVersion(last.Version), pmd.EventData{
				ID: runtimeSnapshotID(s, snaps, last.Version+1), Type: last.Type, Data: last.Data, Metadata: last.Metadata,
			}); err != nil {
				t.Fatal(err)
			}

			// The upgrade: the process folds from the old snapshot and gets facts of
			// another stream, and is snapshotted.
			r = start(t, s, namesDef(), opts)
			appendNamed(t, s, "Customer-1", "new-0")
			appendNamed(t, s, "Customer-1", "new-1")
			r.idle(t)
			r.stop(t)
			recs = processStream(t, s, snaps)
			newest := recs[len(recs)-1]
			if newest.Version == last.Version+1 {
				t.Fatal("no snapshot written after the upgrade")
			}
			sources, _ := newest.Data["sources"].(map[string]any)
			for _, stream := range []string{"Customer-0", "Customer-1"} {
				if _, ok := sources[stream]; !ok {
					t.Errorf("the snapshot written after the upgrade does not list %s: sources %v", stream, newest.Data["sources"])
				}
			}

			if err := s.EraseStream(ctx, tc.erase); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir)
			erased := map[string]bool{"Customer-0": tc.erase == "Customer-0", "Customer-1": tc.erase == "Customer-1"}
			kept := []string{"old-0", "old-1"}
			if erased["Customer-0"] {
				kept = []string{"new-0", "new-1"}
			}
			m, err := pm.New(s, namesDef(), pm.Options{SnapshotEvery: tc.snapshots, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			full, err := m.Process(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			page, err := m.ProcessPage(ctx, "1", -1, 1)
			if err != nil {
				t.Fatal(err)
			}
			for view, v := range map[string]pm.Process{"Process": full, "ProcessPage": page} {
				if got := v.State.(names).Names; !slices.Equal(got, kept) {
					t.Errorf("%s: state %v, want %v (%s erased)", view, got, kept, tc.erase)
				}
				for i, n := range namesShown(t, v) {
					for _, name := range n {
						if slices.Contains([]string{"old-0", "old-1", "new-0", "new-1"}, name) && !slices.Contains(kept, name) {
							t.Errorf("%s: state %d shows %s, whose fact was erased", view, i, name)
						}
					}
				}
			}
		})
	}
}

// TestSnapshotListsTheFirstFactOfAStream: a snapshot lists, for a stream of its facts,
// the first fact linked from it that was folded with its data. A manager that has the
// process cached when the stream is erased folds later facts of the stream onto the
// erased one; the snapshot it writes then must name the erased fact (the first), not
// the last, or the fold from it after a restart trusts it and shows the erased data.
func TestSnapshotListsTheFirstFactOfAStream(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	opts := pm.Options{SnapshotEvery: 3}
	r := start(t, s, namesDef(), opts)
	appendNamed(t, s, "Customer-0", "a")
	r.idle(t)
	if err := s.EraseStream(ctx, "Customer-0"); err != nil {
		t.Fatal(err)
	}
	appendNamed(t, s, "Customer-0", "b")
	appendNamed(t, s, "Customer-0", "c")
	r.idle(t)
	r.stop(t)
	if n := len(processStream(t, s, "Names.snapshots$1")); n != 1 {
		t.Fatalf("%d snapshots written from the cached state, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	r = start(t, s, namesDef(), opts)
	r.idle(t)
	page, err := r.ProcessPage(ctx, "1", -1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := page.State.(names).Names, []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("state %v after a restart, want %v: the snapshot folded the erased fact", got, want)
	}
}
