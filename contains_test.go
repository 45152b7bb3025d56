package pmd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pmd-dev/pmd"
)

func TestContains(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	fact := ev("Fact")
	res, err := s.Append(ctx, "Order$1", pmd.NoStream, fact)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "Order$2", pmd.NoStream, ev("Other")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Link(ctx, "Process$1", pmd.NoStream, fact.ID); err != nil {
		t.Fatal(err)
	}
	pos := res.FirstPosition
	check := func(when string, want map[string]bool) {
		t.Helper()
		for stream, in := range want {
			got, err := s.Contains(stream, pos)
			if err != nil {
				t.Fatalf("%s: Contains(%q): %v", when, stream, err)
			}
			if got != in {
				t.Errorf("%s: Contains(%q, %d) = %v, want %v", when, stream, pos, got, in)
			}
		}
	}
	check("linked", map[string]bool{"Order$1": true, "Process$1": true, "Order$2": false, "Nowhere": false})
	if err := s.DeleteStream(ctx, "Process$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	check("deleted", map[string]bool{"Order$1": true, "Process$1": false})
	if _, err := s.Contains("bad\x00name", pos); !errors.Is(err, pmd.ErrInvalidArgument) {
		t.Errorf("Contains with a bad stream name: %v, want ErrInvalidArgument", err)
	}
}
