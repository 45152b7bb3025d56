package pmd

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestTimedOutWriteMayLand: an Append whose context ends while the write waits in the
// committer's queue returns the context's error, but the write stays queued and is
// written: it is ambiguous, not refused. (The daemon answers such a write, past its 30 s
// request timeout, with 503 unavailable.) An exact retry with the same event ids then
// answers the original result without writing again. The API docs say so.
func TestTimedOutWriteMayLand(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	s, err := Open(t.TempDir(), Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler), OnCommit: func(CommitInfo) {
		if first { // the committer's goroutine only
			first = false
			close(entered)
			<-release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	blocked := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "Blocker-1", Any, EventData{Type: "T"})
		blocked <- err
	}()
	<-entered // the committer holds the first write: the next one waits in its queue

	id := uuid.Must(uuid.NewV7())
	short, cancel := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() {
		_, err := s.Append(short, "Order-1", Any, EventData{ID: id, Type: "Placed"})
		ended <- err
	}()
	// Let the write reach the queue, then end its context: the daemon's timeout.
	waitQueued(t, s, 1)
	cancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("Append whose context ended: %v, want context.Canceled", err)
	}
	close(release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	// A later write is committed after the queued one.
	if _, err := s.Append(ctx, "Later-1", Any, EventData{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Event(ctx, id)
	if err != nil {
		t.Fatalf("the write whose context ended is not stored (%v): it is refused, not ambiguous", err)
	}
	retry, err := s.Append(ctx, "Order-1", Any, EventData{ID: id, Type: "Placed"})
	if err != nil || retry.FirstPosition != ev.Position {
		t.Fatalf("exact retry: %+v, %v; want the original position %d", retry, err, ev.Position)
	}

	// The docs do not say that nothing was written for a write that ran out of time.
	for _, doc := range []string{"docs/api.md", "server/openapi.json"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ran out of time may still be written") {
			t.Errorf("%s does not say that a write that ran out of time may still be written", doc)
		}
	}
}
