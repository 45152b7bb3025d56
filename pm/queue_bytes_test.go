package pm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestQueuedCommandsHoldBoundedData: the commands queued for delivery behind a receiver
// that is down hold at most Options.QueueBytes of their data, encoded as the store
// keeps it (not decoded maps, which take many times more), at Run and after a restart,
// and so do the commands a read finds before they are queued; the others hold their
// place only, and are listed (Parked) and delivered, once retried, with their data read
// again, OnAttempt seeing it as the handler did; one whose process stream was erased
// or deleted meanwhile fails the attempt that reads it again, and parks.
func TestQueuedCommandsHoldBoundedData(t *testing.T) {
	const processes, blob = 40, 1000
	tests := []struct {
		name    string
		bound   int
		atLeast int // of the data held once all are parked
		atMost  int
		limit   int // the bound in bytes
	}{
		{name: "default holds them all", bound: 0, atLeast: processes * blob, atMost: 2 * processes * blob, limit: 64 << 20},
		{name: "bounded", bound: 8 << 10, atLeast: 4 << 10, atMost: 8 << 10, limit: 8 << 10},
		{name: "none", bound: -1, atLeast: 0, atMost: 0, limit: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			def := goDef("Q", func(n int) []pm.Command {
				if n == 0 {
					return nil
				}
				return []pm.Command{{Type: "Send", Data: queuedData()}}
			})
			var mu sync.Mutex
			open := false
			got := map[string]pm.Command{}
			delivered := make(chan pm.Command, 2*processes) // by OnAttempt, which may run after idle
			deliver := func(_ context.Context, c pm.Command) error {
				mu.Lock()
				defer mu.Unlock()
				if !open {
					return fmt.Errorf("receiver down")
				}
				got[c.ProcessID] = c
				return nil
			}
			onAttempt := func(a pm.AttemptInfo) {
				if a.Err == nil {
					delivered <- a.Command
				}
			}
			opts := pm.Options{Deliver: deliver, MaxAttempts: 1, QueueBytes: tt.bound, OnAttempt: onAttempt}
			r := start(t, s, def, opts)
			for i := range processes {
				if _, err := s.Append(ctx, fmt.Sprintf("fact-%d", i), pmd.Any, pmd.EventData{Type: "Go", Data: map[string]any{"id": fmt.Sprint(i)}}); err != nil {
					t.Fatal(err)
				}
			}
			r.idle(t)
			held := func(when string, r *running) {
				t.Helper()
				n := r.QueuedDataBytes()
				if n < tt.atLeast || n > tt.atMost {
					t.Errorf("%s: queued commands hold %d bytes of data; want %d to %d", when, n, tt.atLeast, tt.atMost)
				}
				if decoded, encoded := r.QueuedDataHeld(); decoded != 0 || encoded != n {
					t.Errorf("%s: %d queued commands hold their data decoded, and %d bytes encoded; want none decoded, %d bytes", when, decoded, encoded, n)
				}
				scanned, err := r.ScannedDataBytes(context.Background())
				if err != nil || scanned > tt.limit {
					t.Errorf("%s: the commands read at once hold %d bytes of data (%v); want %d at most", when, scanned, err, tt.limit)
				}
			}
			held("parked", r)
			r.stop(t)
			r = start(t, s, def, opts)
			r.idle(t)
			held("after a restart", r)

			if err := s.EraseStream(ctx, "Q$0"); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteStream(ctx, "Q$1", pmd.Any); err != nil {
				t.Fatal(err)
			}
			parked, total, err := parkedList(ctx, r.Manager, 0)
			if err != nil || total != processes {
				t.Fatalf("Parked: %d, %v; want %d", total, err, processes)
			}
			for _, pc := range parked {
				want := blob
				if pc.Command.ProcessID == "0" || pc.Command.ProcessID == "1" {
					want = 0
				}
				if b, _ := pc.Command.Data["blob"].(string); len(b) != want {
					t.Errorf("Parked lists the command of %s with %d bytes of blob; want %d", pc.Command.ProcessID, len(b), want)
				}
			}
			mu.Lock()
			open = true
			mu.Unlock()
			for _, pc := range parked {
				if err := r.Retry(ctx, pc.Command.ProcessID, pc.Command.ID); err != nil {
					t.Fatal(err)
				}
			}
			r.idle(t)
			// Held, the commands of processes 0 and 1 go out all the same; read again,
			// the erased record and the one gone with its stream fail the attempt, which
			// parks them.
			parked, _, err = parkedList(ctx, r.Manager, 0)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.bound < 0 {
				errs := map[string]string{}
				for _, pc := range parked {
					errs[pc.Command.ProcessID] = pc.Err
				}
				for pid, want := range map[string]string{"0": "read the command again: its process stream was erased since it was issued: skip it", "1": "read the command again: event"} {
					if _, sent := got[pid]; sent || !strings.HasPrefix(errs[pid], want) {
						t.Errorf("the command of process %s read again: sent %v, parked with %q; want it parked with %q", pid, sent, errs[pid], want)
					}
				}
				if len(parked) != 2 {
					t.Errorf("%d commands parked; want 2", len(parked))
				}
			}
			attempted := map[string]pm.Command{}
			for range got {
				select {
				case c := <-delivered:
					attempted[c.ProcessID] = c
				case <-time.After(10 * time.Second):
					t.Fatalf("OnAttempt saw %d deliveries; want %d", len(attempted), len(got))
				}
			}
			delete(got, "0")
			delete(got, "1")
			if len(got) != processes-2 {
				t.Fatalf("%d commands delivered; want %d", len(got), processes-2)
			}
			want := fmt.Sprint(queuedData())
			for pid, c := range got {
				switch {
				case c.Type != "Send":
					t.Errorf("process %s: delivered %s; want Send", pid, c.Type)
				case fmt.Sprint(c.Data) != want:
					t.Errorf("process %s: delivered with data %.80v; want %.80v", pid, c.Data, want)
				case fmt.Sprint(attempted[pid].Data) != want:
					t.Errorf("process %s: OnAttempt saw data %.80v; want %.80v", pid, attempted[pid].Data, want)
				}
			}
			if n := r.QueuedDataBytes(); n != 0 {
				t.Errorf("all delivered or parked read again, the queue still holds %d bytes of data", n)
			}
		})
	}
}

