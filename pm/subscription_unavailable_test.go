package pm_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/pm"
)

// TestSubscriptionWaitsOutAFullDisk: a store that cannot write (a full disk) refuses the
// subscription's writes as unavailable, and recovers by itself once space is freed. The
// subscription waits that out, as the store does: a position not written is written
// later, a failure waits for its record to land before the event is attempted again,
// and Run goes on (it ended with the write's error, which in pmd serve shut the whole
// daemon down, reads included, and again at each restart while the disk stayed full).
func TestSubscriptionWaitsOutAFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	for _, tc := range []struct {
		name   string
		fail   bool   // the first attempt fails: its failure record must land first
		record string // the record the subscription writes once space is freed
	}{
		{name: "position", record: "SubscriptionPosition"},
		{name: "failure record", fail: true, record: "EventDeliveryFailed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, free := fullDiskStore(t, func(s *pmd.Store) {
				if _, err := s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
					t.Fatal(err)
				}
			})
			delivered := make(chan struct{})
			var once sync.Once
			var mu sync.Mutex
			attempts := 0
			deliver := func(context.Context, pmd.Event) error {
				mu.Lock()
				defer mu.Unlock()
				attempts++
				if tc.fail && attempts == 1 {
					return errors.New("receiver down")
				}
				once.Do(func() { close(delivered) })
				return nil
			}
			warned := make(chan struct{})
			var warnOnce sync.Once
			logger := slog.New(&watchHandler{substr: "the store cannot write", seen: func() { warnOnce.Do(func() { close(warned) }) }})
			sub, err := pm.NewSubscription(s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{
				Deliver: deliver, SaveEvery: time.Millisecond, RetryMin: time.Millisecond, RetryMax: time.Millisecond, Logger: logger,
			})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- sub.Run(runCtx) }()

			deadline := time.After(30 * time.Second)
			untilWhileRunning(t, warned, done, deadline, "the subscription met the full disk (it must wait for space)")
			free()
			untilWhileRunning(t, delivered, done, deadline, "the event was delivered once space was freed")
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for !hasRecord(t, s, pm.SubscriptionStream("billing"), tc.record) {
				select {
				case <-tick.C:
				case err := <-done:
					t.Fatalf("Run returned %v once space was freed", err)
				case <-deadline:
					t.Fatalf("no %s in the subscription's stream once space was freed", tc.record)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

// untilWhileRunning waits for ready while Run runs (done gets what it returns), failing
// the test with what if Run returns first or deadline comes: the test's steps wait for
// the store to meet the full disk, or for a delivery once space was freed.
func untilWhileRunning(t *testing.T, ready <-chan struct{}, done <-chan error, deadline <-chan time.Time, what string) {
	t.Helper()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned %v before %s", err, what)
	case <-deadline:
		t.Fatalf("%s: not within the deadline", what)
	}
}

// fullDiskStore opens a store on a small tmpfs, lets before write to it, then fills the
// file system until the log cannot take even a small record: the store refuses every
// write as unavailable until free is called. It skips the test where mounting is refused.
func fullDiskStore(t *testing.T, before func(*pmd.Store)) (s *pmd.Store, free func()) {
	t.Helper()
	s, fill, free := smallDiskStore(t)
	before(s)
	if err := fill(); err != nil {
		t.Fatal(err)
	}
	return s, free
}

// smallDiskStore opens a store on a small tmpfs. fill fills the file system until the log
// cannot take even a small record (it may be called off the test's goroutine): the store
// refuses every write as unavailable until free is called. It skips the test where
// mounting is refused.
func smallDiskStore(t *testing.T) (s *pmd.Store, fill func() error, free func()) {
	t.Helper()
	mnt := damagetest.SmallDisk(t, "4m")
	s, err := pmd.Open(filepath.Join(mnt, "data"), pmd.Options{Logger: quiet(), SegmentSize: 256 << 10, NoScrub: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	filler := filepath.Join(mnt, "filler")
	var once sync.Once
	free = func() {
		once.Do(func() {
			if err := os.Remove(filler); err != nil {
				t.Error(err)
			}
		})
	}
	// Before the store closes (cleanups run last first): a store closing on a full disk
	// waits for its index to flush.
	t.Cleanup(free)
	fill = func() error {
		if err := os.WriteFile(filler, make([]byte, 2<<20), 0o640); err != nil {
			return err
		}
		// Large pads fill the file system, small ones the last page of the log, so that
		// no record of the subscription fits.
		for _, pad := range []int{500, 1} {
			for i := 0; ; i++ {
				if i > 100_000 {
					return errors.New("the file system never filled up")
				}
				_, err := s.Append(context.Background(), "Pad$1", pmd.Any, pmd.EventData{Type: "Pad", Data: map[string]any{"p": strings.Repeat("x", pad)}})
				if errors.Is(err, pmd.ErrUnavailable) {
					break
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	return s, fill, free
}

// hasRecord reports whether stream holds an event of type typ.
func hasRecord(t *testing.T, s *pmd.Store, stream, typ string) bool {
	t.Helper()
	for e, err := range s.ReadStream(context.Background(), stream, pmd.ReadOptions{}) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == typ {
			return true
		}
	}
	return false
}

// watchHandler is a slog.Handler that calls seen for every record whose message holds
// substr, and drops every record.
type watchHandler struct {
	substr string
	seen   func()
}

func (h *watchHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *watchHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.seen()
	}
	return nil
}

func (h *watchHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *watchHandler) WithGroup(string) slog.Handler      { return h }
