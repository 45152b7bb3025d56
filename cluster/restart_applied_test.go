package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestRestartAfterWritesThatWroteNothing: a node restarted after a snapshot whose last
// entries wrote nothing (a refused write, an exact retry) counts them applied: its
// applied index reaches the commit index on an idle cluster, and a wait for that index
// and a leader read end. Raft restores the snapshot and never hands those entries to
// the state machine again, while its log still holds them: the store's last write
// (Applied) stayed below them, and both waited until the next write.
func TestRestartAfterWritesThatWroteNothing(t *testing.T) {
	id := uuid.Must(uuid.NewRandom())
	for _, tc := range []struct {
		name  string
		again pmd.EventData // written again to Order$1 expecting no stream: writes nothing
		want  error         // what that write gets
	}{
		{"refused", pmd.EventData{Type: "T"}, pmd.ErrWrongExpectedVersion},
		{"exact retry", pmd.EventData{ID: id, Type: "T"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dir := t.TempDir()
			s, n := startOne(t, dir, Config{})
			_, err := s.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{ID: id, Type: "T"})
			must(t, err)
			if _, err := s.Append(ctx, "Order$1", pmd.NoStream, tc.again); !errors.Is(err, tc.want) {
				t.Fatalf("the write again: %v, want %v", err, tc.want)
			}
			if a := n.fsm.applied.Load(); s.Applied() >= a {
				t.Fatalf("the store's last write is at index %d, the state machine applied %d: the last entry wrote something", s.Applied(), a)
			}
			must(t, n.raft.Snapshot().Error())
			must(t, n.Close())
			must(t, s.Close())

			s, n = startOne(t, dir, Config{})
			defer s.Close()
			defer n.Close()
			wait, stop := context.WithTimeout(ctx, 10*time.Second)
			defer stop()
			commit := n.Self().CommitIndex
			if err := n.WaitApplied(wait, commit); err != nil {
				t.Errorf("wait for the commit index %d: %v (applied index %d)", commit, err, n.AppliedIndex())
			}
			if err := n.ReadBarrier(wait); err != nil {
				t.Errorf("leader read: %v (applied index %d, commit index %d)", err, n.AppliedIndex(), n.Self().CommitIndex)
			}
		})
	}
}
