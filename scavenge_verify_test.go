package pmd_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestVerifyAgreesAfterAScavenge: a scavenge removes records whose index entries the live
// index keeps, and an index rebuilt from the scavenged log holds some of what they left
// otherwise, where no read looks: pmd verify must not report the live index as
// disagreeing with the log there (it did, telling the user to remove the index).
//
// A stream whose retention raised its floor and that was deleted since loses every
// record: the rebuilt index raises the floor less (the versions below it are gone from
// the log), under the version the deletion hides below, where the live floor is too. An
// event linked into its own stream after its deletion, the link hidden and removed, is a
// member of the stream at the link's version in the live index and at its own in the
// rebuilt one, both below the stream's first visible version.
func TestVerifyAgreesAfterAScavenge(t *testing.T) {
	ctx := context.Background()
	ten := func(t *testing.T, s *pmd.Store) {
		for i := range 10 {
			mustAppend(t, s, "S$1", pmd.Any, ev("E", "i", i))
		}
	}
	retain := func(t *testing.T, s *pmd.Store, rets ...pmd.Retention) {
		for _, ret := range rets {
			if err := s.SetRetention(ctx, "S$1", ret); err != nil {
				t.Fatal(err)
			}
		}
	}
	deleteS := func(t *testing.T, s *pmd.Store) {
		if err := s.DeleteStream(ctx, "S$1", pmd.Any); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setUp func(t *testing.T, s *pmd.Store)
	}{
		{"deleted after a max count", func(t *testing.T, s *pmd.Store) {
			ten(t, s)
			retain(t, s, pmd.Retention{MaxCount: 3})
			deleteS(t, s)
		}},
		{"deleted after a truncation", func(t *testing.T, s *pmd.Store) {
			ten(t, s)
			retain(t, s, pmd.Retention{TruncateBefore: 6})
			deleteS(t, s)
		}},
		{"deleted after a max count, written again", func(t *testing.T, s *pmd.Store) {
			ten(t, s)
			retain(t, s, pmd.Retention{MaxCount: 3}, pmd.Retention{TruncateBefore: 1})
			deleteS(t, s)
			mustAppend(t, s, "S$1", pmd.NoStream, ev("E", "i", 10))
		}},
		{"linked into its own stream again, the link truncated", func(t *testing.T, s *pmd.Store) {
			ten(t, s)
			first := readAll(t, s, pmd.ReadOptions{Limit: 1})[0]
			mustLink(t, s, "O$1", pmd.Any, first.ID) // keeps it alive
			deleteS(t, s)
			mustLink(t, s, "S$1", pmd.NoStream, first.ID)
			mustAppend(t, s, "S$1", pmd.Any, ev("E", "i", 11))
			retain(t, s, pmd.Retention{TruncateBefore: 11})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scavengeAndVerify(t, tc.setUp, func(res pmd.ScavengeResult) bool { return res.Gone > 0 })
		})
	}
}

// scavengeAndVerify sets up a store with setUp, seals the segment of what it wrote, for
// the scavenge to rewrite it, scavenges it (whose result must satisfy scavenged), closes
// it and checks that pmd verify finds no problem and the index agreeing with the log.
func scavengeAndVerify(t *testing.T, setUp func(t *testing.T, s *pmd.Store), scavenged func(pmd.ScavengeResult) bool) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	setUp(t, s)
	for i := range 40 {
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "pad", strings.Repeat("f", 200), "i", i))
	}
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil || !scavenged(res) {
		t.Fatalf("Scavenge = %+v, %v; want the set-up's hidden records removed or erased", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	report, err := engine.Verify(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK() || !report.Agrees {
		t.Fatalf("verify after a scavenge (%+v): problems %q, index agrees %v; want none", res, report.Problems, report.Agrees)
	}
}
