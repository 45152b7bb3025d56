package pmd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestErasuresCounts: Store.Erasures moves with each erasure applied, whichever way it
// came, on every replica that applies it, and only then: a process manager's cache
// looks for erased facts only when it has moved since its fold (see pm).
func TestErasuresCounts(t *testing.T) {
	ctx := context.Background()
	t.Run("a store of its own", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		if got := s.Erasures(); got != 0 {
			t.Fatalf("a new store counts %d erasures, want 0", got)
		}
		if _, err := s.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
			t.Fatal(err)
		}
		if err := s.EraseStream(ctx, "never-written"); err != nil {
			t.Fatal(err)
		}
		if got := s.Erasures(); got != 0 {
			t.Fatalf("after an append and the erasure of a stream never written: %d erasures, want 0", got)
		}
		if err := s.EraseStream(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		if got := s.Erasures(); got != 1 {
			t.Fatalf("after EraseStream returned: %d erasures, want 1", got)
		}
	})
	t.Run("replicas", func(t *testing.T) {
		log := &raftish{}
		open := func() *pmd.Store {
			s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, NoScrub: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if _, err := s.SetReplicator(log.fn); err != nil {
				t.Fatal(err)
			}
			return s
		}
		a, b := open(), open()
		if _, err := a.Append(ctx, "s", pmd.NoStream, pmd.EventData{Type: "T"}); !errors.Is(err, errQueued) {
			t.Fatalf("append through the replicator: %v", err)
		}
		if err := a.EraseStream(ctx, "s"); !errors.Is(err, errQueued) {
			t.Fatalf("erase through the replicator: %v", err)
		}
		for name, s := range map[string]*pmd.Store{"a": a, "b": b} {
			for i, o := range s.ApplyWrites(ctx, log.entries) {
				if o.Err != nil {
					t.Fatalf("%s: entry %d: %v", name, i+1, o.Err)
				}
			}
			if got := s.Erasures(); got != 1 {
				t.Fatalf("replica %s applied the erasure: %d erasures, want 1", name, got)
			}
		}
	})
}
