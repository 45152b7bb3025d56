package pmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/damagetest"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// openQuiet opens a store in a fresh directory, without fsync, scrub or logs, closed
// when the test ends.
func openQuiet(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPipelineKeepsTheContract hammers a few streams with concurrent appends, links,
// retries and deletes, so that batches are planned while the one before is still being
// indexed, then walks the log: every record must be one the contract allows after the
// records before it, every acknowledged write must be there as answered, and readable at
// once.
func TestPipelineKeepsTheContract(t *testing.T) {
	s := openQuiet(t)
	ctx := context.Background()
	streams := []string{"A$1", "A$2", "B$1", "B$2"}
	// Appends take fresh ids in sequence, or ids taken just before, which may be in the
	// batch in flight; links pick ids taken just before too.
	var taken atomic.Int64
	id := func(n int64) uuid.UUID {
		return uuid.MustParse(fmt.Sprintf("0190c1d2-0000-7000-8000-%012x", n))
	}
	recent := func(rng *rand.Rand) uuid.UUID {
		if n := taken.Load() - rng.Int64N(4); n > 0 {
			return id(n)
		}
		return id(taken.Add(1))
	}

	type acked struct {
		stream   string
		expected ExpectedVersion
		res      WriteResult
		retry    bool // may be an exact retry, answered with an earlier write's result
	}
	var (
		mu   sync.Mutex
		acks []acked
	)
	const writers, ops = 8, 300
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range ops {
				stream := streams[rng.IntN(len(streams))]
				expected := Any
				switch rng.IntN(3) {
				case 0:
					expected = NoStream
				case 1:
					info, err := s.StreamInfo(stream)
					if err != nil {
						errc <- err
						return
					}
					if info.Exists {
						expected = AtVersion(uint64(info.Version))
					}
				}
				var res WriteResult
				var err error
				retry := false
				switch op := rng.IntN(10); {
				case op < 5:
					evs := make([]EventData, 1+rng.IntN(3))
					for i := range evs {
						evs[i] = EventData{Type: "T"}
						switch rng.IntN(3) {
						case 0:
							evs[i].ID = id(taken.Add(1))
						case 1:
							if i == 0 { // one recent id an append, so that it never repeats one
								evs[i].ID = recent(rng)
								retry = true
							}
						}
					}
					res, err = s.Append(ctx, stream, expected, evs...)
				case op < 9:
					res, err = s.Link(ctx, stream, expected, recent(rng))
				default:
					err = s.DeleteStream(ctx, stream, expected)
				}
				var wrong *WrongExpectedVersionError
				switch {
				case err == nil:
				case errors.As(err, &wrong), errors.Is(err, ErrDuplicateEvent), errors.Is(err, ErrEventNotFound):
					continue
				default:
					errc <- err
					return
				}
				if res.LastPosition == 0 {
					continue // a delete
				}
				if got := s.LastPosition(); got < res.LastPosition {
					errc <- fmt.Errorf("write acknowledged up to position %d, but the store shows %d", res.LastPosition, got)
					return
				}
				mu.Lock()
				acks = append(acks, acked{stream, expected, res, retry})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	// Walk the log with the contract's rules.
	type streamState struct {
		next, first uint64
		members     map[uint64]bool
	}
	states := map[string]*streamState{}
	stateOf := func(name string) *streamState {
		if states[name] == nil {
			states[name] = &streamState{members: map[uint64]bool{}}
		}
		return states[name]
	}
	seen := map[uuid.UUID]uint64{}
	before := map[uint64]streamState{} // the state of a record's stream before it, by position
	last := s.LastPosition()
	for pos := uint64(1); pos <= last; pos++ {
		rec, err := s.log.Read(pos)
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Kind {
		case pmdlog.KindEvent:
			e := rec.Event
			st := stateOf(e.Stream)
			before[pos] = *st
			if _, dup := seen[e.ID]; dup {
				t.Fatalf("position %d: id %v written twice", pos, e.ID)
			}
			if e.Version != st.next {
				t.Fatalf("position %d: %s version %d, want %d", pos, e.Stream, e.Version, st.next)
			}
			seen[e.ID] = pos
			st.members[pos] = true
			st.next++
		case pmdlog.KindLink:
			l := rec.Link
			st := stateOf(l.Stream)
			before[pos] = *st
			if p, ok := seen[l.ID]; !ok || p != l.Event {
				t.Fatalf("position %d: link to %v at %d, which is not stored there", pos, l.ID, l.Event)
			}
			if st.members[l.Event] {
				t.Fatalf("position %d: %v linked into %s, which holds it already", pos, l.ID, l.Stream)
			}
			if l.Version != st.next {
				t.Fatalf("position %d: %s version %d, want %d", pos, l.Stream, l.Version, st.next)
			}
			st.members[l.Event] = true
			st.next++
		case pmdlog.KindDelete:
			d := rec.Delete
			st := stateOf(d.Stream)
			if st.first == st.next || d.Before != st.next {
				t.Fatalf("position %d: delete of %s before %d, stream at [%d, %d)", pos, d.Stream, d.Before, st.first, st.next)
			}
			st.first = st.next
			clear(st.members)
		default:
			t.Fatalf("position %d: unexpected kind %v", pos, rec.Kind)
		}
	}
	// An exact retry is answered with the result of the write it repeats, whose writer
	// has the same answer. An append that took a fresh id can be one too: another writer
	// may have picked that id as a recent one and appended it first.
	answers := map[uint64]int{}
	for _, a := range acks {
		answers[a.res.FirstPosition]++
	}
	for _, a := range acks {
		st := before[a.res.FirstPosition]
		exists := st.first < st.next
		switch kind := a.expected.kind; {
		case a.retry, answers[a.res.FirstPosition] > 1:
			// Answered before the expected version is checked, possibly with the
			// result of another writer's append.
		case kind == expectNoStream:
			if exists {
				t.Errorf("%+v: written with no_stream over a stream at [%d, %d)", a, st.first, st.next)
			}
		case kind == expectExact:
			if !exists || st.next-1 != a.expected.version {
				t.Errorf("%+v: written expecting %d over a stream at [%d, %d)", a, a.expected.version, st.first, st.next)
			}
		}
		if want := st.next + a.res.LastPosition - a.res.FirstPosition; a.res.Version != want {
			t.Errorf("%+v: answered version %d, the log says %d", a, a.res.Version, want)
		}
	}
	if len(acks) < writers*ops/10 {
		t.Fatalf("only %d of %d writes succeeded: the test exercises too little", len(acks), writers*ops)
	}
}

// TestAcknowledgedWritesAreReadable: writers are answered before the applier indexes
// their batch, so every read must wait for it. Each writer reads its write back through
// every read path the moment it is acknowledged.
func TestAcknowledgedWritesAreReadable(t *testing.T) {
	s := openQuiet(t)
	ctx := context.Background()
	const writers, ops = 8, 200
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("W$%d", w)
			for i := range ops {
				expected := NoStream
				if i > 0 {
					expected = AtVersion(uint64(i - 1))
				}
				res, err := s.Append(ctx, stream, expected, EventData{Type: "T"})
				if err != nil {
					errc <- err
					return
				}
				id := res.IDs[0]
				if _, err := s.Event(ctx, id); err != nil {
					errc <- fmt.Errorf("Event(%s) right after its append: %w", id, err)
					return
				}
				if in, err := s.Contains(stream, res.LastPosition); err != nil || !in {
					errc <- fmt.Errorf("Contains(%s, %d) right after its append = %v, %v", stream, res.LastPosition, in, err)
					return
				}
				info, err := s.StreamInfo(stream)
				if err != nil || info.Version != int64(i) {
					errc <- fmt.Errorf("StreamInfo(%s) right after version %d = %+v, %v", stream, i, info, err)
					return
				}
				var last Event
				for ev, err := range s.ReadStream(ctx, stream, ReadOptions{Backward: true, From: uint64(i), Limit: 1}) {
					if err != nil {
						errc <- err
						return
					}
					last = ev
				}
				if last.ID != id {
					errc <- fmt.Errorf("the last event of %s right after its append is %s, not %s", stream, last.ID, id)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestReadsWaitingForAFailedIndexEnd: a read waiting for an acknowledged batch that the
// index could not take ends with the failure, and a read given up ends with its context.
func TestReadsWaitingForAFailedIndexEnd(t *testing.T) {
	s := openQuiet(t)
	// As if a batch ending at the next position were acknowledged but not yet indexed.
	s.acked.Store(s.idx.Position() + 1)
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() { waited <- s.visible(ctx) }()
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("a read given up while it waits for the index: %v, want context.Canceled", err)
	}

	go func() { waited <- s.visible(context.Background()) }()
	failure := &UnavailableError{Cause: errors.New("index: disk on fire")}
	s.fail(failure)
	s.notify()
	if err := <-waited; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a read waiting for a batch the index failed: %v, want ErrUnavailable", err)
	}
	if _, err := s.StreamInfo("A$1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("StreamInfo after the index failed behind an acknowledged write: %v, want ErrUnavailable", err)
	}
}

// TestExactRetryInTheSameBatch: a writer gives up waiting for an append (its context
// ends while the append is queued) and retries it at once. The original is still written,
// and the retry lands in the same batch: it must be answered as a retry, with the
// original's result, and write nothing more. If the batch's log write fails (a full
// disk), the retry fails with it: it must not be told the write succeeded.
func TestExactRetryInTheSameBatch(t *testing.T) {
	for _, c := range []struct {
		expected ExpectedVersion
		full     bool
	}{{NoStream, false}, {Any, false}, {NoStream, true}} {
		name := c.expected.String()
		if c.full {
			name += ", disk full"
		}
		expected := c.expected
		t.Run(name, func(t *testing.T) {
			dir, fill := t.TempDir(), func() {}
			if c.full {
				dir, fill = smallDisk(t)
			}
			hold, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			s, err := Open(dir, Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler),
				OnCommit: func(CommitInfo) {
					once.Do(func() { close(hold); <-release })
				}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx := context.Background()

			// Hold the committer after its first batch, so that the next two requests
			// queue up and are planned together.
			first := make(chan error, 1)
			go func() {
				_, err := s.Append(ctx, "Other$1", Any, EventData{Type: "T"})
				first <- err
			}()
			<-hold
			events := []EventData{{ID: uuid.New(), Type: "A"}, {ID: uuid.New(), Type: "B"}}
			if c.full {
				// More than the page the log's file may have left: the write needs more.
				events[1].Data = map[string]any{"pad": strings.Repeat("p", 64<<10)}
			}
			gaveUp, cancel := context.WithCancel(ctx)
			original := make(chan error, 1)
			go func() {
				_, err := s.Append(gaveUp, "S$1", expected, events...)
				original <- err
			}()
			retried := make(chan struct {
				res WriteResult
				err error
			}, 1)
			// Queue the original, give it up, then queue the retry behind it.
			waitQueued(t, s, 1)
			cancel()
			if err := <-original; !errors.Is(err, context.Canceled) {
				t.Fatalf("original append given up: %v, want context.Canceled", err)
			}
			go func() {
				res, err := s.Append(ctx, "S$1", expected, events...)
				retried <- struct {
					res WriteResult
					err error
				}{res, err}
			}()
			waitQueued(t, s, 2)
			fill()
			close(release)
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			got := <-retried
			if c.full {
				if !errors.Is(got.err, ErrUnavailable) {
					t.Fatalf("exact retry in a batch whose log write failed: %+v, %v; want ErrUnavailable", got.res, got.err)
				}
				if _, err := s.Event(ctx, events[0].ID); !errors.Is(err, ErrEventNotFound) {
					t.Fatalf("the event of the failed batch: %v, want ErrEventNotFound", err)
				}
				return
			}
			if got.err != nil {
				t.Fatalf("exact retry of an append queued in the same batch: %v", got.err)
			}
			info, err := s.StreamInfo("S$1")
			if err != nil {
				t.Fatal(err)
			}
			if info.Version != 1 {
				t.Fatalf("stream version after an append of 2 events and its retry = %d, want 1", info.Version)
			}
			if got.res.Version != 1 || got.res.LastPosition != got.res.FirstPosition+1 ||
				len(got.res.IDs) != 2 || got.res.IDs[0] != events[0].ID || got.res.IDs[1] != events[1].ID {
				t.Fatalf("retry answered %+v, want the original's result (versions 0-1, ids %v)", got.res, []uuid.UUID{events[0].ID, events[1].ID})
			}
			for i, ev := range events {
				e, err := s.Event(ctx, ev.ID)
				if err != nil {
					t.Fatal(err)
				}
				if e.Position != got.res.FirstPosition+uint64(i) {
					t.Fatalf("event %d at position %d, but the retry answered first position %d", i, e.Position, got.res.FirstPosition)
				}
			}
		})
	}
}

// waitQueued waits until n requests wait for the committer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for len(s.reqs) < n {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d requests queued after 10 s, want %d", len(s.reqs), n)
		}
	}
}

