package pmd_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// polledContext counts the calls of its Err, and is done once they pass limit: how
// many times a read asked whether to go on tells how far it went.
type polledContext struct {
	context.Context
	polls, limit atomic.Int64
}

func (c *polledContext) Err() error {
	if c.polls.Add(1) > c.limit.Load() {
		return context.Canceled
	}
	return nil
}

func (c *polledContext) Done() <-chan struct{} { return nil }

func (c *polledContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// TestEventStreamsBounded: the streams of an event linked into many are read a page at a
// time, and the read stops when its context is done. EventStreams read every link of
// the event, one index lookup each, and did not look at its context after the start:
// GET /v1/events/{id}, which shows 1000 of them, paid 5.3 s and 115 MB for an event
// linked into 200,000 streams, on and on after its client had gone.
func TestEventStreamsBounded(t *testing.T) {
	s := openStore(t, "")
	fact := ev("Fact")
	mustAppend(t, s, "Order$1", pmd.NoStream, fact)
	const n = 2000
	want := []string{"Order$1"}
	for i := range n {
		stream := fmt.Sprintf("Cart$%05d", i)
		mustLink(t, s, stream, pmd.NoStream, fact.ID)
		want = append(want, stream)
	}
	// Links whose streams were deleted are read but not listed.
	for i := 0; i < n; i += 2 {
		mustDelete(t, s, want[1+i])
	}
	want = slices.DeleteFunc(want, func(name string) bool {
		var i int
		_, err := fmt.Sscanf(name, "Cart$%05d", &i)
		return err == nil && i%2 == 0
	})

	t.Run("a page reads about its size", func(t *testing.T) {
		const limit = 10
		ctx := &polledContext{Context: context.Background()}
		ctx.limit.Store(1 << 30)
		page, next, err := s.EventStreamsPage(ctx, fact.ID, 0, limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(page, want[:limit]) || next == 0 {
			t.Fatalf("first page = %q, next %d; want %q and a next", page, next, want[:limit])
		}
		// The own stream and 9 links listed, 10 hidden between them, one past the page,
		// and a few asks before the links.
		if polls := ctx.polls.Load(); polls > 2*limit+8 {
			t.Fatalf("a page of %d streams of an event linked into %d asked its context %d times: it read more links than the page needs", limit, n, polls)
		}
		rest, _, err := s.EventStreamsPage(context.Background(), fact.ID, next, limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rest, want[limit:2*limit]) {
			t.Fatalf("second page = %q, want %q", rest, want[limit:2*limit])
		}
	})

	t.Run("all of them, a page at a time", func(t *testing.T) {
		if got := eventStreamsPaged(t, s, fact.ID, 333); !slices.Equal(got, want) {
			t.Fatalf("pages gave %d streams, want %d", len(got), len(want))
		}
		if got := eventStreams(t, s, fact.ID); !slices.Equal(got, want) {
			t.Fatalf("EventStreams gave %d streams, want %d", len(got), len(want))
		}
	})

	t.Run("a context done stops the read", func(t *testing.T) {
		for _, read := range []struct {
			name string
			fn   func(ctx context.Context) error
		}{
			{"EventStreams", func(ctx context.Context) error { _, err := s.EventStreams(ctx, fact.ID); return err }},
			{"EventStreamsPage", func(ctx context.Context) error {
				_, _, err := s.EventStreamsPage(ctx, fact.ID, 0, 10*n)
				return err
			}},
		} {
			ctx := &polledContext{Context: context.Background()}
			ctx.limit.Store(100)
			if err := read.fn(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("%s with a context done after 100 links: %v, want context.Canceled", read.name, err)
			}
			if polls := ctx.polls.Load(); polls > 101 {
				t.Fatalf("%s asked its context %d times after it was done: it went on reading", read.name, polls)
			}
		}
	})

	t.Run("a limit below 1 is refused", func(t *testing.T) {
		if _, _, err := s.EventStreamsPage(context.Background(), fact.ID, 0, 0); !errors.Is(err, pmd.ErrInvalidArgument) {
			t.Fatalf("EventStreamsPage with limit 0: %v, want ErrInvalidArgument", err)
		}
	})
}

// TestEventStreamsPageAfterTheLastPosition: a cursor at the last position there can be
// lists nothing. The links still in the index's memory were searched from after+1,
// which wrapped to 0 there and listed every one of them.
func TestEventStreamsPageAfterTheLastPosition(t *testing.T) {
	s := openStore(t, "")
	fact := ev("Fact")
	mustAppend(t, s, "Order$1", pmd.NoStream, fact)
	mustLink(t, s, "Cart$1", pmd.NoStream, fact.ID)
	streams, next, err := s.EventStreamsPage(context.Background(), fact.ID, math.MaxUint64, 10)
	if err != nil || len(streams) != 0 || next != 0 {
		t.Fatalf("EventStreamsPage after position 2^64-1: %v, next %d, %v; want none", streams, next, err)
	}
}
