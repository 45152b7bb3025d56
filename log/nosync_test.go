package log

import (
	"fmt"
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
// in the page cache, not necessarily on disk. Open fsyncs them, so that the writes after
// it show them durable to crash repair; with NoSync it does not, and the first Sync
// does (before an index flush or a Raft snapshot counts on them), the next does not.
func TestFirstSyncAfterOpenSyncs(t *testing.T) {
	for _, tc := range []struct {
		opts  Options
		syncs int // fsyncs of the first Sync after Open
	}{{Options{}, 0}, {Options{NoSync: true}, 1}} {
		t.Run(fmt.Sprintf("NoSync %t", tc.opts.NoSync), func(t *testing.T) {
			dir := t.TempDir()
			killed := mustOpen(t, dir, tc.opts)
			want := genBatch(0, 3)
			if err := killed.WriteNoSync(want); err != nil {
				t.Fatal(err)
			}
			// killed is never closed, as a process killed with SIGKILL is not.
			l := mustOpen(t, dir, tc.opts)
			defer mustClose(t, l)
			if l.unsynced != (tc.syncs == 1) {
				t.Fatalf("after Open, unsynced is %t", l.unsynced)
			}
			syncs := 0
			l.syncWAL = func(w *wal.Log) error {
				syncs++
				return w.Sync()
			}
			checkContent(t, l, want)
			if err := l.Sync(); err != nil || syncs != tc.syncs {
				t.Fatalf("first Sync after Open: %v, %d fsyncs, want %d", err, syncs, tc.syncs)
			}
			if err := l.Sync(); err != nil || syncs != tc.syncs {
				t.Fatalf("second Sync: %v, %d fsyncs, want no more", err, syncs)
			}
		})
	}
}
