package pmd

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
)

// TestWriteRightAfterACut: a write planned right after one that hid events (a deletion,
// retention, an append past max_count, an erasure) gets the same answer whether it is
// planned in the same batch, in the next one (against the overlay of the batch in
// flight) or after a write in between (against the index): a dead event is not linked
// back to life, and an event hidden from a stream may be linked into it again.
func TestWriteRightAfterACut(t *testing.T) {
	type op func(ctx context.Context, s *Store, id map[string]uuid.UUID) error
	appendTo := func(stream string, names ...string) op {
		return func(ctx context.Context, s *Store, id map[string]uuid.UUID) error {
			evs := make([]EventData, len(names))
			for i, n := range names {
				evs[i] = EventData{ID: id[n], Type: "T"}
			}
			_, err := s.Append(ctx, stream, Any, evs...)
			return err
		}
	}
	link := func(stream, name string) op {
		return func(ctx context.Context, s *Store, id map[string]uuid.UUID) error {
			_, err := s.Link(ctx, stream, Any, id[name])
			return err
		}
	}
	retain := func(stream string, r Retention) op {
		return func(ctx context.Context, s *Store, _ map[string]uuid.UUID) error {
			return s.SetRetention(ctx, stream, r)
		}
	}
	del := func(stream string) op {
		return func(ctx context.Context, s *Store, _ map[string]uuid.UUID) error {
			return s.DeleteStream(ctx, stream, Any)
		}
	}
	erase := func(stream string) op {
		return func(ctx context.Context, s *Store, _ map[string]uuid.UUID) error {
			return s.EraseStream(ctx, stream)
		}
	}
	ops := func(o ...op) []op { return o }

	cases := []struct {
		name    string
		setup   []op // each its own batch, before a
		a       []op // the write that cuts (its last op is the batch in flight for b)
		b       op
		want    error  // nil, ErrEventNotFound or ErrDuplicateEvent
		target  string // the event b names, and whether it is found afterwards
		isFound bool
	}{
		{"append past max_count, link the hidden one elsewhere",
			ops(retain("S", Retention{MaxCount: 1})), ops(appendTo("S", "e0", "e1")),
			link("L", "e0"), ErrEventNotFound, "e0", false},
		{"append past max_count, link the hidden one into its stream",
			ops(retain("S", Retention{MaxCount: 1})), ops(appendTo("S", "e0", "e1")),
			link("S", "e0"), ErrEventNotFound, "e0", false},
		{"append past max_count, link the visible one elsewhere",
			ops(retain("S", Retention{MaxCount: 1})), ops(appendTo("S", "e0", "e1")),
			link("L", "e1"), nil, "e1", true},
		{"append past max_count, link the visible one into its stream",
			ops(retain("S", Retention{MaxCount: 1})), ops(appendTo("S", "e0", "e1")),
			link("S", "e1"), ErrDuplicateEvent, "e1", true},
		{"two appends past max_count, link the first",
			ops(retain("S", Retention{MaxCount: 1})), ops(appendTo("S", "e0"), appendTo("S", "e1")),
			link("L", "e0"), ErrEventNotFound, "e0", false},
		{"append past max_count, append the hidden id elsewhere",
			ops(retain("S", Retention{MaxCount: 1})), ops(appendTo("S", "e0", "e1")),
			appendTo("T", "e0"), ErrDuplicateEvent, "e0", false},
		{"append past max_count, an event linked elsewhere lives",
			ops(retain("S", Retention{MaxCount: 1}), appendTo("S", "e0"), link("L", "e0")), ops(appendTo("S", "e1")),
			link("M", "e0"), nil, "e0", true},
		{"append past max_count, link it back into its stream",
			ops(retain("S", Retention{MaxCount: 1}), appendTo("S", "e0"), link("L", "e0")), ops(appendTo("S", "e1")),
			link("S", "e0"), nil, "e0", true},
		{"truncate_before, link the hidden one",
			ops(appendTo("S", "e0", "e1")), ops(retain("S", Retention{TruncateBefore: 1})),
			link("L", "e0"), ErrEventNotFound, "e0", false},
		{"truncate_before, link the visible one into its stream",
			ops(appendTo("S", "e0", "e1")), ops(retain("S", Retention{TruncateBefore: 1})),
			link("S", "e1"), ErrDuplicateEvent, "e1", true},
		{"truncate_before after an append, link the hidden one",
			nil, ops(appendTo("S", "e0", "e1"), retain("S", Retention{TruncateBefore: 1})),
			link("L", "e0"), ErrEventNotFound, "e0", false},
		{"max_count set, link the hidden one",
			ops(appendTo("S", "e0", "e1")), ops(retain("S", Retention{MaxCount: 1})),
			link("S", "e0"), ErrEventNotFound, "e0", false},
		{"max_count of the link stream hides a link, link it again",
			ops(retain("L", Retention{MaxCount: 1}), appendTo("S", "e0", "e1")), ops(link("L", "e0"), link("L", "e1")),
			link("L", "e0"), nil, "e0", true},
		{"max_count of the link stream hides the last membership",
			ops(retain("L", Retention{MaxCount: 1}), appendTo("S", "e0"), link("L", "e0"), del("S")), ops(appendTo("L", "x")),
			link("M", "e0"), ErrEventNotFound, "e0", false},
		{"delete, link elsewhere",
			ops(appendTo("S", "e0")), ops(del("S")),
			link("L", "e0"), ErrEventNotFound, "e0", false},
		{"delete, link back",
			ops(appendTo("S", "e0")), ops(del("S")),
			link("S", "e0"), ErrEventNotFound, "e0", false},
		{"append then delete, link",
			nil, ops(appendTo("S", "e0"), del("S")),
			link("L", "e0"), ErrEventNotFound, "e0", false},
		{"delete, append the id elsewhere",
			ops(appendTo("S", "e0")), ops(del("S")),
			appendTo("T", "e0"), ErrDuplicateEvent, "e0", false},
		{"delete, an event linked elsewhere lives",
			ops(appendTo("S", "e0"), link("L", "e0")), ops(del("S")),
			link("M", "e0"), nil, "e0", true},
		{"delete, link back an event linked elsewhere",
			ops(appendTo("S", "e0"), link("L", "e0")), ops(del("S")),
			link("S", "e0"), nil, "e0", true},
		{"delete the link stream, link again",
			ops(appendTo("S", "e0"), link("L", "e0")), ops(del("L")),
			link("L", "e0"), nil, "e0", true},
		{"erase, link",
			ops(appendTo("S", "e0")), ops(erase("S")),
			link("L", "e0"), nil, "e0", true},
	}
	type mode int
	const (
		sameBatch mode = iota // a and b planned together
		nextBatch             // b planned against the overlay of a's batch in flight
		afterNoop             // b planned against the index: a write in between
	)
	run := func(t *testing.T, m mode, setup, a []op, b op, target string) (error, bool) {
		var armed atomic.Bool
		held, release := make(chan struct{}), make(chan struct{})
		s, err := Open(t.TempDir(), Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler),
			OnCommit: func(CommitInfo) {
				if armed.CompareAndSwap(true, false) {
					close(held)
					<-release
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		id := map[string]uuid.UUID{"e0": uuid.New(), "e1": uuid.New(), "x": uuid.New()}
		for i, o := range setup {
			if err := o(ctx, s, id); err != nil {
				t.Fatalf("setup %d: %v", i, err)
			}
		}
		var berr error
		switch m {
		case sameBatch:
			// Hold the committer after a batch of its own, queue a and b behind it,
			// and let them go as one batch.
			armed.Store(true)
			holder := make(chan error, 1)
			go func() {
				_, err := s.Append(ctx, "Hold", Any, EventData{Type: "T"})
				holder <- err
			}()
			<-held
			all := append(append([]op(nil), a...), b)
			errs := make([]chan error, len(all))
			for i, o := range all {
				errs[i] = make(chan error, 1)
				go func() { errs[i] <- o(ctx, s, id) }()
				waitQueued(t, s, i+1)
			}
			close(release)
			if err := <-holder; err != nil {
				t.Fatal(err)
			}
			for i := range a {
				if err := <-errs[i]; err != nil {
					t.Fatalf("a %d: %v", i, err)
				}
			}
			berr = <-errs[len(a)]
		default:
			for i, o := range a {
				if err := o(ctx, s, id); err != nil {
					t.Fatalf("a %d: %v", i, err)
				}
			}
			if m == afterNoop {
				if _, err := s.Append(ctx, "Noop", Any, EventData{Type: "T"}); err != nil {
					t.Fatal(err)
				}
			}
			berr = b(ctx, s, id)
		}
		_, err = s.Event(ctx, id[target])
		if err != nil && !errors.Is(err, ErrEventNotFound) {
			t.Fatal(err)
		}
		return berr, err == nil
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, m := range []mode{sameBatch, nextBatch, afterNoop} {
				name := [...]string{"in the same batch", "in the next batch", "after a write in between"}[m]
				err, found := run(t, m, c.setup, c.a, c.b, c.target)
				if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
					t.Errorf("%s: b answered %v, want %v", name, err, c.want)
				}
				if found != c.isFound {
					t.Errorf("%s: %s found afterwards = %v, want %v", name, c.target, found, c.isFound)
				}
			}
		})
	}
}
