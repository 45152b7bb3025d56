package pmd_test

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestReplicaCallsAfterClose checks that Sync and AdoptID on a closed store fail with
// ErrClosed, and that AdoptID leaves the store id of the directory, whose lock Close
// released, as it was.
func TestReplicaCallsAfterClose(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	adopted := uuid.MustParse("0190c1d2-0000-7000-8000-0000000000ad")
	tests := []struct {
		name string
		call func() error
	}{
		{"Sync", s.Sync},
		{"AdoptID", func() error { return s.AdoptID(adopted) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, pmd.ErrClosed) {
				t.Fatalf("%s after Close: %v, want ErrClosed", tt.name, err)
			}
		})
	}
	s, err = pmd.Open(dir, pmd.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.ID(); got != id {
		t.Fatalf("the store id is %s after AdoptID on the closed store, want %s", got, id)
	}
}
