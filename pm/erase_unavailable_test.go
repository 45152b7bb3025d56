package pm_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestEraseAgainWaitsOutAFullDisk: an erasure that lands between a worker's check for
// one and its decision write lets the write through, after it; the worker then erases
// the stream again, so that what it decided on the erased state is erased too. A disk
// that fills in between refuses that erasure as unavailable: the worker waits for space,
// the process holding, as for its decision write, rather than fail Run (which shut pmd
// serve down, and left the decision unerased), and erases once space is freed.
func TestEraseAgainWaitsOutAFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	ctx := context.Background()
	s, fill, free := smallDiskStore(t)
	var armed, erased, filled atomic.Bool
	beforeDecisionWrite := func(stream string) {
		if stream == "O$1" && armed.Load() && erased.CompareAndSwap(false, true) {
			if err := s.EraseStream(ctx, stream); err != nil {
				t.Error(err)
			}
		}
	}
	// Once the decision written after the erasure landed, before the worker finds the
	// erasure and erases again.
	afterProcessWrite := func(stream string) {
		if stream == "O$1" && erased.Load() && filled.CompareAndSwap(false, true) {
			if err := fill(); err != nil {
				t.Error(err)
			}
			// An erasure's record is smaller than the pads fill appends: erasures of a
			// stream whose name is as long as O$1's fill what they leave.
			for i := 0; ; i++ {
				err := s.EraseStream(ctx, "P$1")
				if errors.Is(err, pmd.ErrUnavailable) {
					break
				}
				if err != nil || i > 100_000 {
					t.Errorf("erasing P$1 to fill the disk: %v (%d erasures)", err, i)
					break
				}
			}
		}
	}
	waiting := make(chan struct{})
	var once sync.Once
	logger := slog.New(&watchHandler{substr: "erased again", seen: func() { once.Do(func() { close(waiting) }) }})
	// No Deliver, no snapshots, and the checkpoint far off: the erasure is the only write
	// that meets the full disk.
	m, err := pm.New(s, purchaseDef(), pm.Options{SnapshotEvery: -1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	pm.SetBeforeDecisionWrite(m, beforeDecisionWrite)
	pm.SetAfterProcessWrite(m, afterProcessWrite)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	idle := func() {
		t.Helper()
		waitCtx, stop := context.WithTimeout(ctx, 30*time.Second)
		defer stop()
		if err := m.WaitIdle(waitCtx); err != nil {
			t.Fatalf("WaitIdle: %v", err)
		}
	}

	if _, err := s.Append(ctx, "P$1", pmd.NoStream, pmd.EventData{Type: "P"}); err != nil {
		t.Fatal(err)
	}
	appendFact(t, s, purchaseFact("OrderPlaced", "1"))
	idle()
	armed.Store(true)
	appendFact(t, s, purchaseFact("OrderPaid", "1"))
	select {
	case <-waiting:
	case err := <-done:
		done <- err // for the deferred stop, which reports it
		t.Fatalf("Run returned %v when erasing again met the full disk; want it to wait for space", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the erasure again never met the full disk")
	}
	ship := false
	for _, e := range processStream(t, s, "O$1") {
		if e.Type == "Ship" && !e.Erased {
			ship = true
		}
	}
	if !ship {
		t.Fatal("no unerased Ship record while the erasure waits: the test does not test the wait")
	}
	free()
	idle()
	for _, e := range processStream(t, s, "O$1") {
		if !e.Link && !e.Erased {
			t.Errorf("O$1 version %d (%s) reads not erased once space was freed", e.Version, e.Type)
		}
	}
	if c := m.Counts(); c != (pm.Counts{Completed: 1}) {
		t.Errorf("Counts = %+v, want 1 completed", c)
	}
	v, err := m.Process(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Erased || v.Status != pm.StatusCompleted {
		t.Errorf("process once space was freed: erased %t, status %s; want erased, completed", v.Erased, v.Status)
	}
}
