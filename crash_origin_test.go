package pmd_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// Kill -9 in these tests is a copy of the data directory taken while the store is open:
// the files as the page cache holds them, with the index not flushed since the last
// FlushInterval.

// A scavenge replaces a dead event and its links by gone records. A restart that replays
// the deletion which killed the event, because the index had not flushed it, must take the
// gone record for what it is (the event is shown by no stream) rather than refuse the log.
func TestReopenAfterKillFollowingScavengeOfALinkedEvent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		flushFirstA bool // A's deletion flushed before the crash, or replayed with B's
	}{
		{"origin deleted long before", true},
		{"both deletions replayed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir, crashed := t.TempDir(), filepath.Join(t.TempDir(), "crashed")
			opts := pmd.Options{Logger: quietLogger(), SegmentSize: 1024, NoScrub: true}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			w, err := s.Append(ctx, "A-1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"x": 1}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Link(ctx, "B-1", pmd.Any, w.IDs[0]); err != nil {
				t.Fatal(err)
			}
			kept, err := s.Append(ctx, "K-1", pmd.Any, pmd.EventData{Type: "Kept"})
			if err != nil {
				t.Fatal(err)
			}
			for range 20 { // fills sealed segments, which are what a scavenge rewrites
				if _, err := s.Append(ctx, "C-1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"pad": strings.Repeat("x", 200)}}); err != nil {
					t.Fatal(err)
				}
			}
			// Replayed first, B's deletion asks where the linked event came from.
			deletions := []string{"A-1", "B-1"}
			if !tc.flushFirstA {
				deletions = []string{"B-1", "A-1"}
			}
			if err := s.DeleteStream(ctx, deletions[0], pmd.Any); err != nil {
				t.Fatal(err)
			}
			if tc.flushFirstA {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if s, err = pmd.Open(dir, opts); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteStream(ctx, deletions[1], pmd.Any); err != nil {
				t.Fatal(err)
			}
			r, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
			if err != nil || r.Gone == 0 {
				t.Fatalf("scavenge: %+v, %v; want the dead event and its link gone", r, err)
			}
			last := s.Stats().LastPosition
			copyDir(t, dir, crashed)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			for run := range 2 { // and again: the replay's result must be flushed and stable
				s, err := pmd.Open(crashed, opts)
				if err != nil {
					t.Fatalf("reopen %d after kill -9: %v", run, err)
				}
				if got := s.Stats().LastPosition; got != last {
					t.Errorf("reopen %d: last position %d, want %d", run, got, last)
				}
				if p := s.Problems(); len(p) != 0 {
					t.Errorf("reopen %d: problems %q, want none", run, p)
				}
				for _, stream := range []string{"A-1", "B-1"} {
					got, err := readStream(t, s, stream, pmd.ReadOptions{})
					var nf *pmd.StreamNotFoundError
					if len(got) != 0 || !errors.As(err, &nf) {
						t.Errorf("reopen %d: %s reads %d events, %v; want a deleted stream", run, stream, len(got), err)
					}
				}
				got, err := readStream(t, s, "K-1", pmd.ReadOptions{})
				if err != nil || len(got) != 1 || got[0].ID != kept.IDs[0] {
					t.Errorf("reopen %d: K-1 reads %d events, %v; want its one event", run, len(got), err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Deleting a stream that a damaged event was linked into asks the log where the event
// came from, and its record cannot be read: the deletion still applies (the event is
// taken to be alive), at once and when a restart replays it.
func TestDeleteStreamLinkingADamagedEventAppliesAndReplays(t *testing.T) {
	ctx := context.Background()
	dir, crashed := t.TempDir(), filepath.Join(t.TempDir(), "crashed")
	opts := pmd.Options{Logger: quietLogger(), NoScrub: true}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Append(ctx, "A-1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"m": "DAMAGE-THIS-EVENT"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Link(ctx, "B-1", pmd.Any, w.IDs[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, "DAMAGE-THIS-EVENT")
	if s, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "B-1", pmd.Any); err != nil {
		t.Fatalf("delete of the stream linking the damaged event: %v", err)
	}
	if _, err := s.Append(ctx, "C-1", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
		t.Fatalf("append after the deletion: %v", err)
	}
	last := s.Stats().LastPosition
	copyDir(t, dir, crashed)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pmd.Open(crashed, opts)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	if got := s.Stats().LastPosition; got != last {
		t.Errorf("last position %d, want %d", got, last)
	}
	var nf *pmd.StreamNotFoundError
	if _, err := readStream(t, s, "B-1", pmd.ReadOptions{}); !errors.As(err, &nf) {
		t.Errorf("B-1 after the replay: %v, want deleted", err)
	}
}
