package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

var errQueued = errors.New("queued")

// TestRepairReplicaCutsDamageAfterItsLastCommit: the last record of a cluster node's
// sealed segment, followed by an empty segment file, is damaged (Open refuses it). The
// Raft index its commit record carried is lost with it, so a void record in its place
// would end the log with no Raft index (Applied 0: Raft would apply every entry after
// its snapshot again, writing them twice). The repair cuts it instead, since Raft's
// replay writes it again (the node has no snapshot or seed entry past it: Replayed):
// Applied is the index of the last intact commit, and Raft's replay of the entries
// writes the lost one again, at its position, as it was.
func TestRepairReplicaCutsDamageAfterItsLastCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750); err != nil {
		t.Fatal(err)
	}
	var entries []pmd.ReplicatedWrite
	open := func() *pmd.Store {
		t.Helper()
		s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		// Raft indexes with gaps, as no-op and configuration entries leave.
		if _, err := s.SetReplicator(func(_ context.Context, w []byte) (pmd.WriteResult, error) {
			entries = append(entries, pmd.ReplicatedWrite{Index: 10 + 3*uint64(len(entries)), Timestamp: 1e18 + int64(len(entries)), Write: w})
			return pmd.WriteResult{}, errQueued
		}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	// Append until a write fills a segment: the log then starts an empty one after it.
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("no write ended a segment")
		}
		ev := pmd.EventData{Type: "Placed", Data: map[string]any{"i": i, "pad": strings.Repeat("x", 40)}}
		if _, err := s.Append(ctx, "Order$1", pmd.Any, ev); !errors.Is(err, errQueued) {
			t.Fatalf("append through the replicator: %v", err)
		}
		if out := s.ApplyWrites(ctx, entries[len(entries)-1:]); out[0].Err != nil {
			t.Fatal(out[0].Err)
		}
		segs := segments(t, dir)
		if fi, err := os.Stat(segs[len(segs)-1]); err != nil {
			t.Fatal(err)
		} else if len(segs) >= 2 && fi.Size() == 0 {
			break
		}
	}
	before := allEvents(t, s)
	last, lastIndex := s.LastPosition(), entries[len(entries)-1].Index
	if s.Applied() != lastIndex {
		t.Fatalf("Applied = %d, want %d", s.Applied(), lastIndex)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	flip(t, dir, last)

	// Whether Raft writes the damaged write again must be told: without it, the plan fails.
	if p, err := engine.PlanRepair(dir, nil); err == nil || !strings.Contains(err.Error(), "cannot be told") {
		if err == nil {
			p.Close()
		}
		t.Fatalf("PlanRepair without Replayed: %v, want an error saying what the cluster writes again cannot be told", err)
	}
	// No snapshot and no seed entry: Raft applies every entry again.
	p, err := engine.PlanRepairWith(dir, engine.RepairOptions{Replayed: func() (uint64, error) { return 0, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Actions) != 2 || p.Actions[0].Op != pmdlog.RepairCut || p.Actions[1].Op != pmdlog.RepairCut ||
		!strings.Contains(p.Actions[1].Reason, "Raft index") {
		t.Fatalf("plan %q, want the empty segment file removed and the damaged record cut, saying why", p.Lines())
	}
	if err := p.Apply(engine.DefaultQuarantine(dir, time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	defer s.Close()
	if want := entries[len(entries)-2].Index; s.Applied() != want || s.LastPosition() != last-1 {
		t.Fatalf("after the repair Applied = %d, last position %d, want %d and %d (the last intact commit)",
			s.Applied(), s.LastPosition(), want, last-1)
	}
	// Raft applies again the entries after its snapshot (here all of them).
	n := len(entries)
	out := s.ApplyWrites(ctx, entries[:n])
	for i, o := range out {
		if o.Err != nil || o.Skipped != (i < n-1) {
			t.Fatalf("entry %d (index %d): %+v, want only the last one applied", i, entries[i].Index, o)
		}
	}
	if s.Applied() != lastIndex || s.LastPosition() != last {
		t.Fatalf("after the replay Applied = %d, last position %d, want %d and %d", s.Applied(), s.LastPosition(), lastIndex, last)
	}
	if after := allEvents(t, s); !reflect.DeepEqual(after, before) {
		t.Fatalf("after the repair and the replay the store holds\n%+v\nwant\n%+v", after, before)
	}
}

func allEvents(t *testing.T, s *pmd.Store) []pmd.Event {
	t.Helper()
	var out []pmd.Event
	for e, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
