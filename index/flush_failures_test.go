package index

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlushFailureCounted: a hand-off that fails in Flush (the daemon's flush every few
// seconds, on a full disk) counts in Metrics.HandOffFailures as one of the background
// loop does: only the loop's counted, so while writes were refused (no batch, no loop
// hand-off) pmd_index_handoff_failures_total stayed 0 beside a frozen overlay, and the
// alert docs/api.md gives (frozen overlays with the failures rising) never fired.
func TestFlushFailureCounted(t *testing.T) {
	x := openTest(t, t.TempDir())
	x.ov.retry = time.Hour
	errFull := errors.New("no space left on device (test)")
	var failing atomic.Bool // the hand-off loop reads fail too
	failing.Store(true)
	x.ov.fail = func() error {
		if failing.Load() {
			return errFull
		}
		return nil
	}
	b := x.NewBatch()
	if _, err := b.AddEvent(1, testID(1), "Order$1", "Created"); err != nil {
		t.Fatal(err)
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	for try := int64(1); try <= 2; try++ {
		if err := x.Flush(); !errors.Is(err, errFull) {
			t.Fatalf("Flush() = %v while hand-offs fail, want %v", err, errFull)
		}
		if got := x.Metrics(); got.HandOffFailures != try || got.OverlaysFrozen != 1 {
			t.Fatalf("after %d failed Flushes: HandOffFailures %d, OverlaysFrozen %d; want %d and 1", try, got.HandOffFailures, got.OverlaysFrozen, try)
		}
	}
	failing.Store(false)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := x.Metrics(); got.HandOffFailures != 2 || got.OverlaysFrozen != 0 {
		t.Fatalf("after a Flush that succeeded: %+v", got)
	}
}
