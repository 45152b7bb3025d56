package engine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A crash after Open filled the positions of records the synced log lost with void
// records, and before it rebuilt the index, must not leave the old index in place: it
// indexes the lost events at positions that now hold void records, and the log no longer
// ends below it, so nothing else tells the next Open. The rebuild marker, written and
// synced before the void records, does: the next Open rebuilds the index, reports the
// loss again, and fills any lost position still empty, as after a crash before the void
// records reached the disk (a cluster node leaves them to Raft); the marker is gone once
// the index is rebuilt.
func TestCrashBetweenVoidingLostRecordsAndTheRebuild(t *testing.T) {
	errCrash := errors.New("crash")
	for _, tc := range []struct {
		name      string
		cluster   bool
		voidsLost bool // the crash came before the void records reached the disk
		wantLast  uint64
	}{
		{"single node", false, false, 13},
		{"single node, void records lost too", false, true, 13},
		{"cluster node", true, false, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, opts, e := openNew(t, tc.cluster)
			appendEvents(t, e, "A-1", 10, true)
			size := e.Log.Segments()[0].Size
			st, err := NewBatch(e.Index, e.Log).Stream("A-1")
			if err != nil {
				t.Fatal(err)
			}
			next := st.Next // after the events the log keeps
			appendEvents(t, e, "A-1", 3, true)
			seg := e.Log.Segments()[0].Path
			if err := e.Close(); err != nil { // the index is flushed at position 13
				t.Fatal(err)
			}
			if err := os.Truncate(seg, size); err != nil { // positions 11 to 13 lost
				t.Fatal(err)
			}

			crashing := opts
			crashing.afterVoid = func() error { return errCrash }
			if _, err := Open(dir, crashing); !errors.Is(err, errCrash) {
				t.Fatalf("Open stopped with %v, want the simulated crash", err)
			}
			if tc.voidsLost {
				if err := os.Truncate(seg, size); err != nil {
					t.Fatal(err)
				}
			}
			marker := filepath.Join(dir, RebuildFile)
			if _, err := os.Stat(marker); err != nil {
				t.Errorf("after the crash, %s: %v; want it there", RebuildFile, err)
			}

			e, err = Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Log.LastPosition(); got != tc.wantLast {
				t.Errorf("the log ends at position %d, want %d", got, tc.wantLast)
			}
			if got := e.Index.Position(); got != tc.wantLast {
				t.Errorf("the index is at position %d, want %d", got, tc.wantLast)
			}
			if st, err := NewBatch(e.Index, e.Log).Stream("A-1"); err != nil || st.Next != next {
				t.Errorf("stream A-1's next version %d, %v; want %d, from the rebuilt index", st.Next, err, next)
			}
			if p := e.Problems(); len(p) != 1 || !strings.Contains(p[0], "the synced records from position 11 to 13 are lost") {
				t.Errorf("problems %q, want the loss of positions 11 to 13 reported again", p)
			}
			if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after the rebuild, %s: %v; want it gone", RebuildFile, err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}

			e, err = Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if p := e.Problems(); len(p) != 0 || e.Replayed() != 0 {
				t.Errorf("the start after: problems %q, replayed %d; want none", p, e.Replayed())
			}
		})
	}
}

// FuzzParseLostMarker: any content of the rebuild marker is read without a panic, and
// what lostMarker writes reads back as it was.
func FuzzParseLostMarker(f *testing.F) {
	f.Add([]byte("lost records up to position 13: log: corrupt: segment /d/1 offset 9: lost\n"))
	f.Add([]byte("index: damaged block\n"))
	f.Add([]byte("lost records up to position x: y"))
	f.Fuzz(func(t *testing.T, b []byte) {
		held, ce, ok := parseLostMarker(b)
		if !ok {
			return
		}
		if held == 0 || ce == nil {
			t.Fatalf("parsed %q as held %d, %v", b, held, ce)
		}
		h2, ce2, ok := parseLostMarker(lostMarker(held, ce))
		if !ok || h2 != held || ce2.Error() != ce.Error() {
			t.Fatalf("%q: round trip gave %d %v %v, want %d %v", b, h2, ce2, ok, held, ce)
		}
	})
}
