package log

import (
	"testing"
	"time"

	"github.com/tidwall/wal"
)

// TestLastSyncIsTheDisksShare: LastSync reports the time a Write spent in its fsync,
// which a caller uses to tell a slow disk from slow code; a write that does not sync
// reports none.
func TestLastSyncIsTheDisksShare(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{})
	defer mustClose(t, l)
	const slow = 30 * time.Millisecond
	l.syncWAL = func(w *wal.Log) error {
		time.Sleep(slow) // a disk that takes this long to sync
		return w.Sync()
	}
	if err := l.Write(genBatch(l.LastPosition(), 2)); err != nil {
		t.Fatal(err)
	}
	if got := l.LastSync(); got < slow {
		t.Fatalf("LastSync after a Write whose fsync took %v: %v", slow, got)
	}
	if err := l.WriteNoSync(genBatch(l.LastPosition(), 2)); err != nil {
		t.Fatal(err)
	}
	if got := l.LastSync(); got != 0 {
		t.Fatalf("LastSync after WriteNoSync: %v, want 0", got)
	}
}