// queuedData is the data of the commands TestQueuedCommandsHoldBoundedData issues: a blob,
// and the structure that takes many times its encoding once decoded.
func queuedData() map[string]any {
	return map[string]any{"blob": strings.Repeat("x", 1000), "n": 7, "nested": map[string]any{"list": []any{1, "b", true}, "f": 1.5}}
}

// TestQueuedCommandReadAgain: a command that failed an attempt is retried after its
// process stream was erased, or with its record damaged. Held with its data, it goes
// out with the body it first went out with; read again (QueueBytes < 0), the erased or
// damaged record fails the attempt, which parks it, rather than send it under the same
// id (the receiver's idempotency key) with another body. OnAttempt sees every attempt's
// command as the handler got it.
func TestQueuedCommandReadAgain(t *testing.T) {
	tests := []struct {
		name    string
		bound   int
		damaged bool   // the record reads as damaged, not erased
		parks   string // the error the retried attempt parks with; "" for delivered
	}{
		{name: "erased, held", bound: 0},
		{name: "erased, read again", bound: -1, parks: "read the command again: its process stream was erased since it was issued: skip it"},
		{name: "damaged, held", bound: 0, damaged: true},
		{name: "damaged, read again", bound: -1, damaged: true, parks: "read the command again: damaged record at position 7: bit rot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			def := goDef("Q", func(n int) []pm.Command {
				if n == 0 {
					return nil
				}
				return []pm.Command{{Type: "Ship", Data: map[string]any{"address": "1 Main St", "amount": 100}}}
			})
			var mu sync.Mutex
			var seen []pm.Command
			hooked := make(chan pm.AttemptInfo, 2) // OnAttempt may run after idle
			deliver := func(_ context.Context, c pm.Command) error {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, c)
				if len(seen) == 1 {
					return errors.New("timed out")
				}
				return nil
			}
			onAttempt := func(a pm.AttemptInfo) { hooked <- a }
			r := start(t, s, def, pm.Options{Deliver: deliver, MaxAttempts: 1, QueueBytes: tt.bound, OnAttempt: onAttempt})
			if _, err := s.Append(ctx, "fact-0", pmd.Any, pmd.EventData{Type: "Go", Data: map[string]any{"id": "0"}}); err != nil {
				t.Fatal(err)
			}
			r.idle(t)
			if tt.damaged {
				defer pm.SetParkedLookup(r.Manager, func(*pmd.Store, context.Context, uuid.UUID) (pmd.Event, error) {
					return pmd.Event{}, &pmd.CorruptError{Position: 7, Cause: errors.New("bit rot")}
				})()
			} else if err := s.EraseStream(ctx, "Q$0"); err != nil {
				t.Fatal(err)
			}
			parked, _, err := parkedList(ctx, r.Manager, 0)
			if err != nil || len(parked) != 1 {
				t.Fatalf("Parked: %v, %v; want one", parked, err)
			}
			if err := r.Retry(ctx, "0", parked[0].Command.ID); err != nil {
				t.Fatal(err)
			}
			r.idle(t)
			parked, _, err = parkedList(ctx, r.Manager, 0)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.parks == "" {
				if len(seen) != 2 || fmt.Sprint(seen[1].Data) != fmt.Sprint(seen[0].Data) || len(parked) != 0 {
					t.Errorf("handed over %v, parked %v; want the command handed over twice with the same data", seen, parked)
				}
			} else {
				if len(seen) != 1 || len(parked) != 1 || parked[0].Err != tt.parks {
					t.Errorf("handed over %v, parked %+v; want the command handed over once, then parked with %q", seen, parked, tt.parks)
				}
			}
			for i := range 2 {
				var a pm.AttemptInfo
				select {
				case a = <-hooked:
				case <-time.After(10 * time.Second):
					t.Fatalf("OnAttempt saw %d attempts; want 2", i)
				}
				want := "map[]"
				if i < len(seen) {
					want = fmt.Sprint(seen[i].Data)
				}
				if got := fmt.Sprint(a.Command.Data); got != want || a.Command.ID != seen[0].ID {
					t.Errorf("attempt %d: OnAttempt saw command %s with data %s; want %s", i+1, a.Command.ID, got, want)
				}
			}
		})
	}
}
