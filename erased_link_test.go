package pmd_test

import (
	"context"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestErasedOfALink: Erased of a link's version says whether the stream linked into was
// erased since, not whether the event the link shows reads erased: that goes by the
// event's own stream and version.
func TestErasedOfALink(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	src, err := s.Append(ctx, "a", pmd.Any, ev("A"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "b", pmd.Any, ev("B")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Link(ctx, "b", pmd.Any, src.IDs[0]); err != nil { // b's version 1
		t.Fatal(err)
	}
	check := func(when string, want map[string][2]bool) {
		t.Helper()
		for stream, w := range want {
			for v, erased := range w {
				if v == 1 && stream == "a" {
					continue // never written
				}
				if got, err := s.Erased(stream, uint64(v)); err != nil || got != erased {
					t.Fatalf("%s: Erased(%q, %d) = %v, %v; want %v", when, stream, v, got, err, erased)
				}
			}
		}
		read, err := readStream(t, s, "b", pmd.ReadOptions{})
		if err != nil || len(read) != 2 || read[1].Stream != "a" {
			t.Fatalf("%s: stream b reads %+v, %v; want its event and the link to a's", when, read, err)
		}
		if got, want := read[1].Erased, want["a"][0]; got != want {
			t.Fatalf("%s: the event b's link shows reads erased %v, want %v (Erased of its own stream and version)", when, got, want)
		}
	}
	if err := s.EraseStream(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	// Both of b's versions are covered, yet the event linked in is not erased.
	check("b erased", map[string][2]bool{"a": {false}, "b": {true, true}})
	if err := s.EraseStream(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	check("a erased too", map[string][2]bool{"a": {true}, "b": {true, true}})
}
