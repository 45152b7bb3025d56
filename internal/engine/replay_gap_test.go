package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestOpenAfterAKilledRebuildPastDamage: a rebuild of the index from a log holding a
// damaged record skips the record, and lets the later events of its stream keep the
// versions they carry. A rebuild killed after the index handed part of it to disk (an
// overlay fills every half million entries: a start that systemd kills for taking too
// long) leaves the index past the damaged record, without its version; the next Open
// replays from there, no longer sees the damage, and met the stream's next event as a
// version the index does not derive: Open failed at every start ("puts stream X at
// version 1, the index derives 0") until the index was removed by hand. A replay now
// notes its skipped records (SkippedFile, TestStartAfterAKilledReplayThatSkippedRecords);
// an index left without that note, as here (by an earlier version), is rebuilt from the
// log, as any index that cannot be trusted.
func TestOpenAfterAKilledRebuildPastDamage(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true, SegmentSize: 1024}
	e, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, e, "X", 1, true)  // position 1: X's version 0
	appendEvents(t, e, "Y", 30, true) // positions 2-31, sealing the first segment
	appendEvents(t, e, "X", 1, true)  // position 32: X's version 1
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Position 1 is damaged, with records after it in its segment: kept and served
	// around.
	seg := filepath.Join(dir, LogDir, "00000000000000000001")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[12] ^= 0x10
	if err := os.WriteFile(seg, b, 0o640); err != nil {
		t.Fatal(err)
	}
	// The rebuild, killed once the index held position 20 on disk.
	idxDir := filepath.Join(dir, IndexDir)
	if err := os.RemoveAll(idxDir); err != nil {
		t.Fatal(err)
	}
	l, err := pmdlog.Open(filepath.Join(dir, LogDir), pmdlog.Options{ReadOnly: true, SegmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := index.Open(idxDir, index.Options{Logger: opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	ix := indexer{b: NewBatch(idx, l)}
	err = scanAround(context.Background(), l, 1, 20, ix.apply, func(_ *pmdlog.CorruptError, pos uint64) error {
		return ix.damaged(pos)
	})
	if err != nil {
		t.Fatal(err)
	}
	if ix.skipped != 1 {
		t.Fatalf("the rebuild skipped %d damaged records, want position 1", ix.skipped)
	}
	if err := idx.Apply(ix.b); err != nil {
		t.Fatal(err)
	}
	if err := idx.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	e, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("Open after the killed rebuild: %v", err)
	}
	defer e.Close()
	st, err := e.Index.Stream("X")
	if err != nil {
		t.Fatal(err)
	}
	if st.Next != 2 {
		t.Errorf("X's next version is %d, want 2", st.Next)
	}
	if len(e.Damage()) == 0 {
		t.Errorf("the damaged record at position 1 is not reported")
	}
}
