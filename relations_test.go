package pmd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

func mustDelete(t testing.TB, s *pmd.Store, stream string) {
	t.Helper()
	if err := s.DeleteStream(context.Background(), stream, pmd.Any); err != nil {
		t.Fatalf("DeleteStream(%s): %v", stream, err)
	}
}

func eventStreams(t testing.TB, s *pmd.Store, id uuid.UUID) []string {
	t.Helper()
	streams, err := s.EventStreams(context.Background(), id)
	if err != nil {
		t.Fatalf("EventStreams(%s): %v", id, err)
	}
	return streams
}

// eventStreamsPaged lists the streams of the event id with EventStreamsPage, limit a
// page, checking that every page but the last is full.
func eventStreamsPaged(t testing.TB, s *pmd.Store, id uuid.UUID, limit int) []string {
	t.Helper()
	var out []string
	for after := uint64(0); ; {
		page, next, err := s.EventStreamsPage(context.Background(), id, after, limit)
		if err != nil {
			t.Fatalf("EventStreamsPage(after %d, limit %d): %v", after, limit, err)
		}
		out = append(out, page...)
		if next == 0 {
			return out
		}
		if len(page) != limit {
			t.Fatalf("EventStreamsPage(after %d, limit %d) gave %d streams and next %d: a page with a next is full", after, limit, len(page), next)
		}
		after = next
	}
}

func caused(t testing.TB, s *pmd.Store, id uuid.UUID, limit int) []uuid.UUID {
	t.Helper()
	events, err := s.Caused(context.Background(), id, limit)
	if err != nil {
		t.Fatalf("Caused(%s, %d): %v", id, limit, err)
	}
	return ids(events)
}

// causedBy is an event whose metadata names parent as its causation.
func causedBy(typ string, parent uuid.UUID) pmd.EventData {
	e := ev(typ)
	e.Metadata = map[string]any{pmd.CausationID: parent.String(), pmd.CorrelationID: parent.String()}
	return e
}

func TestEventStreams(t *testing.T) {
	// Each case writes on top of the one before, in a store of its own, so that every
	// step is checked against a store that went through exactly the steps listed.
	fact := ev("Fact")
	other := ev("Other")
	steps := []struct {
		name  string
		write func(t *testing.T, s *pmd.Store)
		want  []string // EventStreams(fact) after the step; nil: it is dead, not found
	}{
		{"written", func(t *testing.T, s *pmd.Store) {
			mustAppend(t, s, "Order$1", pmd.NoStream, fact)
			mustAppend(t, s, "Other$1", pmd.NoStream, other)
		}, []string{"Order$1"}},
		{"linked", func(t *testing.T, s *pmd.Store) { mustLink(t, s, "P$1", pmd.NoStream, fact.ID) }, []string{"Order$1", "P$1"}},
		{"linked in link order", func(t *testing.T, s *pmd.Store) {
			mustLink(t, s, "Q$1", pmd.NoStream, other.ID, fact.ID)
			mustLink(t, s, "B$1", pmd.NoStream, fact.ID) // name order is not link order
		}, []string{"Order$1", "P$1", "Q$1", "B$1"}},
		{"a linked stream deleted", func(t *testing.T, s *pmd.Store) { mustDelete(t, s, "P$1") }, []string{"Order$1", "Q$1", "B$1"}},
		{"linked again after the deletion", func(t *testing.T, s *pmd.Store) {
			mustLink(t, s, "P$1", pmd.NoStream, fact.ID)
		}, []string{"Order$1", "Q$1", "B$1", "P$1"}},
		{"its own stream deleted", func(t *testing.T, s *pmd.Store) { mustDelete(t, s, "Order$1") }, []string{"Q$1", "B$1", "P$1"}},
		{"linked back into its own stream", func(t *testing.T, s *pmd.Store) {
			mustLink(t, s, "Order$1", pmd.NoStream, fact.ID)
		}, []string{"Q$1", "B$1", "P$1", "Order$1"}}, // in the order of its last link, like P$1
		{"every stream deleted", func(t *testing.T, s *pmd.Store) {
			for _, name := range []string{"Order$1", "Q$1", "B$1", "P$1"} {
				mustDelete(t, s, name)
			}
		}, nil},
	}
	for n := range steps {
		t.Run(steps[n].name, func(t *testing.T) {
			s := openStore(t, "")
			for _, step := range steps[:n+1] {
				step.write(t, s)
			}
			if steps[n].want == nil {
				if _, err := s.EventStreams(context.Background(), fact.ID); !errors.Is(err, pmd.ErrEventNotFound) {
					t.Fatalf("EventStreams of a dead event: %v, want ErrEventNotFound", err)
				}
			} else if got := eventStreams(t, s, fact.ID); !slices.Equal(got, steps[n].want) {
				t.Fatalf("EventStreams = %q, want %q", got, steps[n].want)
			}
			// EventStreamsPage gives the same streams, a page at a time, whatever the
			// page's size.
			for limit := 1; steps[n].want != nil && limit <= len(steps[n].want)+1; limit++ {
				if got := eventStreamsPaged(t, s, fact.ID, limit); !slices.Equal(got, steps[n].want) {
					t.Fatalf("EventStreamsPage by %d = %q, want %q", limit, got, steps[n].want)
				}
			}
			// Every stream it names reads it; nothing else does.
			for _, info := range streams(t, s, "", "", 100) {
				events, err := readStream(t, s, info.Name, pmd.ReadOptions{})
				if err != nil && !errors.Is(err, pmd.ErrStreamNotFound) {
					t.Fatal(err)
				}
				if in := slices.Contains(ids(events), fact.ID); in != slices.Contains(steps[n].want, info.Name) {
					t.Fatalf("stream %s reads the event: %v; EventStreams says %q", info.Name, in, steps[n].want)
				}
			}
		})
	}
}

