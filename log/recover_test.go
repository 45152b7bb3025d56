package log

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tidwall/wal"
)

// failNth makes the n-th batch handed to tidwall/wal (counting from 1) fail with fault,
// which gets to act on the files first (after tidwall/wal wrote the whole batch, as
// tidwall's own handle is then in the state a real failure leaves it in).
func failNth(l *Log, n int, fault func(w *wal.Log, b *wal.Batch) error) {
	calls := 0
	l.writeBatch = func(w *wal.Log, b *wal.Batch) error {
		calls++
		if calls == n {
			return fault(w, b)
		}
		return w.WriteBatch(b)
	}
}

// checkReopen checks that a copy of the log directory, as a crash right now would leave
// it, opens with exactly want.
func checkReopen(t *testing.T, l *Log, opts Options, want []Record) {
	t.Helper()
	c := mustOpen(t, copyDir(t, l.dir), opts)
	defer mustClose(t, c)
	checkContent(t, c, want)
}

// TestWriteFailsPartway fails a Write after some of its bytes reached the tail segment
// (a full disk): the error says unavailable and why, none of its records is ever seen,
// not even the whole first atomic batch of a group commit, and the next Write succeeds.
func TestWriteFailsPartway(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 3, 2)
	group := append(genBatch(5, 2), genBatch(7, 3)...)
	tail := l.Segments()[0]
	failNth(l, 1, func(w *wal.Log, b *wal.Batch) error {
		if err := w.WriteBatch(b); err != nil {
			t.Error(err)
		}
		// The first atomic batch and 5 bytes of the next made it to the file.
		truncateFile(t, tail.Path, tail.Size+int64(segBytes(group[:2]))+5)
		return &os.PathError{Op: "write", Path: tail.Path, Err: syscall.ENOSPC}
	})
	err := l.Write(group)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write: %v, want ErrUnavailable and ENOSPC", err)
	}
	if !errors.Is(l.Err(), syscall.ENOSPC) {
		t.Fatalf("Err() = %v", l.Err())
	}
	checkContent(t, l, want)
	checkFiles(t, l)
	checkReopen(t, l, opts, want) // the rollback is done: a crash cannot bring the batch back

	want = writeBatches(t, l, want, 4)
	if l.Err() != nil {
		t.Fatalf("Err() = %v after a successful Write", l.Err())
	}
	checkContent(t, l, want)
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkContent(t, l, want)
	checkFiles(t, l)
}

// TestWriteFsyncFails fails the fsync of a Write that wrote all its records and started
// new segments: the records are on disk, whole and committed, and still must never be
// served, and the segments they started are removed.
func TestWriteFsyncFails(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 300} // durable: tidwall/wal fsyncs each batch
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 2)
	segsBefore := len(l.Segments())
	failNth(l, 2, func(w *wal.Log, b *wal.Batch) error {
		if err := w.WriteBatch(b); err != nil {
			t.Error(err)
		}
		return &os.PathError{Op: "sync", Path: "tail", Err: syscall.EIO}
	})
	want = writeBatches(t, l, want, 1)
	err := l.Write(genBatch(l.LastPosition(), 12))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Write: %v, want ErrUnavailable and EIO", err)
	}
	if n := len(l.Segments()); n != segsBefore {
		t.Fatalf("%d segments after the failed write, want %d", n, segsBefore)
	}
	checkContent(t, l, want)
	checkFiles(t, l)
	checkReopen(t, l, opts, want)

	want = writeBatches(t, l, want, 12, 3)
	if len(l.Segments()) <= segsBefore {
		t.Fatal("the later writes did not start segments")
	}
	checkContent(t, l, want)
	checkFiles(t, l)
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkContent(t, l, want)
}

