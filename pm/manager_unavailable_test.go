package pm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestManagerWaitsOutAFullDisk: a store that cannot write (a full disk) refuses the
// manager's writes as unavailable, and recovers by itself once space is freed. The
// manager waits that out, as the store does, and goes on once space is back: a decision
// waits for its write (the process holds, nothing is issued twice), a delivery attempt
// waits for its record before the command is attempted again, a removal and the legacy
// mark a start writes wait for their writes, and a checkpoint not written is written
// later. Run ended with the write's error, which in pmd serve shut
// the whole daemon down, reads included, and again at each restart while the disk
// stayed full. Stopped while it waits, Run returns at once, with nil.
func TestManagerWaitsOutAFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	const def = "CateringMatch"
	for _, tc := range []struct {
		name string
		// handled: a first manager (no Deliver) handles the facts before the disk fills,
		// so that the manager run on the full disk has the command to deliver only.
		handled bool
		// stale: a checkpoint at position 1 is appended then, so that the manager reads
		// the facts again, finds them linked, and has only its checkpoint to write.
		stale bool
		// failFirst: the first delivery attempt fails: its record must land before the
		// command is attempted again.
		failFirst bool
		// unmarked: that first manager is stopped only once the disk is full, so that
		// its checkpoint, the first, which carries its legacy mark, is not written: the
		// manager finds records of its own and no mark, which it writes before it
		// starts.
		unmarked bool
		// removal: that first manager runs with a retention of an hour, and the manager
		// on the full disk with one of a nanosecond, without Deliver: it has only the
		// removal of the done process to write.
		removal bool
		// fillAfterMarker: the disk fills only once the removal's marker is written, so
		// that the deletes after it meet the full disk.
		fillAfterMarker bool
		// stopFull: Run is stopped while the disk is still full.
		stopFull     bool
		wantAttempts int
		// records: the deliveries stream's records once space is freed, in order.
		records []string
	}{
		{name: "decision", wantAttempts: 1, records: []string{"CommandDelivered"}},
		{name: "decision, stopped while full", stopFull: true},
		{name: "delivery record", handled: true, wantAttempts: 1, records: []string{"CommandDelivered"}},
		{name: "failure record", handled: true, failFirst: true, wantAttempts: 2,
			records: []string{"CommandDeliveryFailed", "CommandDelivered"}},
		{name: "failure record, stopped while full", handled: true, failFirst: true, stopFull: true, wantAttempts: 1},
		{name: "checkpoint", handled: true, stale: true, wantAttempts: 0},
		{name: "checkpoint, stopped while full", handled: true, stale: true, stopFull: true},
		{name: "legacy mark", handled: true, unmarked: true, wantAttempts: 1, records: []string{"CommandDelivered"}},
		{name: "legacy mark, stopped while full", handled: true, unmarked: true, stopFull: true},
		{name: "removal", handled: true, removal: true},
		{name: "removal, deletes refused", handled: true, removal: true, fillAfterMarker: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var first *running
			setup := func(s *pmd.Store) {
				appendFact(t, s, customer("o1"))
				appendFact(t, s, caterer("o1"))
				if tc.handled {
					var opts pm.Options
					if tc.removal {
						opts.Retention.Completed = time.Hour
					}
					first = start(t, s, matchDef(def), opts)
					first.idle(t)
					if !tc.unmarked {
						first.stop(t)
					}
				}
				if tc.stale {
					if _, err := s.Append(ctx, def+".checkpoint", pmd.Any, pmd.EventData{Type: "Checkpoint", Data: map[string]any{
						"position": 1, "types": []string{"CatererConfirmedMenu", "CustomerConfirmedMenu"},
					}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			var s *pmd.Store
			var free func()
			var afterRemovalMarker func(string)
			if tc.fillAfterMarker {
				var fill func() error
				s, fill, free = smallDiskStore(t)
				setup(s)
				var once sync.Once
				afterRemovalMarker = func(string) {
					once.Do(func() {
						if err := fill(); err != nil {
							t.Error(err)
						}
					})
				}
			} else {
				s, free = fullDiskStore(t, setup)
			}
			if tc.unmarked {
				first.stop(t)
			}
			checkpoints := len(processStream(t, s, def+".checkpoint"))

			var mu sync.Mutex
			attempts := map[string]int{} // by command type
			delivered := make(chan struct{})
			var once sync.Once
			deliver := func(_ context.Context, c pm.Command) error {
				mu.Lock()
				defer mu.Unlock()
				attempts[c.Type]++
				if tc.failFirst && attempts[c.Type] == 1 {
					return errors.New("receiver down")
				}
				once.Do(func() { close(delivered) })
				return nil
			}
			warned := make(chan struct{})
			var warnOnce sync.Once
			logger := slog.New(&watchHandler{substr: "the store cannot write", seen: func() { warnOnce.Do(func() { close(warned) }) }})
			opts := pm.Options{Logger: logger, RetryMin: time.Millisecond, RetryMax: time.Millisecond}
			switch {
			case tc.stale:
				opts.CheckpointEvery = 1
			case tc.removal:
				opts.Retention.Completed = time.Nanosecond
			default:
				opts.Deliver = deliver
			}
			m, err := pm.New(s, matchDef(def), opts)
			if err != nil {
				t.Fatal(err)
			}
			pm.SetAfterRemovalMarker(m, afterRemovalMarker)
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- m.Run(runCtx) }()

			deadline := time.After(30 * time.Second)
			untilWhileRunning(t, warned, done, deadline, "the manager met the full disk (it must wait for space)")
			if tc.fillAfterMarker {
				// The marker landed; the deletes after it wait for space.
				if !hasRecord(t, s, def+".removed$o1", pm.ProcessRemoved) {
					t.Fatal("no removal marker before the disk filled")
				}
				if len(processStream(t, s, def+"$o1")) == 0 {
					t.Fatal("the process stream was deleted on a full disk")
				}
			}
			if tc.stopFull {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("Run stopped on a full disk: %v, want nil", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Run did not return once stopped while it waited for space")
				}
				mu.Lock()
				defer mu.Unlock()
				if got := attempts["ConfirmOrder"]; got != tc.wantAttempts {
					t.Errorf("%d attempts on a full disk, want %d", got, tc.wantAttempts)
				}
				return
			}
			free()
			if !tc.stale && !tc.removal {
				untilWhileRunning(t, delivered, done, deadline, "the command was delivered once space was freed")
			}
			idle := make(chan error, 1)
			go func() {
				waitCtx, stop := context.WithTimeout(ctx, 30*time.Second)
				defer stop()
				idle <- m.WaitIdle(waitCtx)
			}()
			select {
			case err := <-idle:
				if err != nil {
					t.Fatalf("WaitIdle once space was freed: %v", err)
				}
			case err := <-done:
				t.Fatalf("Run returned %v once space was freed", err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}

			if tc.removal {
				if p := processStream(t, s, def+"$o1"); len(p) != 0 {
					t.Errorf("the process stream holds %d records once space was freed, want it removed", len(p))
				}
				if !hasRecord(t, s, def+".removed$o1", pm.ProcessRemoved) {
					t.Errorf("no removal marker once space was freed")
				}
				return
			}
			var cmds []string
			for _, e := range processStream(t, s, def+"$o1") {
				if e.Type == "ConfirmOrder" {
					cmds = append(cmds, e.Type)
				}
			}
			if len(cmds) != 1 {
				t.Errorf("the process stream holds %d ConfirmOrder, want 1", len(cmds))
			}
			var records []string
			for _, e := range processStream(t, s, def+".deliveries$o1") {
				records = append(records, e.Type)
			}
			if !slices.Equal(records, tc.records) {
				t.Errorf("deliveries stream %v, want %v", records, tc.records)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := attempts["ConfirmOrder"]; got != tc.wantAttempts {
				t.Errorf("%d attempts, want %d", got, tc.wantAttempts)
			}
			if tc.stale {
				ck := processStream(t, s, def+".checkpoint")
				if len(ck) <= checkpoints {
					t.Fatalf("no checkpoint written once space was freed (%d records, %d before)", len(ck), checkpoints)
				}
				last := ck[len(ck)-1].Data["position"]
				if pos, err := strconv.ParseFloat(fmt.Sprint(last), 64); err != nil || pos <= 1 {
					t.Errorf("the checkpoint written once space was freed is at %v, want past the facts", last)
				}
			}
		})
	}
}

// TestManagerRetryOnAFullDiskAnswersAtOnce: Retry and Skip of a parked command, asked
// for by an operator, get the store's error at once while it cannot write (pmd serve
// answers 503), rather than wait for space; the command stays parked, and a retry once
// space is freed delivers it.
func TestManagerRetryOnAFullDiskAnswersAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	const def = "CateringMatch"
	ctx := context.Background()
	s, free := fullDiskStore(t, func(s *pmd.Store) {
		appendFact(t, s, customer("o1"))
		appendFact(t, s, caterer("o1"))
		r := start(t, s, matchDef(def), pm.Options{
			MaxAttempts: 1,
			Deliver:     func(context.Context, pm.Command) error { return errors.New("receiver down") },
		})
		r.idle(t)
		r.stop(t)
	})
	delivered := make(chan struct{})
	var once sync.Once
	r := start(t, s, matchDef(def), pm.Options{
		MaxAttempts: 1,
		Deliver: func(context.Context, pm.Command) error {
			once.Do(func() { close(delivered) })
			return nil
		},
	})
	r.idle(t)
	parked := r.parked(t)
	if len(parked) != 1 {
		t.Fatalf("%d parked commands, want 1", len(parked))
	}
	id := parked[0].Command.ID
	// WaitIdle may return before Run has started the dispatcher, which it loaded with
	// the parked command: until then Retry answers ErrNoDelivery.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		err := r.Retry(ctx, "o1", uuid.Nil)
		if !errors.Is(err, pm.ErrNoDelivery) {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the dispatcher never started")
		}
	}
	for _, op := range []struct {
		name string
		f    func(context.Context, string, uuid.UUID) error
	}{
		{"Retry", func(ctx context.Context, pid string, id uuid.UUID) error { return r.Retry(ctx, pid, id) }},
		{"Skip", func(ctx context.Context, pid string, id uuid.UUID) error { return r.Skip(ctx, pid, id) }},
	} {
		opCtx, stop := context.WithTimeout(ctx, 10*time.Second)
		err := op.f(opCtx, "o1", id)
		stop()
		if !errors.Is(err, pmd.ErrUnavailable) {
			t.Fatalf("%s on a full disk: %v, want the store's unavailable error at once", op.name, err)
		}
	}
	if got := r.parked(t); len(got) != 1 || got[0].Command.ID != id {
		t.Fatalf("parked after Retry and Skip failed: %+v, want the command still parked", got)
	}
	free()
	if err := r.Retry(ctx, "o1", id); err != nil {
		t.Fatalf("Retry once space was freed: %v", err)
	}
	select {
	case <-delivered:
	case <-time.After(30 * time.Second):
		t.Fatal("the command retried once space was freed was not delivered")
	}
}
