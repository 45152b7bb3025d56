package pmd

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"
)

// Open starts the store's clock floor at the last event in its log: timestamps never go
// backwards in log order (docs/semantics.md), also after a restart with the clock behind
// the one that wrote the log. The floor started at 0, so a restarted store took its
// clock alone.
func TestOpenStartsTheClockFloorAtTheLastEvent(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.lastTS != 0 {
		t.Fatalf("an empty store's floor is %d, want 0", s.lastTS)
	}
	ctx := context.Background()
	if _, err := s.Append(ctx, "Order$1", Any, EventData{Type: "Placed"}, EventData{Type: "Paid"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention(ctx, "Order$1", Retention{MaxCount: 5}); err != nil {
		t.Fatal(err) // a record that is not an event after the last event
	}
	last, err := s.Event(ctx, mustLastID(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.lastTS != last.Timestamp.UnixNano() {
		t.Fatalf("reopened, the floor is %d, want the last event's timestamp %d", s.lastTS, last.Timestamp.UnixNano())
	}
}

// mustLastID returns the id of the last event of Order$1.
func mustLastID(t *testing.T, s *Store) (id uuid.UUID) {
	t.Helper()
	for e, err := range s.ReadStream(context.Background(), "Order$1", ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		id = e.ID
	}
	return id
}