// smallDisk mounts a 4 MiB tmpfs for the test and returns a data directory on it and a
// function that fills the rest of it, so that the next log write of more than a page
// fails with ENOSPC, until the test ends. It skips the test where mounting is refused.
func smallDisk(t *testing.T) (dir string, fill func()) {
	t.Helper()
	mnt := damagetest.SmallDisk(t, "4m")
	return filepath.Join(mnt, "data"), func() {
		filler := filepath.Join(mnt, "filler")
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// Before the store closes (cleanups run last first): a store closing on a full
		// disk waits for its index to flush.
		t.Cleanup(func() { os.Remove(filler) })
		block := make([]byte, 64<<10)
		for {
			if _, err := f.Write(block); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				return
			}
		}
	}
}

// TestIndexFailureBehindADurableBatch: the index refuses a batch that is already durable
// in the log. Its writer is answered (the write is stored), every later write is refused
// as unavailable, Problems says so (a health check turns degraded), and a restart replays
// the batch into the index.
func TestIndexFailureBehindADurableBatch(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Append(ctx, "S$1", NoStream, EventData{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("problems of a healthy store: %q", p)
	}
	// An append is answered before its batch is indexed: the index must hold the first
	// one before it fails, or the first one is the batch it refuses.
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.visible(wait); err != nil {
		t.Fatal(err)
	}
	// The committer knows S$1 from the append before, so it plans the next one without
	// the index; the index then refuses the batch.
	s.idx.Close()
	res, err := s.Append(ctx, "S$1", AtVersion(0), EventData{Type: "T"})
	if err != nil {
		t.Fatalf("append whose batch is in the log but not the index: %v, want its result", err)
	}
	// The applier's failure stops the writes; until it has, the next append's plan reads
	// the closed index.
	if err := s.visible(wait); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("waiting for the index after it failed: %v, want ErrUnavailable", err)
	}
	if _, err := s.Append(ctx, "S$2", Any, EventData{Type: "T"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append after the index failed: %v, want ErrUnavailable", err)
	}
	p := s.Problems()
	if len(p) != 1 || !strings.Contains(p[0], "writes stopped until a restart") || !strings.Contains(p[0], "index: closed") {
		t.Fatalf("problems after the index failed: %q, want one naming the stop and its cause", p)
	}
	s.Close()

	s, err = Open(dir, Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := s.Event(ctx, res.IDs[0])
	if err != nil {
		t.Fatalf("the acknowledged event after a restart: %v", err)
	}
	if e.Stream != "S$1" || e.Version != 1 || e.Position != res.FirstPosition {
		t.Fatalf("the acknowledged event after a restart: %+v, want version 1 of S$1 at %d", e, res.FirstPosition)
	}
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("problems after the restart: %q", p)
	}
}
