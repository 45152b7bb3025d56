package pmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
)

// TestAliveReadsLinksAPageAtATime: a link planned in the batch of a deletion asks
// whether its event is still alive, which looks for a stream that still shows it. That
// read every stream the event is linked into, all their names at once (LinkedInto),
// even when the first one still shows it, and looked up each one's state: a link of an
// event linked into 5,000 streams of long names allocated 4 MB (52 MB under the race
// detector), 185 KiB now (2.5 MB). It reads them a page at a time and stops at the
// first stream that shows the event. The bound is the race detector's or not: no one
// bound tells the two apart in both modes.
func TestAliveReadsLinksAPageAtATime(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := uuid.New()
	if _, err := s.Append(ctx, "Src$1", NoStream, EventData{ID: id, Type: "E"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "Other$1", NoStream, EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	const n, writers = 5_000, 8
	pad := strings.Repeat("x", 240)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += writers {
				_, errs[w] = s.Link(ctx, fmt.Sprintf("Cart$%s%06d", pad, i), NoStream, id)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Open again, everything in the index's files, and hold the committer after a
	// first batch, so that the deletion and the link are planned together.
	var armed atomic.Bool
	hold, release := make(chan struct{}), make(chan struct{})
	opts.OnCommit = func(CommitInfo) {
		if armed.CompareAndSwap(true, false) {
			close(hold)
			<-release
		}
	}
	if s, err = Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	armed.Store(true)
	first := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "First$1", NoStream, EventData{Type: "E"})
		first <- err
	}()
	<-hold
	deleted, linked := make(chan error, 1), make(chan error, 1)
	go func() { deleted <- s.DeleteStream(ctx, "Other$1", Any) }()
	waitQueued(t, s, 1)
	go func() {
		_, err := s.Link(ctx, "New$1", NoStream, id)
		linked <- err
	}()
	waitQueued(t, s, 2)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	close(release)
	for _, c := range []chan error{first, deleted, linked} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	took := after.TotalAlloc - before.TotalAlloc
	t.Logf("the batch of a deletion and a link of an event linked into %d streams allocated %d KiB", n, took>>10)
	limit := uint64(1 << 20)
	if raceOn {
		limit = 16 << 20
	}
	if took > limit {
		t.Fatalf("the batch of a deletion and a link of an event linked into %d streams allocated %d KiB, want under %d KiB", n, took>>10, limit>>10)
	}
}
