package engine

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// appendEvents writes n events of stream to the engine's log, synced (as a single node
// does) or not (as a cluster node does), and applies them to its index, as the store's
// write path does.
// openNew opens an engine on a new directory, a cluster node's (with raft/) if cluster,
// returning the directory and options to open it again.
func openNew(t *testing.T, cluster bool) (string, Options, *Engine) {
	t.Helper()
	dir := t.TempDir()
	if cluster {
		if err := os.Mkdir(filepath.Join(dir, RaftDir), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
	e, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return dir, opts, e
}

func appendEvents(t *testing.T, e *Engine, stream string, n int, synced bool) {
	t.Helper()
	for range n {
		b := NewBatch(e.Index, e.Log)
		st, err := b.Stream(stream)
		if err != nil {
			t.Fatal(err)
		}
		r := pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true,
			Event: pmdlog.Event{ID: uuid.New(), Stream: stream, Version: st.Next, Type: "T"}}
		recs := []pmdlog.Record{r}
		write := e.Log.Write
		if !synced {
			write = e.Log.WriteNoSync
		}
		if err := write(recs); err != nil {
			t.Fatal(err)
		}
		r.Position = e.Log.LastPosition()
		if err := ApplyRecord(b, &r, uuid.Nil); err != nil {
			t.Fatal(err)
		}
		if err := e.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
}

// A sync of the log that fails before an index flush (a write failed on a full disk and
// the log could not yet recover) does not damage the index: what it applied was written
// before. It must not cost a re-index of the whole log at the next start (contract
// section 7), nor show as a damaged index; the failing writes are the problem, and the
// log reports those. A cluster node writes its log without fsync, so its index may then
// reach the disk ahead of the log: index.ahead says so, the next start rebuilds the index
// only if it is, as after a power cut with syncing off, and a later sync that succeeds
// removes the file. A single node synced every record it wrote, so its index cannot be
// ahead: no index.ahead, and a log that later lost a record the index held is still
// reported as damaged, its position kept by a void record.
func TestFailedLogSyncBeforeIndexFlushDoesNotForceAReindex(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cluster   bool // a cluster node: raft/ exists, the log written without fsync
		recovered bool // a later sync of the log succeeds before Close
		cut       bool // the log then loses its last record
		wantAhead bool // index.ahead exists after the failed sync
		// after the next Open
		wantReplayed uint64
		wantLast     uint64
		wantProblem  string // "" for none
	}{
		{name: "single node, log kept everything", wantLast: 13},
		{name: "single node, log lost a record the index held", cut: true,
			wantReplayed: 13, wantLast: 13, wantProblem: "the synced records from position 13 to 13 are lost"},
		{name: "cluster node, log kept everything", cluster: true, wantAhead: true, wantLast: 13},
		{name: "cluster node, index went to disk ahead of the log", cluster: true, cut: true, wantAhead: true,
			wantReplayed: 12, wantLast: 12},
		{name: "cluster node, a later sync succeeded", cluster: true, recovered: true, wantAhead: true, wantLast: 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, opts, e := openNew(t, tc.cluster)
			appendEvents(t, e, "A-1", 10, !tc.cluster)
			if err := e.flush(); err != nil {
				t.Fatal(err)
			}
			appendEvents(t, e, "A-1", 3, !tc.cluster)
			seg := e.Log.Segments()[0]

			// The log's Sync fails, as it does while a failed write cannot be rolled
			// back, and the index flush that syncs it first goes on.
			broken, err := pmdlog.Open(filepath.Join(t.TempDir(), "log"), pmdlog.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := broken.Close(); err != nil {
				t.Fatal(err)
			}
			e.syncing.Store(broken)
			if err := e.Index.Flush(); err != nil {
				t.Fatal(err)
			}
			e.syncing.Store(e.Log)
			if p := strings.Join(e.Problems(), "; "); strings.Contains(p, "index damaged") {
				t.Errorf("problems %q: a failed sync of the log is no damage of the index", p)
			}
			aheadPath := filepath.Join(dir, AheadFile)
			if _, err := os.Stat(aheadPath); (err == nil) != tc.wantAhead {
				t.Errorf("after the failed sync, %s: %v; want it there: %v", AheadFile, err, tc.wantAhead)
			}
			if tc.recovered {
				e.syncLog()
				if _, err := os.Stat(aheadPath); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("after a sync that succeeded, %s: %v; want it gone", AheadFile, err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.cut {
				// The log loses its last record: unsynced on a cluster node, which a
				// power cut explains; synced on a single node, which none does.
				if err := os.Truncate(seg.Path, seg.Size-1); err != nil {
					t.Fatal(err)
				}
			}

			e, err = Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if got := e.Replayed(); got != tc.wantReplayed {
				t.Errorf("the next start replayed %d records, want %d", got, tc.wantReplayed)
			}
			if got := e.Log.LastPosition(); got != tc.wantLast {
				t.Errorf("the log ends at position %d, want %d", got, tc.wantLast)
			}
			p := e.Problems()
			switch {
			case tc.wantProblem == "" && len(p) != 0:
				t.Errorf("problems after the next start: %q, want none", p)
			case tc.wantProblem != "" && (len(p) != 1 || !strings.Contains(p[0], tc.wantProblem)):
				t.Errorf("problems after the next start: %q, want one saying %q", p, tc.wantProblem)
			}
			if _, err := os.Stat(aheadPath); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after the next start, %s: %v; want it gone", AheadFile, err)
			}
		})
	}
}
