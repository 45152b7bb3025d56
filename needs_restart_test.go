package pmd

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUnavailableSaysWhetherItNeedsARestart: a write refused because the store stopped
// writing until a restart (the index could not take a durable batch) matches
// ErrNeedsRestart as well as ErrUnavailable, so that a caller that waits out a full disk
// (a process manager) fails instead of waiting for ever; a write refused for a full disk,
// which the store recovers from by itself, does not.
func TestUnavailableSaysWhetherItNeedsARestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		full    bool // fill the disk; else fail the index behind a durable batch
		replica bool // a cluster node's store, applying its writes (SetReplicator)
		restart bool
	}{
		{name: "index failed behind a durable batch", restart: true},
		{name: "disk full", full: true},
		// A replica that cannot write what Raft committed stops, from that write on.
		{name: "a replica's disk full", full: true, replica: true, restart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, fill := t.TempDir(), func() {}
			if tc.full {
				if testing.Short() {
					t.Skip("mounts a tmpfs")
				}
				dir, fill = smallDisk(t)
			}
			s, err := Open(dir, Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			if _, err := s.Append(ctx, "S$1", NoStream, EventData{Type: "T"}); err != nil {
				t.Fatal(err)
			}
			wait, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := s.visible(wait); err != nil {
				t.Fatal(err)
			}
			if tc.replica {
				var applied uint64 // the appends are one at a time
				if applied, err = s.SetReplicator(func(ctx context.Context, w []byte) (WriteResult, error) {
					applied++
					o := s.ApplyWrites(ctx, []ReplicatedWrite{{Index: applied, Timestamp: time.Now().UnixNano(), Write: w}})
					return o[0].Result, o[0].Err
				}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.full {
				fill()
			} else {
				// As TestIndexFailureBehindADurableBatch: the committer plans the append
				// without the index, which then refuses the durable batch.
				s.idx.Close()
				if _, err := s.Append(ctx, "S$1", AtVersion(0), EventData{Type: "T"}); err != nil {
					t.Fatal(err)
				}
				if err := s.visible(wait); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("waiting for the index after it failed: %v, want ErrUnavailable", err)
				}
			}
			var werr error
			for i := 0; werr == nil; i++ {
				if i > 100_000 {
					t.Fatal("every append was written")
				}
				_, werr = s.Append(ctx, "S$2", Any, EventData{Type: "T", Data: map[string]any{"p": strings.Repeat("x", 500)}})
			}
			if !errors.Is(werr, ErrUnavailable) {
				t.Fatalf("append: %v, want ErrUnavailable", werr)
			}
			if got := errors.Is(werr, ErrNeedsRestart); got != tc.restart {
				t.Errorf("append: %v: errors.Is(err, ErrNeedsRestart) = %v, want %v", werr, got, tc.restart)
			}
			if tc.full && !errors.Is(werr, syscall.ENOSPC) {
				t.Errorf("append on a full disk: %v, want it to match ENOSPC", werr)
			}
		})
	}
}