// TestEventStreamsOwnStreamHidden: an event its own stream's retention hides there, linked
// back into it, is listed there in the order of that link, as after a deletion.
func TestEventStreamsOwnStreamHidden(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	if err := s.SetRetention(ctx, "Order$1", pmd.Retention{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	fact := ev("Fact")
	mustAppend(t, s, "Order$1", pmd.NoStream, fact)
	mustLink(t, s, "P$1", pmd.NoStream, fact.ID)
	mustAppend(t, s, "Order$1", pmd.Any, ev("Later")) // hides fact in Order$1
	if got, want := eventStreams(t, s, fact.ID), []string{"P$1"}; !slices.Equal(got, want) {
		t.Fatalf("EventStreams of an event hidden in its own stream = %q, want %q", got, want)
	}
	mustLink(t, s, "Order$1", pmd.Any, fact.ID)
	if got, want := eventStreams(t, s, fact.ID), []string{"P$1", "Order$1"}; !slices.Equal(got, want) {
		t.Fatalf("EventStreams after linking it back into its own stream = %q, want %q", got, want)
	}
}

func TestCaused(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	root := ev("OrderPlaced")
	unknown := uuid.New() // named as a cause before it is written
	mustAppend(t, s, "Order$1", pmd.NoStream, root)
	cook := causedBy("Cook", root.ID)
	cooked := causedBy("Cooked", cook.ID)
	mustAppend(t, s, "Kitchen$1", pmd.NoStream, cook, cooked) // the parent earlier in the same append
	pay := causedBy("Pay", root.ID)
	early := causedBy("Early", unknown)
	mustAppend(t, s, "Payment$1", pmd.NoStream, pay, early)
	late := pmd.EventData{ID: unknown, Type: "Late"}
	mustAppend(t, s, "Late$1", pmd.NoStream, late)
	afterLate := causedBy("AfterLate", unknown)
	mustAppend(t, s, "Late$1", pmd.Any, afterLate)

	self := ev("Self")
	self.Metadata = map[string]any{pmd.CausationID: self.ID.String()}
	notUUID := ev("NotUUID")
	notUUID.Metadata = map[string]any{pmd.CausationID: "order-1"}
	notString := ev("NotString")
	notString.Metadata = map[string]any{pmd.CausationID: 42}
	inData := ev("InData", pmd.CausationID, root.ID.String()) // data is not metadata
	nested := ev("Nested")
	nested.Metadata = map[string]any{"trace": map[string]any{pmd.CausationID: root.ID.String()}}
	braces := ev("Braces")
	braces.Metadata = map[string]any{pmd.CausationID: "{" + root.ID.String() + "}"} // uuid.Parse reads it
	mustAppend(t, s, "Odd$1", pmd.NoStream, self, notUUID, notString, inData, nested, braces)

	// A link is not an event: it causes nothing new, even of a caused event.
	mustLink(t, s, "PM$1", pmd.NoStream, cook.ID, cooked.ID)
	// Causations outlive stream membership: cook and cooked stay in PM$1. A dead event
	// (in no stream any more) is not listed, and not found by its id.
	dropped := causedBy("Dropped", cooked.ID)
	mustAppend(t, s, "Kitchen$1", pmd.Any, dropped)
	mustDelete(t, s, "Kitchen$1")

	for _, tc := range []struct {
		name  string
		id    uuid.UUID
		limit int
		want  []uuid.UUID
	}{
		{"fan-out, in log order", root.ID, 0, []uuid.UUID{cook.ID, pay.ID, braces.ID}},
		{"limit", root.ID, 2, []uuid.UUID{cook.ID, pay.ID}},
		{"limit above the count", root.ID, 10, []uuid.UUID{cook.ID, pay.ID, braces.ID}},
		{"a chain, through a deleted stream", cook.ID, 0, []uuid.UUID{cooked.ID}},
		{"the end of the chain: its child is dead", cooked.ID, 0, nil},
		{"named before it was written: only the later ones", unknown, 0, []uuid.UUID{afterLate.ID}},
		{"itself", self.ID, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := caused(t, s, tc.id, tc.limit); !slices.Equal(got, tc.want) {
				t.Fatalf("Caused = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("events as read", func(t *testing.T) {
		events, err := s.Caused(ctx, cook.ID, 0)
		if err != nil || len(events) != 1 {
			t.Fatalf("Caused(cook) = %v, %v", events, err)
		}
		e := events[0]
		if e.Stream != "Kitchen$1" || e.Version != 1 || e.Link || e.Type != "Cooked" || e.Metadata[pmd.CausationID] != cook.ID.String() {
			t.Fatalf("Caused(cook) = %+v, want Cooked as written at Kitchen$1 v1", e)
		}
	})
	t.Run("a dead event", func(t *testing.T) {
		if _, err := s.Caused(ctx, dropped.ID, 0); !errors.Is(err, pmd.ErrEventNotFound) {
			t.Fatalf("Caused(dead) error %v, want ErrEventNotFound", err)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		id := uuid.New()
		_, err := s.Caused(ctx, id, 0)
		var nf *pmd.EventNotFoundError
		if !errors.As(err, &nf) || nf.ID != id || !errors.Is(err, pmd.ErrEventNotFound) {
			t.Fatalf("Caused(unknown) error %v, want an *EventNotFoundError for %s", err, id)
		}
		_, err = s.EventStreams(ctx, id)
		if !errors.As(err, &nf) || nf.ID != id {
			t.Fatalf("EventStreams(unknown) error %v, want an *EventNotFoundError for %s", err, id)
		}
	})
	t.Run("negative limit", func(t *testing.T) {
		_, err := s.Caused(ctx, root.ID, -1)
		var ia *pmd.InvalidArgumentError
		if !errors.As(err, &ia) || ia.Arg != "limit" {
			t.Fatalf("Caused(limit -1) error %v, want an *InvalidArgumentError about limit", err)
		}
	})
	t.Run("context done", func(t *testing.T) {
		done, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Caused(done, root.ID, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Caused with a cancelled context: %v", err)
		}
		if _, err := s.EventStreams(done, root.ID); !errors.Is(err, context.Canceled) {
			t.Fatalf("EventStreams with a cancelled context: %v", err)
		}
	})
}

func TestCausedByConcurrentWriters(t *testing.T) {
	// Writers whose events name the same parent share group commits: each caused event
	// is recorded once, in log order.
	s := openStore(t, "")
	root := ev("Root")
	mustAppend(t, s, "Root", pmd.NoStream, root)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := causedBy("Child", root.ID)
				if i%2 == 1 {
					e = ev("Unrelated")
				}
				if _, err := s.Append(context.Background(), fmt.Sprintf("W$%d", w), pmd.Any, e); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var want []uuid.UUID
	for _, e := range readAll(t, s, pmd.ReadOptions{Types: []string{"Child"}}) {
		want = append(want, e.ID)
	}
	if got := caused(t, s, root.ID, 0); len(want) != writers*(each/2+1) || !slices.Equal(got, want) {
		t.Fatalf("Caused(root) lists %d events, want the %d Child events in log order", len(got), len(want))
	}
}

// lockedBuffer is a bytes.Buffer that a logger can write to while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// relations asks the store, for every event, its streams and what it caused.
func relations(t *testing.T, s *pmd.Store) map[uuid.UUID][2]any {
	t.Helper()
	out := map[uuid.UUID][2]any{}
	for _, e := range readAll(t, s, pmd.ReadOptions{}) {
		out[e.ID] = [2]any{eventStreams(t, s, e.ID), caused(t, s, e.ID, 0)}
	}
	return out
}

func TestRelationsAfterReopen(t *testing.T) {
	for _, how := range []string{"nothing", "index deleted", "index damaged", "index marked damaged", "index older than the log"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 16 << 10, IndexFlushEvery: 40})
			if err != nil {
				t.Fatal(err)
			}
			var events []pmd.EventData
			for i := range 150 {
				e := ev("E", "i", i)
				if i > 0 && i%3 != 0 {
					e = causedBy("E", events[i/4].ID)
				}
				events = append(events, e)
				mustAppend(t, s, fmt.Sprintf("Order$%d", i%7), pmd.Any, e)
				if i%4 == 0 {
					mustLink(t, s, fmt.Sprintf("PM$%d", i%5), pmd.Any, e.ID)
				}
				if i == 100 {
					mustDelete(t, s, "PM$2")
					mustDelete(t, s, "Order$3")
				}
			}
			before := relations(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if how == "index older than the log" {
				// Keep the index, write more, and put the old index back, as a crash
				// before the index was flushed would: the next open replays the log
				// past it.
				old := t.TempDir()
				copyDir(t, filepath.Join(dir, "index"), old)
				s, err = pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 16 << 10})
				if err != nil {
					t.Fatal(err)
				}
				more := causedBy("More", events[1].ID)
				mustAppend(t, s, "Order$1", pmd.Any, more)
				mustLink(t, s, "PM$9", pmd.Any, events[1].ID)
				before = relations(t, s)
				s.Close()
				if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
					t.Fatal(err)
				}
				copyDir(t, old, filepath.Join(dir, "index"))
			} else {
				damageIndex(t, dir, how)
			}
			var logs lockedBuffer
			s2, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s2.Close() })
			// The store says when it cannot use its index, and rebuilds it from the log;
			// otherwise it uses the index as it is and replays what it lacks.
			rebuilt := strings.Contains(logs.String(), "rebuilding it from the log")
			if want := how == "index damaged" || how == "index marked damaged"; rebuilt != want {
				t.Fatalf("index rebuilt: %v, want %v; the log says:\n%s", rebuilt, want, logs.String())
			}
			if after := relations(t, s2); !reflect.DeepEqual(after, before) {
				for id, want := range before {
					if got := after[id]; !reflect.DeepEqual(got, want) {
						t.Errorf("event %s: streams and caused %v after reopen, %v before", id, got, want)
					}
				}
				t.FailNow()
			}
			// And it goes on recording.
			next := causedBy("Next", events[0].ID)
			mustAppend(t, s2, "Order$0", pmd.Any, next)
			if got := caused(t, s2, events[0].ID, 0); len(got) == 0 || got[len(got)-1] != next.ID {
				t.Fatalf("after reopen Caused(first) = %v, does not end with the new event", got)
			}
		})
	}
}

