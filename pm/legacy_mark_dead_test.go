package pm_test

import (
	"context"
	"slices"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestADeadLegacyMarkStands: the legacy mark, the first checkpoint, dies when its stream
// is deleted or a max_count hides it (set before the store refused it), and its bytes go
// at a scavenge; the runtime still finds it and keeps its cutoff, so a CommandSkipped
// another writer appended before a restart is not trusted and the command is delivered.
func TestADeadLegacyMarkStands(t *testing.T) {
	for _, tc := range []struct {
		name     string
		kill     func(ctx context.Context, s *pmd.Store) error
		scavenge bool
		// reopen has kill run on the store opened again, which keeps no stream whole
		// until a manager is made on it: as a store an earlier release had open.
		reopen bool
	}{
		{name: "stream deleted", kill: func(ctx context.Context, s *pmd.Store) error {
			return s.DeleteStream(ctx, "Ship.checkpoint", pmd.Any)
		}},
		{name: "stream deleted, scavenged", scavenge: true, kill: func(ctx context.Context, s *pmd.Store) error {
			return s.DeleteStream(ctx, "Ship.checkpoint", pmd.Any)
		}},
		{name: "hidden by max_count, then cleared", reopen: true, kill: func(ctx context.Context, s *pmd.Store) error {
			if _, err := s.Append(ctx, "Ship.checkpoint", pmd.Any, pmd.EventData{Type: "Checkpoint", Data: map[string]any{"position": uint64(0)}}); err != nil {
				return err
			}
			if err := s.SetRetention(ctx, "Ship.checkpoint", pmd.Retention{MaxCount: 1}); err != nil {
				return err
			}
			return s.SetRetention(ctx, "Ship.checkpoint", pmd.Retention{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			open := func() *pmd.Store {
				s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 2048, Logger: quiet()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			s := open()
			h, opts, id := refusedOnce(t, s)
			if tc.reopen {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = open()
			}
			if err := tc.kill(ctx, s); err != nil {
				t.Fatal(err)
			}
			// A first start with the mark dead; it must not move the cutoff either.
			r := start(t, s, shipToDef(), opts)
			r.idle(t)
			r.stop(t)
			if tc.scavenge {
				// Seal the mark's segment so that the scavenge removes it.
				for i := range 40 {
					if _, err := s.Append(ctx, "filler", pmd.Any, pmd.EventData{Type: "Filler", Data: map[string]any{"i": i}}); err != nil {
						t.Fatal(err)
					}
				}
				res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
				if err != nil {
					t.Fatal(err)
				}
				if res.Gone == 0 {
					t.Fatalf("the scavenge removed no dead event: %+v", res)
				}
			}
			if _, err := s.Append(ctx, "Ship.deliveries$42", pmd.Any, pmd.EventData{Type: "CommandSkipped",
				Data: map[string]any{"command_id": id.String(), "command_type": "ShipOrder", "attempt": 1}}); err != nil {
				t.Fatal(err)
			}
			r = start(t, s, shipToDef(), opts)
			// Another process's command makes sure the run got past its start.
			appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": "7"}})
			r.idle(t)
			if err := r.Retry(ctx, "42", id); err != nil {
				t.Fatalf("Retry of the command the forgery says is skipped: %v", err)
			}
			r.idle(t)
			if got, want := h.list(), []string{"7 ShipOrder customer", "42 ShipOrder customer"}; !slices.Equal(got, want) {
				t.Fatalf("handed %v after the restart, want %v", got, want)
			}
		})
	}
}
