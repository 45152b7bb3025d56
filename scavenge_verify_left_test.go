package pmd_test

import (
	"context"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestVerifyAgreesWithWhatAScavengeLeaves: pmd verify lets the live index hold only the
// entries a scavenge leaves where no read looks (index.DiffSubset), no longer every entry
// the index rebuilt from the scavenged log lacks. Each kind of record a scavenge removes,
// or strips of its metadata, leaves entries of its own: a removed event its id, category,
// type, causations and dead mark; a removed link its link entry, with the event still
// alive in its own stream; an erased event the causation its metadata named. None of
// them may make verify report the index as disagreeing with the log.
func TestVerifyAgreesWithWhatAScavengeLeaves(t *testing.T) {
	ctx := context.Background()
	caused := func(typ string, parent pmd.EventData) pmd.EventData {
		e := ev(typ)
		e.Metadata = map[string]any{pmd.CausationID: parent.ID.String()}
		return e
	}
	del := func(t *testing.T, s *pmd.Store, stream string) {
		t.Helper()
		if err := s.DeleteStream(ctx, stream, pmd.Any); err != nil {
			t.Fatal(err)
		}
	}
	truncate := func(t *testing.T, s *pmd.Store, stream string, before uint64) {
		t.Helper()
		if err := s.SetRetention(ctx, stream, pmd.Retention{TruncateBefore: before}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setUp func(t *testing.T, s *pmd.Store)
	}{
		{"an event removed, its child alive", func(t *testing.T, s *pmd.Store) {
			a := ev("A")
			mustAppend(t, s, "G$1", pmd.Any, a)
			mustAppend(t, s, "S$1", pmd.Any, caused("B", a))
			del(t, s, "G$1")
		}},
		{"an event removed, its parent alive", func(t *testing.T, s *pmd.Store) {
			a := ev("A")
			mustAppend(t, s, "S$1", pmd.Any, a)
			mustAppend(t, s, "G$1", pmd.Any, caused("B", a), ev("C"))
			del(t, s, "G$1")
		}},
		{"an event removed with its links", func(t *testing.T, s *pmd.Store) {
			a := ev("A")
			mustAppend(t, s, "G$1", pmd.Any, a, ev("B"))
			mustLink(t, s, "O$1", pmd.Any, a.ID)
			mustAppend(t, s, "O$1", pmd.Any, ev("C"))
			truncate(t, s, "O$1", 1)
			del(t, s, "G$1")
		}},
		{"a link removed, its event alive", func(t *testing.T, s *pmd.Store) {
			a := ev("A")
			mustAppend(t, s, "S$1", pmd.Any, a)
			mustLink(t, s, "O$1", pmd.Any, a.ID)
			mustAppend(t, s, "O$1", pmd.Any, ev("C"))
			truncate(t, s, "O$1", 1)
		}},
		{"a dead event kept for its version, its links removed", func(t *testing.T, s *pmd.Store) {
			a := ev("A")
			mustAppend(t, s, "S$1", pmd.Any, a)
			mustLink(t, s, "O$1", pmd.Any, a.ID)
			mustAppend(t, s, "S$1", pmd.Any, caused("B", a))
			del(t, s, "O$1")
			truncate(t, s, "S$1", 2)
		}},
		{"a dead event kept for its version, with a cause", func(t *testing.T, s *pmd.Store) {
			a := ev("A")
			mustAppend(t, s, "S$1", pmd.Any, a)
			mustAppend(t, s, "G$1", pmd.Any, caused("B", a))
			truncate(t, s, "G$1", 1)
		}},
		{"an erased event with a cause", func(t *testing.T, s *pmd.Store) {
			a := ev("A")
			mustAppend(t, s, "S$1", pmd.Any, a)
			mustAppend(t, s, "E$1", pmd.Any, caused("B", a), ev("C"))
			if err := s.EraseStream(ctx, "E$1"); err != nil {
				t.Fatal(err)
			}
		}},
		{"an erased event linked into its own stream again", func(t *testing.T, s *pmd.Store) {
			a, b := ev("A"), caused("B", ev("X"))
			mustAppend(t, s, "S$1", pmd.Any, a)
			b.Metadata[pmd.CausationID] = a.ID.String()
			mustAppend(t, s, "E$1", pmd.Any, b)
			mustLink(t, s, "O$1", pmd.Any, b.ID) // keeps it alive
			del(t, s, "E$1")
			mustLink(t, s, "E$1", pmd.Any, b.ID)
			if err := s.EraseStream(ctx, "E$1"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scavengeAndVerify(t, tc.setUp, func(res pmd.ScavengeResult) bool { return res.Gone+res.DeadKept+res.Erased > 0 })
		})
	}
}
