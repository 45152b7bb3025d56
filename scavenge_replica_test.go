package pmd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
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
	// The writes before the snapshot are only queued until apply: an event a later
	// write names needs an id known when it is queued.
	var linked uuid.UUID
	for _, tc := range []struct {
		name     string
		before   func(s *pmd.Store) // the writes up to the snapshot
		after    func(s *pmd.Store) // the writes after it
		deadKept int                // the dead events a scavenge keeps without their data
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
		{"a dead link", func(s *pmd.Store) {
			e0, e1 := ev("E", "i", 0), ev("E", "i", 1)
			linked = e0.ID
			_, _ = s.Append(ctx, "S", pmd.Any, e0, e1)
			_, _ = s.Link(ctx, "L", pmd.NoStream, e0.ID)
			_, _ = s.Link(ctx, "L", pmd.AtVersion(0), e1.ID)
			_ = s.SetRetention(ctx, "S", pmd.Retention{TruncateBefore: 1})
		}, func(s *pmd.Store) {
			// At the snapshot only L's first link shows e0 (S's truncation hides
			// it); L's truncation after the snapshot kills that link.
			_, _ = s.Link(ctx, "M", pmd.NoStream, linked)
			_ = s.SetRetention(ctx, "L", pmd.Retention{TruncateBefore: 1})
		}, 0},
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
			if err != nil || res.Gone != 0 || res.DeadKept != tc.deadKept || res.Erased != 0 {
				t.Errorf("a replica's scavenge: %+v, %v; want no gone record, %d dead event(s) kept without data and none erased", res, err, tc.deadKept)
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

// TestOfflineScavengeOfASeed: a cluster formed from a single node's store holds that
// store's records, none with a Raft index, until the cluster's first write: pmd scavenge
// DIR on its stopped node found Applied 0 and took it for a single node's. It wrote an
// expiry record no Raft entry made, at a position the other nodes never agreed on, and
// left gone records in the records other nodes copy (TestCopyOfAScavengedReplicaPrefix).
// A data directory with Raft state is a replica's.
func TestOfflineScavengeOfASeed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 8 << 10}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 200)
	for i := range 40 {
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%2), pmd.Any, ev("Placed", "pad", pad))
	}
	if err := s.SetRetention(ctx, "Order$0", pmd.Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "Order$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	for range 60 { // seal what came before
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "pad", pad))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The seed node's Raft state: the cluster formed, and wrote nothing yet.
	if err := os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750); err != nil {
		t.Fatal(err)
	}
	if s, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	last := s.LastPosition()
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil || !res.ExpirySkipped || res.Expired != 0 || res.Gone != 0 || res.DeadKept != 20 || res.Erased != 0 {
		t.Fatalf("an offline scavenge of a seed: %+v, %v; want no expiry, the deleted stream's 20 events kept without their data, nothing gone or erased", res, err)
	}
	if got := s.LastPosition(); got != last {
		t.Fatalf("an offline scavenge of a seed wrote to its log: last position %d, was %d", got, last)
	}
}
