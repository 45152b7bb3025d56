package pmd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// scavengedDead is a store behind an inlineRaft whose log holds two dead events as gone
// records: the first event of D$1 (below its truncate_before) and the event of L$1 that
// D$1 linked and then hid again (deleted in its own stream too). Its own scavenge made
// them before it became a replica, as a cluster's seed's, or an earlier release's
// replica's (a replica's scavenge now keeps a dead event's record without its data:
// TestCopyOfAScavengedReplicaPrefix). It returns the store, its Raft stand-in and the
// two removed events.
func scavengedDead(t *testing.T, dir string, opts pmd.Options) (*pmd.Store, *inlineRaft, []pmd.EventData) {
	t.Helper()
	ctx := context.Background()
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	x, y := ev("T"), ev("T")
	mustAppend(t, s, "L$1", pmd.NoStream, y)
	mustAppend(t, s, "D$1", pmd.NoStream, x)
	mustLink(t, s, "D$1", pmd.Any, y.ID)
	mustAppend(t, s, "D$1", pmd.Any, ev("T"))
	if err := s.SetRetention(ctx, "D$1", pmd.Retention{TruncateBefore: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "L$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	for range 60 { // seals the segments that hold them, for the scavenge
		mustAppend(t, s, "P$1", pmd.Any, ev("T"))
	}
	if res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil || res.Gone != 3 {
		t.Fatalf("Scavenge = %+v, %v; want 2 events and a link gone", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r := &inlineRaft{s: s}
	if _, err := s.SetReplicator(r.fn); err != nil {
		t.Fatal(err)
	}
	return s, r, []pmd.EventData{x, y}
}

// TestScavengedIDStaysTaken: the id of an event a scavenge removed stays taken
// (duplicate_event, docs/retention.md) for every store that holds the scavenged log,
// whether its index was built live, rebuilt from that log, or built by a cluster node
// copying the log: each decides a write from the log, never from when it scavenged or
// how it built its index, or replicas disagree from that write on.
func TestScavengedIDStaysTaken(t *testing.T) {
	ctx := context.Background()
	opts := pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 2048, Logger: quietLogger()}
	reuse := func(e pmd.EventData) pmd.EventData {
		e.Type = "Other"
		return e
	}
	t.Run("rebuilt index", func(t *testing.T) {
		dir := t.TempDir()
		s, _, dead := scavengedDead(t, dir, opts)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
			t.Fatal(err)
		}
		s, err := pmd.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, e := range dead {
			if _, err := s.Append(ctx, "N$1", pmd.Any, reuse(e)); !errors.Is(err, pmd.ErrDuplicateEvent) {
				t.Errorf("append of a scavenged event's id %s after a rebuild: %v, want duplicate_event", e.ID, err)
			}
			if _, err := s.Event(ctx, e.ID); !errors.Is(err, pmd.ErrEventNotFound) {
				t.Errorf("Event(%s) of a scavenged event after a rebuild: %v, want event_not_found", e.ID, err)
			}
		}
	})
	t.Run("cluster copy", func(t *testing.T) {
		src, r, dead := scavengedDead(t, t.TempDir(), opts)
		var recs []pmdlog.Record
		if err := src.ScanRecords(ctx, 1, src.LastPosition(), func(r *pmdlog.Record) error {
			recs = append(recs, *r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750); err != nil {
			t.Fatal(err)
		}
		dst, err := pmd.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		if _, err := dst.SetReplicator((&raftish{}).fn); err != nil {
			t.Fatal(err)
		}
		if err := dst.CopyRecords(ctx, recs); err != nil {
			t.Fatal(err)
		}
		for _, e := range dead {
			n := len(r.entries)
			_, errLeader := src.Append(ctx, "N$1", pmd.Any, reuse(e))
			out := dst.ApplyWrites(ctx, r.entries[n:])
			if !errors.Is(errLeader, pmd.ErrDuplicateEvent) || !errors.Is(out[0].Err, pmd.ErrDuplicateEvent) {
				t.Errorf("append of a scavenged event's id %s: leader %v, copy %v; want duplicate_event on both", e.ID, errLeader, out[0].Err)
			}
			if a, b := src.LastPosition(), dst.LastPosition(); a != b {
				t.Fatalf("the leader's log ends at %d, the copy's at %d", a, b)
			}
		}
	})
}
