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

// TestAStoreStoppedUntilARestartFailsASubscription: a store that stopped writing until
// it is opened again (a cluster node's, which could not apply a write) refuses every
// write as unavailable, as a full disk does, but never recovers by itself. Whatever the
// subscription has to write then (its position, the record of a failed delivery), Run
// fails with the store's error, matching pmd.ErrNeedsRestart, so that pmd serve exits
// for its supervisor to restart it, rather than wait for ever with a WARN to free the
// disk. (The manager's writes: TestAStoreStoppedUntilARestartFailsRun.)
func TestAStoreStoppedUntilARestartFailsASubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	for _, tc := range []struct {
		name string
		// failing: the store stops while the event is delivered, which fails, so that
		// the record of the failure is the write refused; else it stops before the
		// subscription starts, and its position is.
		failing bool
		refused string // what Run's error says was refused
	}{
		{name: "position", refused: "write the position:"},
		{name: "failure record", failing: true, refused: "record a delivery:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, stop := stoppingStore(t)
			put(t, s, "Order$1", "E", 1)
			if !tc.failing {
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}
			var once atomic.Bool
			deliver := func(context.Context, pmd.Event) error {
				if tc.failing && once.CompareAndSwap(false, true) {
					if err := stop(); err != nil {
						t.Error(err)
					}
					return errors.New("receiver down")
				}
				return nil
			}
			// A WARN that the store cannot write says that the subscription took the
			// store's refusal for a full disk, and waits, or writes later.
			waiting := make(chan struct{})
			var warnOnce sync.Once
			logger := slog.New(&watchHandler{substr: "the store cannot write now", seen: func() { warnOnce.Do(func() { close(waiting) }) }})
			sub, err := pm.NewSubscription(s, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{
				Deliver: deliver, SaveEvery: time.Millisecond, RetryMin: time.Millisecond, RetryMax: time.Millisecond, Logger: logger,
			})
			if err != nil {
				t.Fatal(err)
			}
			runFailsNeedingRestart(t, context.Background(), sub.Run, waiting, tc.refused)
		})
	}
}
