package cluster

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestRepairOfANodeCutsOnlyWhatRaftWritesAgain damages the last write of a one-node
// cluster's store (the last record of a segment that an empty one follows) and repairs
// the stopped node's data directory as pmd repair does (Replayed). If the node's newest
// snapshot or its seed entry (a single node's data directory seeded the cluster) covers
// the write, Raft writes it not again: the repair keeps it as a void record, saying that
// this node's copy will differ from the cluster's; the void record carries the Raft
// index of the write before it (0 for a seed's record), so the store, ending at it, is
// not taken for one a single node wrote to, and holds nothing Raft's replay writes again
// (no event twice); the node starts and takes writes. Before, the repair cut it, the store was behind the
// snapshot (or the seed) with no peer to copy the write from, and the node refused to
// start: the acknowledged write was lost. If the write is past both, the repair cuts it
// and Raft's replay writes it again, as it was.
func TestRepairOfANodeCutsOnlyWhatRaftWritesAgain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seeded bool // the cluster starts from a single node's store that holds the write
		snap   int  // 1: a snapshot after the write; -1: before it; 0: none
		cut    bool // the repair cuts the write (else it voids it)
	}{
		{name: "snapshot covers the write", snap: 1},
		{name: "seed covers the write", seeded: true},
		{name: "write past the snapshot", snap: -1, cut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			logger := slog.New(slog.DiscardHandler)
			opts := pmd.Options{NoScrub: true, Logger: logger, SegmentSize: 2048}
			s, err := pmd.Open(dir, opts)
			must(t, err)
			cfg := Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1", Dir: dir, Store: s, Logger: logger}
			cfg.Fatal = func(err error) { t.Errorf("node stopped: %v", err) }
			var n *Node
			if !tc.seeded {
				n = startLeading(t, cfg)
			}
			for i := 0; ; i++ {
				if i == 300 {
					t.Fatal("no write ended a segment")
				}
				if i == 3 && tc.snap < 0 {
					must(t, n.raft.Snapshot().Error())
				}
				_, err := s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed", Data: map[string]any{"i": i, "pad": strings.Repeat("x", 40)}})
				must(t, err)
				if segs := repairSegments(t, dir); len(segs) >= 2 && fileSize(t, segs[len(segs)-1]) == 0 {
					break
				}
			}
			if tc.seeded {
				n = startLeading(t, cfg) // seeds the cluster with the store's records
			}
			if tc.snap > 0 {
				must(t, n.raft.Snapshot().Error())
			}
			before := storeEvents(t, s)
			last := s.LastPosition()
			var prev uint64 // the Raft index of the write before the damaged one
			must(t, s.ScanRecords(ctx, last-1, last-1, func(r *pmdlog.Record) error { prev = r.Applied; return nil }))
			if (prev == 0) != tc.seeded {
				t.Fatalf("the write before the last carries Raft index %d (seeded: %v)", prev, tc.seeded)
			}
			must(t, n.Close())
			must(t, s.Close())
			repairFlip(t, dir, last)

			above, err := Replayed(dir)
			must(t, err)
			if tc.cut != (above < last) {
				t.Fatalf("Replayed = %d, the damaged write is at %d: want it written again: %v", above, last, tc.cut)
			}
			p, err := engine.PlanRepairWith(dir, engine.RepairOptions{Replayed: func() (uint64, error) { return Replayed(dir) }})
			must(t, err)
			lines := p.Lines()
			t.Logf("plan: %q", lines)
			voided := slices.ContainsFunc(p.Actions, func(a pmdlog.RepairAction) bool { return a.Op == pmdlog.RepairVoid && a.Position == last })
			noted := strings.Contains(lines[len(lines)-1], "differ from the cluster's") && strings.Contains(lines[len(lines)-1], "remove it from the cluster with pmd cluster remove and its node id, then start it with an empty data directory")
			cut := slices.ContainsFunc(p.Actions, func(a pmdlog.RepairAction) bool {
				return a.Op == pmdlog.RepairCut && a.Position == last && strings.Contains(a.Reason, "Raft applies that write's entry again")
			})
			if voided == tc.cut || noted == tc.cut || cut != tc.cut {
				t.Fatalf("plan %q: voids position %d: %v, says this copy differs: %v, cuts it for Raft: %v; want a cut: %v", lines, last, voided, noted, cut, tc.cut)
			}
			must(t, p.Apply(engine.DefaultQuarantine(dir, time.Now())))
			must(t, p.Close())

			s, err = pmd.Open(dir, opts)
			must(t, err)
			defer s.Close()
			if idx, err := lastCommitIndex(s); !tc.cut && (err != nil || idx != prev || s.LastPosition() != last) {
				t.Fatalf("after the repair the last commit record carries Raft index %d (%v), last position %d; want %d (the write before the void record's) and %d (the void record)", idx, err, s.LastPosition(), prev, last)
			}
			cfg.Store = s
			n = startLeading(t, cfg)
			defer n.Close()
			want := before
			if !tc.cut {
				want = before[:len(before)-1] // the damaged event, voided
			}
			if got := storeEvents(t, s); !reflect.DeepEqual(got, want) || s.LastPosition() != last {
				t.Fatalf("after the restart the store holds %d events up to position %d, want %d up to %d:\n%+v\nwant\n%+v",
					len(got), s.LastPosition(), len(want), last, got, want)
			}
			_, err = s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "After"})
			must(t, err)
			if got := storeEvents(t, s); len(got) != len(want)+1 || s.LastPosition() != last+1 || s.Applied() == 0 {
				t.Fatalf("after a write: %d events up to position %d, Applied %d; want %d up to %d, Applied > 0",
					len(got), s.LastPosition(), s.Applied(), len(want)+1, last+1)
			}
		})
	}
}

// TestReplayedWithoutRaftEntries: a data directory whose Raft state holds no snapshot and
// no seed entry (no entry of a cluster wrote its store) has Raft write nothing again.
func TestReplayedWithoutRaftEntries(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750))
	if above, err := Replayed(dir); err != nil || above != math.MaxUint64 {
		t.Fatalf("Replayed = %d, %v; want MaxUint64 (nothing written again)", above, err)
	}
}

// startLeading starts the node cfg describes and waits until it leads its one-node
// cluster.
func startLeading(t *testing.T, cfg Config) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	for !n.IsLeader() {
		if ctx.Err() != nil {
			n.Close()
			t.Fatal("the node does not lead its one-node cluster within 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling Raft's state: nothing to wait on
	}
	return n
}

func storeEvents(t *testing.T, s *pmd.Store) []pmd.Event {
	t.Helper()
	var out []pmd.Event
	for e, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
		must(t, err)
		out = append(out, e)
	}
	return out
}

func repairSegments(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, engine.LogDir))
	must(t, err)
	var out []string
	for _, e := range ents {
		if len(e.Name()) == 20 {
			out = append(out, filepath.Join(dir, engine.LogDir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	return fi.Size()
}

// repairFlip flips a bit near the end of the record at pos, so that its checksum fails.
func repairFlip(t *testing.T, dir string, pos uint64) {
	t.Helper()
	for _, path := range repairSegments(t, dir) {
		first, err := strconv.ParseUint(filepath.Base(path), 10, 64)
		must(t, err)
		b, err := os.ReadFile(path)
		must(t, err)
		for off, p := 0, first; off < len(b); p++ {
			size, k := binary.Uvarint(b[off:])
			if p == pos {
				b[off+k+int(size)-3] ^= 0x10
				must(t, os.WriteFile(path, b, 0o640))
				return
			}
			off += k + int(size)
		}
	}
	t.Fatalf("no record at position %d", pos)
}
