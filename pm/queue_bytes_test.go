package pm_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestQueuedCommandsHoldBoundedData: the commands queued for delivery behind a receiver
// that is down hold at most Options.QueueBytes of their data, at Run and after a
// restart; the others hold their place only, and are listed (Parked) and delivered,
// once retried, with their data read again; one whose process stream was erased
// meanwhile goes out as its record reads, without its data, and one whose process
// stream was deleted fails the attempt that reads it again, and parks.
func TestQueuedCommandsHoldBoundedData(t *testing.T) {
	const processes, blob = 40, 1000
	tests := []struct {
		name    string
		bound   int
		atLeast int // of the data held once all are parked
		atMost  int
	}{
		{name: "default holds them all", bound: 0, atLeast: processes * blob, atMost: 2 * processes * blob},
		{name: "bounded", bound: 8 << 10, atLeast: 4 << 10, atMost: 8 << 10},
		{name: "none", bound: -1, atLeast: 0, atMost: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			def := goDef("Q", func(n int) []pm.Command {
				if n == 0 {
					return nil
				}
				return []pm.Command{{Type: "Send", Data: map[string]any{"blob": strings.Repeat("x", blob)}}}
			})
			var mu sync.Mutex
			open := false
			got := map[string]pm.Command{}
			deliver := func(_ context.Context, c pm.Command) error {
				mu.Lock()
				defer mu.Unlock()
				if !open {
					return fmt.Errorf("receiver down")
				}
				got[c.ProcessID] = c
				return nil
			}
			opts := pm.Options{Deliver: deliver, MaxAttempts: 1, QueueBytes: tt.bound}
			r := start(t, s, def, opts)
			for i := range processes {
				if _, err := s.Append(ctx, fmt.Sprintf("fact-%d", i), pmd.Any, pmd.EventData{Type: "Go", Data: map[string]any{"id": fmt.Sprint(i)}}); err != nil {
					t.Fatal(err)
				}
			}
			r.idle(t)
			held := func(when string, r *running) {
				t.Helper()
				if n := r.QueuedDataBytes(); n < tt.atLeast || n > tt.atMost {
					t.Errorf("%s: queued commands hold %d bytes of data; want %d to %d", when, n, tt.atLeast, tt.atMost)
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
			parked, total, err := r.Parked(ctx, 0)
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
			// Process 1's record is gone with its stream: held, its command goes out
			// all the same; read again, the read fails the attempt, which parks it.
			parked, _, err = r.Parked(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if _, sent := got["1"]; tt.bound < 0 && (sent || len(parked) != 1 || !strings.Contains(parked[0].Err, "read the command again")) {
				t.Errorf("the command of a deleted process read again: sent %v, parked %+v; want it parked, failed reading it", sent, parked)
			}
			delete(got, "1")
			if len(got) != processes-1 {
				t.Fatalf("%d commands delivered; want %d", len(got), processes-1)
			}
			for pid, c := range got {
				b, _ := c.Data["blob"].(string)
				switch {
				case c.Type != "Send":
					t.Errorf("process %s: delivered %s; want Send", pid, c.Type)
				case pid == "0" && tt.bound < 0 && c.Data != nil:
					// One that holds its data may still deliver it (doc.go, Erasing a
					// process); one read again goes out as the erasure left it.
					t.Errorf("process 0, erased: delivered with %d bytes of blob; want no data", len(b))
				case pid != "0" && len(b) != blob:
					t.Errorf("process %s: delivered with %d bytes of blob; want %d", pid, len(b), blob)
				}
			}
			if n := r.QueuedDataBytes(); n != 0 {
				t.Errorf("all delivered, the queue still holds %d bytes of data", n)
			}
		})
	}
}
