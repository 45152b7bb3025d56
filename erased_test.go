package pmd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestErasedSaysWhatEraseStreamErased: Store.Erased answers, without reading the record,
// whether an event was erased: those appended before EraseStream, not those after, nor
// another stream's or a version never written; a bad stream name is refused, naming it.
func TestErasedSaysWhatEraseStreamErased(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	for range 2 {
		if _, err := s.Append(ctx, "a", pmd.Any, ev("A")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "b", pmd.Any, ev("B")); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseStream(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a", pmd.Any, ev("A")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stream  string
		version uint64
		want    bool
	}{
		{"a", 0, true},
		{"a", 1, true},
		{"a", 2, false}, // appended after the erasure
		{"a", 9, false}, // never written
		{"b", 0, false},
		{"never", 0, false},
	} {
		got, err := s.Erased(tc.stream, tc.version)
		if err != nil || got != tc.want {
			t.Errorf("Erased(%q, %d) = %t, %v; want %t", tc.stream, tc.version, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", pmd.All} {
		if _, err := s.Erased(bad, 0); !errors.Is(err, pmd.ErrInvalidArgument) {
			t.Errorf("Erased(%q, 0): %v; want ErrInvalidArgument, as EraseStream", bad, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erased("a", 0); !errors.Is(err, pmd.ErrClosed) {
		t.Errorf("Erased on a closed store: %v; want ErrClosed", err)
	}
}
