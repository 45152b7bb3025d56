package engine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A repair that cuts the log below the position the index held on disk cuts synced,
// acknowledged records; it removes the index, which alone said so. It leaves the rebuild
// marker that Open writes for such a loss, so the next start fills the lost positions
// with void records and reports the loss, as it does when it finds the loss itself: the
// repair forgot it, the store reported healthy, and the next writes took the positions
// of the lost events again, which a subscriber past them never reads.
func TestRepairBelowTheIndexKeepsTheLostPositions(t *testing.T) {
	dir, opts, e := openNew(t, false)
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
	// Position 11's entry torn, 12 and 13 gone: the repair cuts the torn bytes.
	if err := os.Truncate(seg, size+5); err != nil {
		t.Fatal(err)
	}

	p, err := PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Join(p.Lines(), "\n")
	if !strings.Contains(lines, "fill positions 11 to 13 with void records") || !strings.Contains(lines, "with syncing off, a power cut explains it") {
		t.Errorf("the plan says\n%s\nwant it to say that the next start fills positions 11 to 13 with void records", lines)
	}
	if err := p.Apply(filepath.Join(t.TempDir(), "q")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	e, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Log.LastPosition(); got != 13 {
		t.Errorf("the log ends at position %d, want 13: the lost positions filled", got)
	}
	if st, err := NewBatch(e.Index, e.Log).Stream("A-1"); err != nil || st.Next != next {
		t.Errorf("stream A-1's next version %d, %v; want %d", st.Next, err, next)
	}
	if p := e.Problems(); len(p) != 1 || !strings.Contains(p[0], "the synced records from position 11 to 13 are lost (with syncing off, a power cut explains it)") {
		t.Errorf("problems %q, want the loss of positions 11 to 13 reported, saying that syncing off explains it", p)
	}
	if _, err := os.Stat(filepath.Join(dir, RebuildFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after the start, %s: %v; want it gone", RebuildFile, err)
	}
	appendEvents(t, e, "A-1", 1, true)
	if got := e.Log.LastPosition(); got != 14 {
		t.Errorf("the next event is at position %d, want 14", got)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}