func ExampleStore_EventStreams() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	fact := pmd.EventData{ID: uuid.MustParse("0190c1d2-0000-7000-8000-000000000001"), Type: "CustomerConfirmedMenu"}
	if _, err := s.Append(ctx, "Customer$7", pmd.Any, fact); err != nil {
		log.Fatal(err)
	}
	for _, stream := range []string{"CateringMatch$42", "Audit$1"} {
		if _, err := s.Link(ctx, stream, pmd.Any, fact.ID); err != nil {
			log.Fatal(err)
		}
	}
	streams, err := s.EventStreams(ctx, fact.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(streams)

	// A deleted stream no longer holds it.
	if err := s.DeleteStream(ctx, "Customer$7", pmd.Any); err != nil {
		log.Fatal(err)
	}
	streams, err = s.EventStreams(ctx, fact.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(streams)
	// Output:
	// [Customer$7 CateringMatch$42 Audit$1]
	// [CateringMatch$42 Audit$1]
}

func ExampleStore_Caused() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	placed := pmd.EventData{ID: uuid.MustParse("0190c1d2-0000-7000-8000-000000000001"), Type: "OrderPlaced"}
	if _, err := s.Append(ctx, "Order$42", pmd.NoStream, placed); err != nil {
		log.Fatal(err)
	}
	// A process manager's commands carry the id of the event that caused them.
	cause := map[string]any{pmd.CausationID: placed.ID.String(), pmd.CorrelationID: placed.ID.String()}
	if _, err := s.Append(ctx, "Kitchen$42", pmd.NoStream,
		pmd.EventData{Type: "CookMeal", Metadata: cause},
		pmd.EventData{Type: "ReserveTable", Metadata: cause}); err != nil {
		log.Fatal(err)
	}
	events, err := s.Caused(ctx, placed.ID, 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.Type, "in", e.Stream)
	}
	// Output:
	// CookMeal in Kitchen$42
	// ReserveTable in Kitchen$42
}

