package engine

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// appendEvents writes n events of stream to the engine's log and applies them to its
// index, as the store's write path does.
func appendEvents(t *testing.T, e *Engine, stream string, n int) {
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
		if err := e.Log.Write(recs); err != nil {
			t.Fatal(err)
		}
		r.Position = e.Log.LastPosition()
		if err := ApplyRecord(b, &r, uuid.Nil); err != nil {
			t.Fatal(err)
		}
		if err := e.Apply(b, 1); err != nil {
			t.Fatal(err)
		}
	}
}

// A sync of the log that fails before an index flush (a write failed on a full disk and
// the log could not yet recover) does not damage the index: what it applied was synced
// when written. It must not cost a re-index of the whole log at the next start (contract
// section 7), nor show as a damaged index; the failing writes are the problem, and the
// log reports those. Only if the index did then reach the disk ahead of the log is it
// rebuilt, as after a power cut with syncing off.
func TestFailedLogSyncBeforeIndexFlushDoesNotForceAReindex(t *testing.T) {
	for _, ahead := range []bool{false, true} {
		name := "log kept everything"
		if ahead {
			name = "index went to disk ahead of the log"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
			e, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			appendEvents(t, e, "A-1", 10)
			if err := e.flush(); err != nil {
				t.Fatal(err)
			}
			appendEvents(t, e, "A-1", 3)
			seg := e.Log.Segments()[0]

			// The log's Sync fails, as it does while a failed write cannot be rolled back.
			broken, err := pmdlog.Open(filepath.Join(t.TempDir(), "log"), pmdlog.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := broken.Close(); err != nil {
				t.Fatal(err)
			}
			e.syncing.Store(broken)
			e.syncLog()
			if p := strings.Join(e.Problems(), "; "); strings.Contains(p, "index damaged") {
				t.Errorf("problems %q: a failed sync of the log is no damage of the index", p)
			}
			e.syncing.Store(e.Log)
			if err := e.Index.Flush(); err != nil { // the flush that followed the hook
				t.Fatal(err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			want := uint64(0)
			if ahead {
				// The log lost its last record, which its failed sync left unsynced:
				// the index is rebuilt from the 12 left.
				if err := os.Truncate(seg.Path, seg.Size-1); err != nil {
					t.Fatal(err)
				}
				want = 12
			}

			e, err = Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if got := e.Replayed(); got != want {
				t.Errorf("the next start replayed %d records, want %d", got, want)
			}
			if p := e.Problems(); len(p) != 0 {
				t.Errorf("problems after the next start: %q", p)
			}
		})
	}
}
