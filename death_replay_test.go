package pmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/engine"
)

// The index the writes built, a write at a time, is the one a replay of the log builds
// (engine.Verify rebuilds it and compares them entry by entry), whether an event's link
// was written before it died (expired, deleted, erased first) or after, and when the
// link and the deletion race.
func TestIndexAgreesWithReplayAroundDeaths(t *testing.T) {
	ctx := context.Background()
	type writes struct {
		t *testing.T
		s *Store
	}
	appendOne := func(w writes, stream string) uuid.UUID {
		w.t.Helper()
		id := uuid.New()
		if _, err := w.s.Append(ctx, stream, Any, EventData{ID: id, Type: "T"}); err != nil {
			w.t.Fatal(err)
		}
		return id
	}
	link := func(w writes, stream string, id uuid.UUID) error {
		_, err := w.s.Link(ctx, stream, Any, id)
		return err
	}
	mustLink := func(w writes, stream string, id uuid.UUID) {
		w.t.Helper()
		if err := link(w, stream, id); err != nil {
			w.t.Fatal(err)
		}
	}
	refused := func(w writes, stream string, id uuid.UUID) {
		w.t.Helper()
		if err := link(w, stream, id); !errors.Is(err, ErrEventNotFound) {
			w.t.Fatalf("link of a dead event into %s: %v, want ErrEventNotFound", stream, err)
		}
	}
	del := func(w writes, stream string) {
		w.t.Helper()
		if err := w.s.DeleteStream(ctx, stream, Any); err != nil {
			w.t.Fatal(err)
		}
	}
	retain := func(w writes, stream string, r Retention) {
		w.t.Helper()
		if err := w.s.SetRetention(ctx, stream, r); err != nil {
			w.t.Fatal(err)
		}
	}
	erase := func(w writes, stream string) {
		w.t.Helper()
		if err := w.s.EraseStream(ctx, stream); err != nil {
			w.t.Fatal(err)
		}
	}
	scavenge := func(w writes) {
		w.t.Helper()
		if _, err := w.s.Scavenge(ctx, ScavengeOptions{BytesPerSecond: -1}); err != nil {
			w.t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		run  func(w writes)
	}{
		{"linked, then deleted everywhere", func(w writes) {
			id := appendOne(w, "A$1")
			mustLink(w, "B$1", id)
			del(w, "A$1")
			del(w, "B$1")
			refused(w, "C$1", id)
		}},
		{"deleted, then linked", func(w writes) {
			id := appendOne(w, "A$1")
			del(w, "A$1")
			refused(w, "B$1", id)
			appendOne(w, "A$1")
		}},
		{"linked, then truncated everywhere", func(w writes) {
			id := appendOne(w, "A$1")
			mustLink(w, "B$1", id)
			appendOne(w, "A$1")
			appendOne(w, "B$1")
			retain(w, "A$1", Retention{TruncateBefore: 1})
			retain(w, "B$1", Retention{MaxCount: 1})
			refused(w, "C$1", id)
		}},
		{"expired by age, linked, then expired", func(w writes) {
			id := appendOne(w, "A$1")
			retain(w, "A$1", Retention{MaxAge: time.Nanosecond})
			mustLink(w, "B$1", id) // hidden by age, not dead: the index shows it
			scavenge(w)            // records the expiry: the link keeps it
			mustLink(w, "C$1", id)
			del(w, "B$1")
			del(w, "C$1")
			refused(w, "D$1", id)
			scavenge(w)
		}},
		{"linked, then expired", func(w writes) {
			id := appendOne(w, "A$1")
			mustLink(w, "B$1", id)
			retain(w, "A$1", Retention{MaxAge: time.Nanosecond})
			retain(w, "B$1", Retention{MaxAge: time.Nanosecond})
			scavenge(w)
			refused(w, "C$1", id)
		}},
		{"erased, linked, then deleted", func(w writes) {
			id := appendOne(w, "A$1")
			erase(w, "A$1")
			mustLink(w, "B$1", id)
			del(w, "A$1")
			erase(w, "B$1")
			del(w, "B$1")
			refused(w, "C$1", id)
			scavenge(w)
		}},
		{"links racing deletions", func(w writes) {
			var wg sync.WaitGroup
			for i := range 40 {
				a, b := fmt.Sprintf("A$%d", i), fmt.Sprintf("B$%d", i)
				id := appendOne(w, a)
				wg.Go(func() {
					if err := link(w, b, id); err != nil && !errors.Is(err, ErrEventNotFound) {
						t.Error(err)
					}
				})
				wg.Go(func() {
					if err := w.s.DeleteStream(ctx, a, Any); err != nil {
						t.Error(err)
					}
				})
				if i%2 == 0 {
					wg.Go(func() {
						if err := w.s.DeleteStream(ctx, b, Any); err != nil {
							t.Error(err)
						}
					})
				}
			}
			wg.Wait()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler), SegmentSize: 4 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c.run(writes{t, s})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := engine.Verify(ctx, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() || !r.Agrees {
				t.Fatalf("the index the writes built is not the log's: %+v", r)
			}
		})
	}
}
