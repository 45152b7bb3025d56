package pmd_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestCopyAfterARestartPastAGoneRecord: a cluster node catching up copies another
// replica's records in chunks, and a gone record (the leader scavenged the event) lets the
// later events of its stream keep the versions they carry. The store indexed the copies
// with one Indexer for its life, which alone remembered the skip: a node restarted between
// two chunks (stopped, or killed after its index went to disk) met the next event of that
// stream as a disagreement with the log: the next copy failed, and the store with it
// ("puts stream X$1 at version 1, the index derives 0"), and a start that replayed such a
// copy rebuilt the whole index. index.skipped now notes the skip on a cluster node for
// good.
func TestCopyAfterARestartPastAGoneRecord(t *testing.T) {
	ctx := context.Background()
	// The leader's log: X$1's events 0 and 1 among padding, truncated before 2 and
	// scavenged (event 0's record gone, event 1's erased), then X$1's event 2.
	src, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 2048, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	add := func(stream string, n int) {
		for range n {
			if _, err := src.Append(ctx, stream, pmd.Any, pmd.EventData{Type: "T"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("P$1", 20)
	add("X$1", 2)
	if err := src.SetRetention(ctx, "X$1", pmd.Retention{TruncateBefore: 2}); err != nil {
		t.Fatal(err)
	}
	add("P$1", 80)
	if res, err := src.Scavenge(ctx, pmd.ScavengeOptions{}); err != nil || res.Gone == 0 {
		t.Fatalf("scavenge: %+v, %v; want X$1's first event gone", res, err)
	}
	add("X$1", 1)
	var recs []pmdlog.Record
	if err := src.ScanRecords(ctx, 1, src.LastPosition(), func(r *pmdlog.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	want := allEvents(t, src)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	const cut = 21 // the first chunk: up to the gone record of X$1's event 0, before its event 1
	if recs[21-1].Kind != pmdlog.KindGone || !recs[cut-1].Commit {
		t.Fatalf("position 21 is a %s record, %d's commit flag %v: the leader's log is not as the test wants", recs[20].Kind, cut, recs[cut-1].Commit)
	}
	first, rest := recs[:cut], recs[cut:]

	for _, tc := range []struct {
		name string
		// between copies the first chunk and then the rest to the node's store in dir,
		// restarting it as the case says; open opens it.
		between func(t *testing.T, dir string, open func() *pmd.Store)
	}{
		{"a restart between two copies", func(t *testing.T, dir string, open func() *pmd.Store) {
			copyClose(t, open(), first)
			copyClose(t, open(), rest)
		}},
		{"two restarts between two copies", func(t *testing.T, dir string, open func() *pmd.Store) {
			copyClose(t, open(), first)
			copyClose(t, open(), nil)
			copyClose(t, open(), rest)
		}},
		{"a start that replays the next copy", func(t *testing.T, dir string, open func() *pmd.Store) {
			copyClose(t, open(), first)
			// The index as the node's kill left it: on disk up to the first chunk,
			// the second one in the log only.
			held := filepath.Join(t.TempDir(), "index")
			copyDir(t, filepath.Join(dir, engine.IndexDir), held)
			copyClose(t, open(), rest)
			if err := os.RemoveAll(filepath.Join(dir, engine.IndexDir)); err != nil {
				t.Fatal(err)
			}
			copyDir(t, held, filepath.Join(dir, engine.IndexDir))
			s := open()
			if got := s.Stats().Replayed; got != uint64(len(rest)) {
				t.Errorf("the start replayed %d records, want the %d of the second copy", got, len(rest))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// A cluster node's data directory holds its Raft state.
			if err := os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			open := func() *pmd.Store {
				t.Helper()
				s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 2048, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.SetReplicator((&raftish{}).fn); err != nil {
					t.Fatal(err)
				}
				return s
			}
			tc.between(t, dir, open)
			if strings.Contains(logs.String(), "disagrees") {
				t.Errorf("a start rebuilt the index:\n%s", logs.String())
			}
			s := open()
			defer s.Close()
			if got := allEvents(t, s); !reflect.DeepEqual(got, want) {
				t.Errorf("the node holds %d events, the leader %d:\n%+v\n%+v", len(got), len(want), got, want)
			}
			if st, err := s.StreamInfo("X$1"); err != nil || st.Version != 2 {
				t.Errorf("X$1: %+v, %v; want version 2", st, err)
			}
		})
	}
}

// copyClose copies recs to s (a replica) and closes it.
func copyClose(t *testing.T, s *pmd.Store, recs []pmdlog.Record) {
	t.Helper()
	if err := s.CopyRecords(context.Background(), recs); err != nil {
		s.Close()
		t.Fatalf("copy of positions %d to %d: %v", recs[0].Position, recs[len(recs)-1].Position, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
