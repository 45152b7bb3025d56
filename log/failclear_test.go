package log

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tidwall/wal"
)

// TestSyncDoesNotClearWriteFailure fails a Write with ENOSPC and then Syncs: the fsync
// succeeds (a full disk fsyncs what it holds), but it proves nothing about writes, so
// Err still reports the failure while the probe write fails, as a health check must while
// the disk stays full. A Sync whose probe goes through clears it (the disk was freed: a
// degraded store that no client writes to recovers), and so does a successful Write.
func TestSyncDoesNotClearWriteFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"durable", Options{}},
		{"nosync", Options{NoSync: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustOpen(t, t.TempDir(), tc.opts)
			defer mustClose(t, l)
			want := writeBatches(t, l, nil, 3)
			failNth(l, 1, func(w *wal.Log, b *wal.Batch) error {
				return &os.PathError{Op: "write", Path: "tail", Err: syscall.ENOSPC}
			})
			if err := l.Write(genBatch(l.LastPosition(), 2)); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Write: %v, want ENOSPC", err)
			}
			full := &os.PathError{Op: "write", Path: "probe", Err: syscall.ENOSPC}
			l.probe = func() error { return full }
			for i := range 2 {
				if err := l.Sync(); err != nil {
					t.Fatalf("Sync %d: %v", i+1, err)
				}
				if !errors.Is(l.Err(), syscall.ENOSPC) {
					t.Fatalf("Err() = %v after Sync %d, want the Write's ENOSPC until a Write succeeds", l.Err(), i+1)
				}
			}
			checkContent(t, l, want)
			l.probe = l.probeWrite // the disk was freed
			if err := l.Sync(); err != nil || l.Err() != nil {
				t.Fatalf("Sync with a probe that goes through: %v, Err() = %v, want both nil", err, l.Err())
			}
			want = writeBatches(t, l, want, 2)
			if l.Err() != nil {
				t.Fatalf("Err() = %v after a successful Write", l.Err())
			}
			checkContent(t, l, want)
			if _, err := os.Stat(filepath.Join(l.dir, sidecarDir, probeName)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the probe file is left behind: %v", err)
			}
		})
	}
}
