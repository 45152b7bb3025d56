package log

import (
	"testing"

	"github.com/tidwall/wal"
)

// TestWriteNoSyncSkipsTheFsync: Write fsyncs the tail once, WriteNoSync not at all, and
// its records are served at once and kept by a Close (which syncs) and an Open. Sync
// fsyncs only what a WriteNoSync left unsynced.
func TestWriteNoSyncSkipsTheFsync(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	syncs := 0
	l.syncWAL = func(w *wal.Log) error {
		syncs++
		return w.Sync()
	}
	want := writeBatches(t, l, nil, 2)
	if syncs != 1 {
		t.Fatalf("Write: %d fsyncs, want 1", syncs)
	}
	batch := genBatch(l.LastPosition(), 3)
	if err := l.WriteNoSync(batch); err != nil {
		t.Fatal(err)
	}
	want = append(want, batch...)
	if syncs != 1 {
		t.Fatalf("WriteNoSync: %d fsyncs, want none", syncs)
	}
	checkContent(t, l, want)
	if err := l.Sync(); err != nil || syncs != 2 {
		t.Fatalf("Sync: %v, %d fsyncs", err, syncs)
	}
	// With every record synced, Sync has nothing to do (an index flush of a store that
	// syncs every write costs no fsync).
	if err := l.Sync(); err != nil || syncs != 2 {
		t.Fatalf("Sync after a Sync: %v, %d fsyncs, want none more", err, syncs)
	}
	want = writeBatches(t, l, want, 1)
	if err := l.Sync(); err != nil || syncs != 3 {
		t.Fatalf("Sync after a Write: %v, %d fsyncs, want only the Write's", err, syncs)
	}

	mustClose(t, l)
	l = mustOpen(t, dir, Options{})
	defer mustClose(t, l)
	checkContent(t, l, want)
}

// TestFirstSyncAfterOpenSyncs: a process killed after a WriteNoSync leaves its records
// in the page cache, not necessarily on disk; the first Sync of the next Open fsyncs
// them (before an index flush or a Raft snapshot counts on them), the next does not.
func TestFirstSyncAfterOpenSyncs(t *testing.T) {
	dir := t.TempDir()
	killed := mustOpen(t, dir, Options{})
	want := genBatch(0, 3)
	if err := killed.WriteNoSync(want); err != nil {
		t.Fatal(err)
	}
	// killed is never closed, as a process killed with SIGKILL is not.
	l := mustOpen(t, dir, Options{})
	defer mustClose(t, l)
	syncs := 0
	l.syncWAL = func(w *wal.Log) error {
		syncs++
		return w.Sync()
	}
	checkContent(t, l, want)
	if err := l.Sync(); err != nil || syncs != 1 {
		t.Fatalf("first Sync after Open: %v, %d fsyncs, want 1", err, syncs)
	}
	if err := l.Sync(); err != nil || syncs != 1 {
		t.Fatalf("second Sync: %v, %d fsyncs, want no more", err, syncs)
	}
}