// TestSyncFails fails an fsync of Sync with EIO: the error says unavailable and why, Err
// reports it until a Sync succeeds, and nothing acknowledged is cut.
func TestSyncFails(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 3)
	fail := true
	l.syncWAL = func(w *wal.Log) error {
		if fail {
			fail = false
			return &os.PathError{Op: "sync", Path: "tail", Err: syscall.EIO}
		}
		return w.Sync()
	}
	err := l.Sync()
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EIO) || !errors.Is(l.Err(), syscall.EIO) {
		t.Fatalf("Sync: %v, Err: %v; want ErrUnavailable and EIO", err, l.Err())
	}
	checkContent(t, l, want)
	if err := l.Sync(); err != nil || l.Err() != nil {
		t.Fatalf("second Sync: %v, Err: %v", err, l.Err())
	}
	want = writeBatches(t, l, want, 2)
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkContent(t, l, want)
}

// TestRecoveryFails makes the recovery itself fail (tidwall/wal does not reopen) twice:
// the rollback right after the failure and the next Write's. That Write fails with
// ErrUnavailable and the cause, writes nothing, and the one after it succeeds.
func TestRecoveryFails(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 3)
	failNth(l, 1, func(w *wal.Log, b *wal.Batch) error {
		w.WriteBatch(b)
		return &os.PathError{Op: "write", Path: "tail", Err: syscall.ENOSPC}
	})
	cause := errors.New("injected: cannot open")
	opens := 0
	l.openWAL = func(dir string, o *wal.Options) (*wal.Log, error) {
		if opens++; opens <= 2 {
			return nil, cause
		}
		return wal.Open(dir, o)
	}
	if err := l.Write(genBatch(3, 2)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("first Write: %v", err)
	}
	err := l.Write(genBatch(3, 2))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, cause) || !errors.Is(l.Err(), cause) {
		t.Fatalf("second Write: %v, Err: %v; want ErrUnavailable wrapping the recovery's cause", err, l.Err())
	}
	checkContent(t, l, want)
	want = writeBatches(t, l, want, 2)
	if l.Err() != nil {
		t.Fatalf("Err() = %v", l.Err())
	}
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkContent(t, l, want)
}

// TestCloseAfterFailure closes a Log whose failed Write's rollback did not finish: Close
// cuts the failed batch before tidwall/wal's Close fsyncs it, so Open does not find it.
func TestCloseAfterFailure(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 3)
	var failed *wal.Log
	failNth(l, 1, func(w *wal.Log, b *wal.Batch) error {
		w.WriteBatch(b) // the whole batch, commit included, is in the file
		failed = w
		return &os.PathError{Op: "sync", Path: "tail", Err: syscall.EIO}
	})
	opens := 0
	l.openWAL = func(dir string, o *wal.Options) (*wal.Log, error) {
		if opens++; opens == 1 {
			return nil, errors.New("injected")
		}
		return wal.Open(dir, o)
	}
	if err := l.Write(genBatch(3, 2)); err == nil {
		t.Fatal("Write succeeded")
	}
	if failed == nil {
		t.Fatal("no batch written")
	}
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkContent(t, l, want)
}

// TestDiskFull fills a real, small file system (a 1 MiB tmpfs) until a Write fails, then
// frees space: the failure is ErrUnavailable and ENOSPC, and the next Write succeeds
// with no restart and nothing acknowledged lost. It needs root to mount the tmpfs.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	if os.Geteuid() != 0 {
		t.Skip("TestDiskFull needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	dir := filepath.Join(mnt, "log")
	opts := Options{SegmentSize: 64 << 10}
	l := mustOpen(t, dir, opts)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 600<<10), 0o640); err != nil {
		t.Fatal(err)
	}
	var want []Record
	var err error
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("the file system never filled up")
		}
		recs := genBatch(l.LastPosition(), 20)
		if err = l.Write(recs); err != nil {
			break
		}
		want = append(want, recs...)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write on a full disk: %v, want ErrUnavailable and ENOSPC", err)
	}
	if l.Err() == nil {
		t.Fatal("Err() = nil on a full disk")
	}
	t.Logf("full after %d records: %v", len(want), err)
	checkContent(t, l, want)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	want = writeBatches(t, l, want, 20, 20)
	if l.Err() != nil {
		t.Fatalf("Err() = %v after space was freed", l.Err())
	}
	checkContent(t, l, want)
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkContent(t, l, want)
}
