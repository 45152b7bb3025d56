package pmd_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestCopyOfAScavengedReplicaPrefix: a node that catches up from a Raft snapshot copies
// another node's log up to the snapshot's position and applies the entries after it
// against what it copied. That node's scavenge may have run since, with deaths decided
// by records past the snapshot: the copy must index as the prefix did when written, or
// the entries after it are written with other versions, or refused, at other positions
// than on every other node. A replica's scavenge left a gone record for such an event,
// and the copying node gave its stream's next append version 0 (then refused the
// truncation and the append that came after it), or refused a link to it.
func TestCopyOfAScavengedReplicaPrefix(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		before       func(s *pmd.Store) // the writes up to the snapshot
		after        func(s *pmd.Store) // the writes after it
		erasedBefore int                // the dead events a scavenge keeps without their data
	}{
		{"a stream's versions", func(s *pmd.Store) {
			_, _ = s.Append(ctx, "S", pmd.Any, ev("E", "i", 0))
		}, func(s *pmd.Store) {
			_, _ = s.Append(ctx, "S", pmd.Any, ev("E", "i", 1))
			_ = s.SetRetention(ctx, "S", pmd.Retention{TruncateBefore: 2})
			_, _ = s.Append(ctx, "S", pmd.AtVersion(1), ev("E", "i", 2))
		}, 1},
		{"a link", func(s *pmd.Store) {
			_, _ = s.Append(ctx, "S", pmd.Any, ev("E", "i", 0), ev("E", "i", 1))
		}, func(s *pmd.Store) {
			first := readAll(t, s, pmd.ReadOptions{Limit: 1})[0]
			_, _ = s.Link(ctx, "L", pmd.NoStream, first.ID)
			_ = s.SetRetention(ctx, "S", pmd.Retention{TruncateBefore: 2})
			_ = s.SetRetention(ctx, "L", pmd.Retention{TruncateBefore: 1})
			_, _ = s.Link(ctx, "L", pmd.AtVersion(0), first.ID)
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := &raftish{}
			opts := pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 8 << 10, Logger: quietLogger()}
			open := func(dir string) *pmd.Store {
				s, err := pmd.Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.SetReplicator(rl.fn); err != nil {
					t.Fatal(err)
				}
				return s
			}
			aDir := t.TempDir()
			a, c := open(aDir), open(t.TempDir())
			defer c.Close()
			var outcomes []string
			apply := func() {
				for _, o := range a.ApplyWrites(ctx, rl.entries[len(outcomes):]) {
					outcomes = append(outcomes, fmt.Sprint(o.Result, o.Err))
				}
			}
			tc.before(a)
			for i := range 60 { // seal the segments of what came before
				_, _ = a.Append(ctx, "Filler", pmd.Any, ev("F", "pad", strings.Repeat("f", 200), "i", i))
			}
			apply()
			snapEntry, snapPos := len(rl.entries), a.LastPosition()
			tc.after(a)
			apply()
			res, err := a.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
			if err != nil || res.Gone != 0 || res.Erased != tc.erasedBefore {
				t.Errorf("a replica's scavenge: %+v, %v; want no gone record, %d dead event(s) without data", res, err, tc.erasedBefore)
			}

			var recs []pmdlog.Record
			if err := a.ScanRecords(ctx, 1, snapPos, func(r *pmdlog.Record) error { recs = append(recs, *r); return nil }); err != nil {
				t.Fatal(err)
			}
			if err := c.CopyRecords(ctx, recs); err != nil {
				t.Fatal(err)
			}
			for i, o := range c.ApplyWrites(ctx, rl.entries[snapEntry:]) {
				if got, want := fmt.Sprint(o.Result, o.Err), outcomes[snapEntry+i]; got != want {
					t.Errorf("entry %d on the copy: %s; on the node copied from: %s", snapEntry+i+1, got, want)
				}
			}
			if got, want := c.LastPosition(), a.LastPosition(); got != want {
				t.Fatalf("the copy's log ends at position %d, the node's it copied at %d", got, want)
			}
			if got, want := allEvents(t, c), allEvents(t, a); !reflect.DeepEqual(got, want) {
				t.Fatalf("the copy reads\n%v\nwant\n%v", got, want)
			}

			// An index rebuilt from the scavenged log agrees with the live one.
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			report, err := engine.Verify(ctx, aDir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !report.OK() || !report.Agrees {
				t.Fatalf("verify after a replica's scavenge: problems %q, index agrees %v; want none", report.Problems, report.Agrees)
			}
		})
	}
}
