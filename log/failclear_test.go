package log

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/tidwall/wal"
)

// TestSyncDoesNotClearWriteFailure fails a Write with ENOSPC and then Syncs: the fsync
// succeeds (a full disk fsyncs what it holds), but it proves nothing about writes, so
// Err still reports the failure, as a health check must while the disk stays full. The
// next successful Write clears it.
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
			for i := range 2 {
				if err := l.Sync(); err != nil {
					t.Fatalf("Sync %d: %v", i+1, err)
				}
				if !errors.Is(l.Err(), syscall.ENOSPC) {
					t.Fatalf("Err() = %v after Sync %d, want the Write's ENOSPC until a Write succeeds", l.Err(), i+1)
				}
			}
			checkContent(t, l, want)
			want = writeBatches(t, l, want, 2)
			if l.Err() != nil {
				t.Fatalf("Err() = %v after a successful Write", l.Err())
			}
			checkContent(t, l, want)
		})
	}
}
