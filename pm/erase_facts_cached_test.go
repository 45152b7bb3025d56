package pm_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// greetDef keeps the name each fact carries, as namesDef does, and issues Greet with
// the names once it has two.
func greetDef() pm.Definition[names] {
	def := namesDef()
	def.Name = "Greet"
	def.Decide = func(s names) []pm.Command {
		if len(s.Names) < 2 {
			return nil
		}
		return []pm.Command{{Type: "Greet", Data: map[string]any{"names": slices.Clone(s.Names)}}}
	}
	return def
}

// TestACachedProcessDoesNotDecideOnAnErasedFact: the stream of a fact linked into a
// process is erased while the manager has the process cached. The cached state still
// held the fact's data, and the next decision issued a command carrying it, though
// every fold from the store sees the fact without its data: the manager decided on
// the erased data until the process left the cache. Before a decision is written the
// manager now checks the facts the cached fold folded with their data, and folds the
// process again when one reads erased.
func TestACachedProcessDoesNotDecideOnAnErasedFact(t *testing.T) {
	for _, snapshots := range []int{-1, 1} {
		t.Run(map[int]string{-1: "no snapshots", 1: "a snapshot every event"}[snapshots], func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			r := start(t, s, greetDef(), pm.Options{SnapshotEvery: snapshots})
			appendNamed(t, s, "Customer-0", "erased-name")
			r.idle(t)
			if err := s.EraseStream(ctx, "Customer-0"); err != nil {
				t.Fatal(err)
			}
			appendNamed(t, s, "Customer-1", "kept-name")
			r.idle(t)
			var greets []pmd.Event
			for _, e := range processStream(t, s, "Greet$1") {
				if e.Type == "Greet" {
					greets = append(greets, e)
				}
			}
			if len(greets) != 0 {
				t.Fatalf("issued %d Greet commands (%v), want none: every fold from the store has one name", len(greets), greets[0].Data)
			}
			v, err := r.Process(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			if got := v.State.(names).Names; !slices.Equal(got, []string{"kept-name"}) {
				t.Fatalf("state %v, want [kept-name]", got)
			}
		})
	}
}

// TestACachedProcessSnapshotsNoErasedFact: a manager that had the process cached when
// the stream of one of its facts was erased wrote its next snapshot from the cached
// state, the erased data in it, onto the disk the erasure was to clear. It now folds the
// process again first.
func TestACachedProcessSnapshotsNoErasedFact(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	r := start(t, s, namesDef(), pm.Options{SnapshotEvery: 2})
	appendNamed(t, s, "Customer-0", "erased-name")
	r.idle(t)
	if err := s.EraseStream(ctx, "Customer-0"); err != nil {
		t.Fatal(err)
	}
	appendNamed(t, s, "Customer-1", "kept-name")
	r.idle(t)
	snapshots := processStream(t, s, "Names.snapshots$1")
	if len(snapshots) == 0 {
		t.Fatal("no snapshot written")
	}
	for _, sn := range snapshots {
		if strings.Contains(fmt.Sprintf("%s", sn.Data), "erased-name") {
			t.Fatalf("snapshot %d holds the erased name: %s", sn.Version, sn.Data)
		}
	}
}

// TestACachedProcessChecksItsFactsOnlyAfterAnErasure: before each decision that
// writes, and each snapshot, a cached fold read the first fact of each of its facts'
// streams to see whether it had been erased since, a read per stream on the manager's
// hot path in a store that never erased anything. It now reads them only when the store
// has applied an erasure since the fold, or since the last check that found none
// (Store.Erasures), once per erasure.
func TestACachedProcessChecksItsFactsOnlyAfterAnErasure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		snapshots int
		always    bool
		want      int
	}{
		{"no snapshots", -1, false, 1},
		{"a snapshot every event", 1, false, 1},
		{"the check forced, as before", -1, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var checks atomic.Int64
			s := openStore(t, t.TempDir())
			def := greetDef()
			def.Decide = func(s names) []pm.Command {
				if len(s.Names) < 2 {
					return nil
				}
				return []pm.Command{{Type: "Greet", Key: strconv.Itoa(len(s.Names)), Data: map[string]any{"names": slices.Clone(s.Names)}}}
			}
			r := startWith(t, s, def, pm.Options{SnapshotEvery: tc.snapshots}, func(m *pm.Manager) {
				pm.SetFactsChecked(m, func(stream string) {
					if stream == "Greet$1" {
						checks.Add(1)
					}
				})
				if tc.always {
					pm.SetAlwaysCheckFacts(m)
				}
			})
			for i, name := range []string{"a", "b", "c"} {
				appendNamed(t, s, fmt.Sprintf("Customer-%d", i), name)
				r.idle(t)
			}
			if got := checks.Load(); !tc.always && got != 0 {
				t.Fatalf("%d checks of the facts before any erasure, want 0", got)
			}
			if _, err := s.Append(ctx, "Other", pmd.Any, pmd.EventData{Type: "Unrelated"}); err != nil {
				t.Fatal(err)
			}
			if err := s.EraseStream(ctx, "Other"); err != nil {
				t.Fatal(err)
			}
			for i, name := range []string{"d", "e"} {
				appendNamed(t, s, fmt.Sprintf("Customer-%d", 3+i), name)
				r.idle(t)
			}
			if got := checks.Load(); got != int64(tc.want) {
				t.Fatalf("%d checks of the facts, want %d", got, tc.want)
			}
			greets := 0
			for _, e := range processStream(t, s, "Greet$1") {
				if e.Type == "Greet" {
					greets++
				}
			}
			if greets != 4 {
				t.Fatalf("%d Greet commands, want 4 (one for each fact from the second on)", greets)
			}
		})
	}
}
