package pm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// stoppingStore opens a store on a small tmpfs as a cluster node's: a replicator applies
// each write at once (ApplyWrites), as a node applies what Raft committed. stop fills
// the file system: the write the store cannot apply then stops it until it is opened
// again, and that write and every later one are refused as unavailable, matching
// pmd.ErrNeedsRestart, however much space is freed.
func stoppingStore(t *testing.T) (s *pmd.Store, stop func() error) {
	t.Helper()
	s, fill, _ := smallDiskStore(t)
	var mu sync.Mutex
	var applied uint64
	first, err := s.SetReplicator(func(ctx context.Context, w []byte) (pmd.WriteResult, error) {
		mu.Lock()
		defer mu.Unlock()
		applied++
		o := s.ApplyWrites(ctx, []pmd.ReplicatedWrite{{Index: applied, Timestamp: time.Now().UnixNano(), Write: w}})
		return o[0].Result, o[0].Err
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	applied = first
	mu.Unlock()
	stop = func() error {
		if err := fill(); err != nil {
			return err
		}
		_, err := s.Append(context.Background(), "Pad$1", pmd.Any, pmd.EventData{Type: "Pad"})
		if !errors.Is(err, pmd.ErrNeedsRestart) {
			return fmt.Errorf("an append once the disk filled: %v, want the store stopped (ErrNeedsRestart)", err)
		}
		return nil
	}
	return s, stop
}

// TestAStoreStoppedUntilARestartFailsRun: a store that stopped writing until it is
// opened again (here a cluster node's, which could not apply a write) refuses every
// write as unavailable, as a full disk does, but never recovers by itself. Whatever the
// manager has to write then (its decision, the record of a delivery attempt, its
// checkpoint, a snapshot), Run fails with the store's error, matching
// pmd.ErrNeedsRestart, so that pmd serve exits for its supervisor to restart it, rather
// than wait for ever with a WARN to free the disk. A snapshot refused so was taken for a
// full disk: skipped with that WARN, to be written later, which never came.
func TestAStoreStoppedUntilARestartFailsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	const def = "CateringMatch"
	for _, tc := range []struct {
		name string
		// handled: a first manager (no Deliver) handles the facts before the store
		// stops, so that the manager run then has the command to deliver only.
		handled bool
		// stale: a checkpoint at position 1 is appended then, so that the manager reads
		// the facts again, finds them linked, and has only its checkpoint to write.
		stale bool
		// snapshot: the store stops once the process's one event and decision are
		// written, so that its snapshot, due at every event, is the write refused.
		snapshot bool
		// delivering: the store stops while the command is delivered, so that the record
		// of the attempt is the write refused.
		delivering bool
		// refused is what Run's error says was refused.
		refused string
	}{
		{name: "decision", refused: "write " + def + "$o1:"},
		{name: "delivery record", delivering: true, refused: def + ".deliveries$o1: record delivery:"},
		{name: "checkpoint", handled: true, stale: true, refused: "write checkpoint:"},
		{name: "snapshot", snapshot: true, refused: "write " + def + ".snapshots$o1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, stop := stoppingStore(t)
			appendFact(t, s, customer("o1"))
			if !tc.snapshot {
				// Else the process's one event is one write, then its snapshot: with two,
				// the second write would be refused first when both are handled at once.
				appendFact(t, s, caterer("o1"))
			}
			if tc.handled {
				first := start(t, s, matchDef(def), pm.Options{})
				first.idle(t)
				first.stop(t)
			}
			if tc.stale {
				if _, err := s.Append(ctx, def+".checkpoint", pmd.Any, pmd.EventData{Type: "Checkpoint", Data: map[string]any{
					"position": 1, "types": []string{"CatererConfirmedMenu", "CustomerConfirmedMenu"},
				}}); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.snapshot && !tc.delivering {
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}

			// A WARN to free the disk says that the manager took the store's refusal
			// for a full disk, and waits, or writes later.
			waiting := make(chan struct{})
			var warnOnce sync.Once
			logger := slog.New(&watchHandler{substr: "the store cannot write now", seen: func() { warnOnce.Do(func() { close(waiting) }) }})
			opts := pm.Options{Logger: logger, RetryMin: time.Millisecond, RetryMax: time.Millisecond}
			switch {
			case tc.stale:
				opts.CheckpointEvery = 1
			case tc.snapshot:
				opts.SnapshotEvery = 1
			default:
				var once atomic.Bool
				opts.Deliver = func(context.Context, pm.Command) error {
					if tc.delivering && once.CompareAndSwap(false, true) {
						if err := stop(); err != nil {
							t.Error(err)
						}
					}
					return nil
				}
			}
			m, err := pm.New(s, matchDef(def), opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.snapshot {
				var once atomic.Bool
				pm.SetAfterProcessWrite(m, func(stream string) {
					if stream == def+"$o1" && once.CompareAndSwap(false, true) {
						if err := stop(); err != nil {
							t.Error(err)
						}
					}
				})
			}
			runFailsNeedingRestart(t, ctx, m.Run, waiting, tc.refused)
		})
	}
}

// runFailsNeedingRestart runs run (a manager's or a subscription's Run) on a store that
// stopped writing until a restart, and checks that it returns by itself an error
// matching pmd.ErrNeedsRestart that says refused, the write refused; not the WARN of a
// full disk (waiting closed), and within 30 s.
func runFailsNeedingRestart(t *testing.T, ctx context.Context, run func(context.Context) error, waiting <-chan struct{}, refused string) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(runCtx) }()
	select {
	case err := <-done:
		if !errors.Is(err, pmd.ErrNeedsRestart) || !strings.Contains(err.Error(), refused) {
			t.Errorf("Run: %v, want an error matching pmd.ErrNeedsRestart, saying %q", err, refused)
		}
	case <-waiting:
		cancel()
		t.Errorf("Run took the stopped store for a full disk (a WARN to free it); it then returned %v", <-done)
	case <-time.After(30 * time.Second):
		cancel()
		t.Errorf("Run did not return on a store stopped until a restart; once stopped it returned %v", <-done)
	}
}
