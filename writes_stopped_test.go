package pmd

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// TestWritesStoppedSaysSo: WritesStopped is closed once the store stopped writing until a
// restart (the index could not take a batch already in the log), so that pmd serve, which
// runs no process manager or subscription to fail on the next write, can stop for its
// supervisor to start it again; a healthy store's stays open, after writes and Close too.
func TestWritesStoppedSaysSo(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "healthy", true: "index failed behind a durable batch"}[fail], func(t *testing.T) {
			s, err := Open(t.TempDir(), Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := s.Append(ctx, "S$1", NoStream, EventData{Type: "T"}); err != nil {
				t.Fatal(err)
			}
			if err := s.visible(ctx); err != nil {
				t.Fatal(err)
			}
			if fail {
				// As TestIndexFailureBehindADurableBatch: the committer plans the append
				// without the index, which then refuses the durable batch.
				s.idx.Close()
			}
			if _, err := s.Append(ctx, "S$1", AtVersion(0), EventData{Type: "T"}); err != nil {
				t.Fatal(err)
			}
			if err := s.visible(ctx); fail != errors.Is(err, ErrNeedsRestart) {
				t.Fatalf("waiting for the index: %v", err)
			}
			if !fail {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-s.WritesStopped():
				if !fail {
					t.Fatal("WritesStopped is closed for a store that writes")
				}
			default:
				if fail {
					t.Fatal("WritesStopped is open for a store that stopped writing until a restart")
				}
			}
		})
	}
}