// causeKeys are the metadata key the store resolves and, for the baselines, a key of the
// same length that it does not.
var causeKeys = []struct{ name, key string }{
	{"caused", pmd.CausationID},
	{"baseline-other-key", "causation_xx"},
}

// BenchmarkAppendCaused appends events whose metadata names a stored parent, against the
// same events under another key: the cost of finding and resolving causation ids on the
// write path.
func BenchmarkAppendCaused(b *testing.B) {
	ctx := context.Background()
	for _, k := range causeKeys {
		b.Run(k.name, func(b *testing.B) {
			s := openStore(b, "")
			root := ev("Root")
			mustAppend(b, s, "Root", pmd.NoStream, root)
			meta := map[string]any{k.key: root.ID.String(), pmd.CorrelationID: root.ID.String()}
			b.ReportAllocs()
			for range b.N {
				if _, err := s.Append(ctx, "Child", pmd.Any, pmd.EventData{Type: "E", Metadata: meta}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplayCaused opens a store of 20k events without its index, so that the
// whole log is replayed, every other event naming a parent; the baseline names it under
// another key.
func BenchmarkReplayCaused(b *testing.B) {
	const events = 20_000
	ctx := context.Background()
	for _, k := range causeKeys {
		b.Run(k.name, func(b *testing.B) {
			dir := b.TempDir()
			opts := pmd.Options{NoSync: true, Logger: quietLogger()}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			var prev uuid.UUID
			for i := range events / 100 {
				batch := make([]pmd.EventData, 100)
				for j := range batch {
					batch[j] = pmd.EventData{ID: uuid.New(), Type: "E"}
					if j%2 == 1 {
						batch[j].Metadata = map[string]any{k.key: prev.String(), pmd.CorrelationID: prev.String()}
					}
					prev = batch[j].ID
				}
				if _, err := s.Append(ctx, fmt.Sprint("S$", i%50), pmd.Any, batch...); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
					b.Fatal(err)
				}
				s, err := pmd.Open(dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
