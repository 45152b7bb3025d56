package pmd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// A log that lost synced, acknowledged records the index holds on disk (the index is
// flushed only after the log is synced) has been damaged: no crash does that. The store
// opens, says so in Problems (so /healthz is degraded) and counts it in the damaged
// records, the same whether the log now ends at an entry boundary or inside the lost
// entry, and a cut the crash repair makes below the index keeps the segment as it was in
// a quarantine directory. Positions only grow: the lost position is filled with a void
// record, so the next write does not take it (on a cluster node, which Raft gives the
// lost entries back to at the same positions, it is not). With syncing off a power cut
// explains it: the index is rebuilt from the log and nothing is reported.
func TestLogLosingIndexedRecordsIsReportedWhereverItIsCut(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noSync  bool
		extra   int64 // bytes of the lost entry left in the file
		cluster bool  // a cluster node's directory, with raft/
	}{
		{"synced, cut at the entry boundary", false, 0, false},
		{"synced, cut a byte into the entry", false, 1, false},
		{"synced cluster node, cut at the entry boundary", false, 0, true},
		{"no sync, cut at the entry boundary", true, 0, false},
		{"no sync, cut a byte into the entry", true, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			opts := pmd.Options{Logger: quietLogger(), NoSync: tc.noSync, NoScrub: true}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := s.Append(ctx, "A-1", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			_, size := newestSegment(t, dir)
			if s, err = pmd.Open(dir, opts); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, "A-1", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil { // flushes the index at position 3
				t.Fatal(err)
			}
			seg, _ := newestSegment(t, dir)
			truncate(t, seg, size+tc.extra)
			if tc.cluster {
				if err := os.Mkdir(filepath.Join(dir, "raft"), 0o750); err != nil {
					t.Fatal(err)
				}
			}

			s, err = pmd.Open(dir, opts)
			if err != nil {
				t.Fatalf("Open refused: %v", err)
			}
			wantLast := uint64(3) // position 3 voided
			if tc.noSync || tc.cluster {
				wantLast = 2
			}
			if got := s.Stats().LastPosition; got != wantLast {
				t.Errorf("last position %d, want %d", got, wantLast)
			}
			problems, damaged := s.Problems(), s.Stats().DamagedRecords
			quarantined, _ := filepath.Glob(filepath.Join(dir, "quarantine-*", "*"))
			if tc.noSync {
				if len(problems) != 0 || damaged != 0 || len(quarantined) != 0 {
					t.Errorf("problems %q, %d damaged, quarantined %q; want nothing reported after a power cut with syncing off", problems, damaged, quarantined)
				}
			} else {
				if len(problems) != 1 || !strings.Contains(problems[0], "position 3") || damaged != 1 {
					t.Errorf("problems %q, %d damaged; want the loss of position 3 reported and counted", problems, damaged)
				}
				if want := min(tc.extra, 1); int64(len(quarantined)) != want {
					t.Errorf("quarantined %q, want %d segment copies", quarantined, want)
				}
				for _, q := range quarantined {
					if fi, err := os.Stat(q); err != nil || fi.Size() != size+tc.extra {
						t.Errorf("quarantined copy %s: %v, %v; want the segment as it was, %d bytes", q, fi, err, size+tc.extra)
					}
				}
			}
			// Positions only grow: with syncing on, the lost position stays taken (a
			// void record), so the next write goes after it; a power cut with syncing off
			// lost writes the disk never had, and their positions are given again.
			wantNext := uint64(4)
			if tc.noSync || tc.cluster {
				wantNext = 3
			}
			w, err := s.Append(ctx, "A-1", pmd.Any, pmd.EventData{Type: "T"})
			if err != nil || w.FirstPosition != wantNext {
				t.Fatalf("append after the loss: %+v, %v; want position %d", w, err, wantNext)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = pmd.Open(dir, opts); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if p := s.Problems(); len(p) != 0 {
				t.Errorf("problems after the next start: %q", p)
			}
			if events, err := readStream(t, s, "A-1", pmd.ReadOptions{}); err != nil || len(events) != 3 {
				t.Errorf("A-1 reads %d events, %v; want 3", len(events), err)
			}
		})
	}
}
