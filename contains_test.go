package pmd_test

import (
	"context"
	"errors"
	"testing"
	"time"

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

// TestContainsUnderRetention: Contains answers whether the stream holds the event, as
// Link's duplicate check does: a retention floor or a deletion that hides its version
// makes it false, a max age that hides it from the stream's reads does not until the
// scavenge that expires it (until then linking it again is a duplicate).
func TestContainsUnderRetention(t *testing.T) {
	for _, tc := range []struct {
		name          string
		retention     pmd.Retention // of Process$1, set after the link and one more
		before, after bool          // Contains(Process$1) before and after a scavenge
	}{
		{"none", pmd.Retention{}, true, true},
		{"truncate before past it", pmd.Retention{TruncateBefore: 1}, false, false},
		{"max count past it", pmd.Retention{MaxCount: 1}, false, false},
		{"max age not reached", pmd.Retention{MaxAge: time.Hour}, true, true},
		{"max age past it", pmd.Retention{MaxAge: time.Nanosecond}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, "")
			ctx := context.Background()
			fact := ev("Fact")
			res := mustAppend(t, s, "Order$1", pmd.NoStream, fact, ev("Other"))
			if _, err := s.Link(ctx, "Process$1", pmd.NoStream, fact.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, "Process$1", pmd.Any, ev("Command")); err != nil {
				t.Fatal(err)
			}
			if err := s.SetRetention(ctx, "Process$1", tc.retention); err != nil {
				t.Fatal(err)
			}
			check := func(when string, want bool) {
				t.Helper()
				got, err := s.Contains("Process$1", res.FirstPosition)
				if err != nil || got != want {
					t.Fatalf("%s: Contains(Process$1, %d) = %v, %v; want %v", when, res.FirstPosition, got, err, want)
				}
				if !want {
					return // a Link would put it back, changing what the next check sees
				}
				if _, err := s.Link(ctx, "Process$1", pmd.Any, fact.ID); !errors.Is(err, pmd.ErrDuplicateEvent) {
					t.Fatalf("%s: linking it again: %v; want ErrDuplicateEvent", when, err)
				}
			}
			check("before a scavenge", tc.before)
			if _, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil {
				t.Fatal(err)
			}
			check("after a scavenge", tc.after)
		})
	}
}
