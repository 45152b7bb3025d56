package pmd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestReplicaEntryOfSeveralWritesAfterAPowerCut: a Raft entry that carries several writes
// (ReplicatedWrite.Slot) whose first writes alone survived a power cut is applied again
// from the first write the store lacks: every write ends in the store exactly once, as
// before the cut, wherever the log was cut. Each write's commit record carries its Raft
// index and slot; with the index alone the store would take the entry for applied and
// skip the writes it lost.
func TestReplicaEntryOfSeveralWritesAfterAPowerCut(t *testing.T) {
	ctx := context.Background()
	rl := &raftish{}
	open := func(dir string) *pmd.Store {
		t.Helper()
		s, err := pmd.Open(dir, pmd.Options{NoScrub: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetReplicator(rl.fn); err != nil {
			t.Fatal(err)
		}
		return s
	}
	dir := t.TempDir()
	s := open(dir)
	const writes, perEntry = 64, 4
	for i := range writes {
		stream, expect := fmt.Sprintf("R$%d", i%5), pmd.Any
		if i%8 == 2 || i%8 == 3 {
			// Two writes of one entry that expect no stream: the first wins.
			stream, expect = fmt.Sprintf("Once$%d", i/8), pmd.NoStream
		}
		if _, err := s.Append(ctx, stream, expect, pmd.EventData{Type: "T", Data: map[string]any{"i": i}}); !errors.Is(err, errQueued) {
			t.Fatalf("append through the replicator: %v", err)
		}
	}
	// The writes as the leader batches them: perEntry to an entry.
	entries := rl.entries
	for i := range entries {
		entries[i].Index, entries[i].Slot = uint64(i/perEntry)+1, uint32(i%perEntry)
	}
	const snapshot = 8 // two entries, synced
	first := s.ApplyWrites(ctx, entries[:snapshot])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	synced := t.TempDir()
	copyDir(t, dir, synced)
	_, syncedSize := newestSegment(t, dir)

	s = open(dir)
	var acked []pmd.Outcome
	for from := snapshot; from < len(entries); from += 3 * perEntry { // Raft batches of three entries
		acked = append(acked, s.ApplyWrites(ctx, entries[from:min(from+3*perEntry, len(entries))])...)
	}
	before := allEvents(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	copyDir(t, dir, full)
	_, fullSize := newestSegment(t, full)
	if refused := countRefused(append(first, acked...)); refused != writes/8 || len(before) != writes-writes/8 {
		t.Fatalf("%d writes refused and %d events, want %d and %d", refused, len(before), writes/8, writes-writes/8)
	}

	partial := 0 // cuts that kept part of an entry's writes
	for k := 1; k < 16; k++ {
		t.Run(fmt.Sprintf("cut at %d of 16", k), func(t *testing.T) {
			d := t.TempDir()
			copyDir(t, full, d)
			// The power cut: part of what was written since the sync is gone, and the
			// index is the synced one.
			seg, _ := newestSegment(t, d)
			truncate(t, seg, syncedSize+(fullSize-syncedSize)*int64(k)/16)
			if err := os.RemoveAll(filepath.Join(d, "index")); err != nil {
				t.Fatal(err)
			}
			copyDir(t, filepath.Join(synced, "index"), filepath.Join(d, "index"))

			s := open(d)
			defer s.Close()
			var replayed []pmd.Outcome
			for from := snapshot; from < len(entries); from += 2 * perEntry {
				replayed = append(replayed, s.ApplyWrites(ctx, entries[from:min(from+2*perEntry, len(entries))])...)
			}
			skipped := map[uint64]int{}
			for i, o := range replayed {
				if o.Skipped {
					skipped[entries[snapshot+i].Index]++
					continue
				}
				if (o.Err == nil) != (acked[i].Err == nil) || !reflect.DeepEqual(o.Result, acked[i].Result) {
					t.Fatalf("write %d (entry %d, slot %d) applied again: %+v, first time %+v", snapshot+i, entries[snapshot+i].Index, entries[snapshot+i].Slot, o, acked[i])
				}
			}
			for _, n := range skipped {
				if n < perEntry {
					partial++
				}
			}
			if got := allEvents(t, s); !reflect.DeepEqual(got, before) {
				t.Fatalf("after the replay the store holds %d events, before the power cut %d", len(got), len(before))
			}
		})
	}
	if partial == 0 {
		t.Fatal("no cut kept part of an entry's writes: the test shows nothing")
	}
}

func countRefused(os []pmd.Outcome) int {
	n := 0
	for _, o := range os {
		if o.Err != nil {
			n++
		}
	}
	return n
}
