package pmd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
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

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore opens a store in a fresh directory, without fsync unless sync is asked for:
// these tests are about semantics; durability has its own tests.
func openStore(t testing.TB, dir string) *pmd.Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 64 << 10})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(typ string, kv ...any) pmd.EventData {
	data := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		data[kv[i].(string)] = kv[i+1]
	}
	return pmd.EventData{ID: uuid.New(), Type: typ, Data: data}
}

func mustAppend(t testing.TB, s *pmd.Store, stream string, exp pmd.ExpectedVersion, events ...pmd.EventData) pmd.WriteResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, events...)
	if err != nil {
		t.Fatalf("Append(%s): %v", stream, err)
	}
	return res
}

func mustLink(t testing.TB, s *pmd.Store, stream string, exp pmd.ExpectedVersion, ids ...uuid.UUID) pmd.WriteResult {
	t.Helper()
	res, err := s.Link(context.Background(), stream, exp, ids...)
	if err != nil {
		t.Fatalf("Link(%s): %v", stream, err)
	}
	return res
}

func readStream(t testing.TB, s *pmd.Store, stream string, opts pmd.ReadOptions) ([]pmd.Event, error) {
	t.Helper()
	var out []pmd.Event
	for e, err := range s.ReadStream(context.Background(), stream, opts) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func readAll(t testing.TB, s *pmd.Store, opts pmd.ReadOptions) []pmd.Event {
	t.Helper()
	events, err := readStream(t, s, pmd.All, opts)
	if err != nil {
		t.Fatalf("read $all: %v", err)
	}
	return events
}

func ids(events []pmd.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func dataIDs(events []pmd.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func versions(events []pmd.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

func TestAppendKeepsOrderInStreamAndAll(t *testing.T) {
	s := openStore(t, "")
	a := []pmd.EventData{ev("A", "n", 1), ev("B", "n", 2)}
	b := []pmd.EventData{ev("C", "n", 3)}
	c := []pmd.EventData{ev("D", "n", 4), ev("E", "n", 5)}
	r1 := mustAppend(t, s, "Order$1", pmd.NoStream, a...)
	mustAppend(t, s, "Order$2", pmd.NoStream, b...)
	r3 := mustAppend(t, s, "Order$1", pmd.AtVersion(1), c...)

	if r1.FirstPosition != 1 || r1.LastPosition != 2 || r1.Version != 1 {
		t.Errorf("first append result = %+v, want positions 1..2 version 1", r1)
	}
	if r3.Version != 3 {
		t.Errorf("third append version = %d, want 3", r3.Version)
	}
	got, err := readStream(t, s, "Order$1", pmd.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := append(dataIDs(a), dataIDs(c)...)
	if !reflect.DeepEqual(ids(got), want) {
		t.Errorf("stream ids = %v, want %v", ids(got), want)
	}
	if !reflect.DeepEqual(versions(got), []uint64{0, 1, 2, 3}) {
		t.Errorf("stream versions = %v", versions(got))
	}
	all := readAll(t, s, pmd.ReadOptions{})
	wantAll := append(append(dataIDs(a), dataIDs(b)...), dataIDs(c)...)
	if !reflect.DeepEqual(ids(all), wantAll) {
		t.Errorf("$all ids = %v, want %v", ids(all), wantAll)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position || all[i].Timestamp.Before(all[i-1].Timestamp) {
			t.Errorf("$all not in write order at %d: %+v after %+v", i, all[i], all[i-1])
		}
	}
	first := got[0]
	if first.Type != "A" || first.Stream != "Order$1" || first.Link || fmt.Sprint(first.Data["n"]) != "1" {
		t.Errorf("first event = %+v", first)
	}
}

func TestExpectedVersion(t *testing.T) {
	tests := []struct {
		name     string
		existing int // events already in the stream
		expected pmd.ExpectedVersion
		ok       bool
		actual   int64
	}{
		{"any on new", 0, pmd.Any, true, -1},
		{"any on existing", 2, pmd.Any, true, 1},
		{"no_stream on new", 0, pmd.NoStream, true, -1},
		{"no_stream on existing", 2, pmd.NoStream, false, 1},
		{"stream_exists on new", 0, pmd.StreamExists, false, -1},
		{"stream_exists on existing", 2, pmd.StreamExists, true, 1},
		{"exact right", 2, pmd.AtVersion(1), true, 1},
		{"exact behind", 2, pmd.AtVersion(0), false, 1},
		{"exact ahead", 2, pmd.AtVersion(5), false, 1},
		{"exact on new", 0, pmd.AtVersion(0), false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, "")
			for i := 0; i < tt.existing; i++ {
				mustAppend(t, s, "S", pmd.Any, ev("X"))
			}
			before := s.LastPosition()
			_, err := s.Append(context.Background(), "S", tt.expected, ev("Y"), ev("Z"))
			if tt.ok {
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
				return
			}
			var wev *pmd.WrongExpectedVersionError
			if !errors.As(err, &wev) || !errors.Is(err, pmd.ErrWrongExpectedVersion) {
				t.Fatalf("err = %v, want WrongExpectedVersionError", err)
			}
			if wev.Stream != "S" || wev.Expected != tt.expected || wev.Actual != tt.actual {
				t.Errorf("error = %+v, want stream S expected %v actual %d", wev, tt.expected, tt.actual)
			}
			if s.LastPosition() != before {
				t.Errorf("failed append wrote: last position %d → %d", before, s.LastPosition())
			}
		})
	}
}

func TestEventIDsAreUniqueAndRetriesIdempotent(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	batch := []pmd.EventData{ev("A"), ev("B")}
	orig := mustAppend(t, s, "S$1", pmd.NoStream, batch...)
	mustAppend(t, s, "S$2", pmd.NoStream, ev("C"))
	last := s.LastPosition()

	// An exact retry, even with an expected version that no longer holds, is answered
	// with the original result and writes nothing.
	res, err := s.Append(ctx, "S$1", pmd.NoStream, batch...)
	if err != nil || !reflect.DeepEqual(res, orig) {
		t.Fatalf("retry = %+v, %v; want %+v", res, err, orig)
	}
	if want := []uuid.UUID{batch[0].ID, batch[1].ID}; !reflect.DeepEqual(orig.IDs, want) {
		t.Fatalf("IDs = %v, want %v", orig.IDs, want)
	}
	refused := []struct {
		name   string
		stream string
		events []pmd.EventData
		dupID  uuid.UUID
	}{
		{"same id, other stream", "S$3", batch, batch[0].ID},
		{"one known id in a new batch", "S$3", []pmd.EventData{ev("N"), batch[1]}, batch[1].ID},
		{"a prefix of an earlier batch", "S$1", batch[:1], batch[0].ID},
		{"an earlier batch plus more", "S$1", append(append([]pmd.EventData{}, batch...), ev("M")), batch[0].ID},
		{"reordered retry", "S$1", []pmd.EventData{batch[1], batch[0]}, batch[1].ID},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(ctx, tt.stream, pmd.Any, tt.events...)
			var dup *pmd.DuplicateEventError
			if !errors.As(err, &dup) || !errors.Is(err, pmd.ErrDuplicateEvent) {
				t.Fatalf("err = %v, want DuplicateEventError", err)
			}
			if dup.ID != tt.dupID || dup.Stream != tt.stream {
				t.Errorf("error = %+v, want id %s stream %s", dup, tt.dupID, tt.stream)
			}
			if s.LastPosition() != last {
				t.Errorf("refused append wrote something")
			}
		})
	}
	if _, err := readStream(t, s, "S$3", pmd.ReadOptions{}); !errors.Is(err, pmd.ErrStreamNotFound) {
		t.Errorf("S$3 read err = %v, want stream not found", err)
	}
}

func TestLinks(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	a, b, c := ev("A", "k", "a"), ev("B"), ev("C")
	mustAppend(t, s, "Order$1", pmd.NoStream, a, b)
	mustAppend(t, s, "Order$2", pmd.NoStream, c)
	own := ev("Own")
	mustAppend(t, s, "PM$1", pmd.NoStream, own)
	last := s.LastPosition()
	res := mustLink(t, s, "PM$1", pmd.AtVersion(0), c.ID, a.ID)
	if res.Version != 2 || res.FirstPosition != last+1 || res.LastPosition != last+2 {
		t.Errorf("link result = %+v", res)
	}
	got, err := readStream(t, s, "PM$1", pmd.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uuid.UUID{own.ID, c.ID, a.ID}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("linked stream = %v, want %v (own first, then links in link order)", ids(got), want)
	}
	if !reflect.DeepEqual(versions(got), []uint64{0, 1, 2}) {
		t.Errorf("versions = %v", versions(got))
	}
	if got[0].Link || !got[1].Link || !got[2].Link {
		t.Errorf("link flags = %v %v %v, want false true true", got[0].Link, got[1].Link, got[2].Link)
	}
	orig, err := s.Event(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	linked := got[2]
	if linked.ID != orig.ID || linked.Stream != "Order$1" || linked.Position != orig.Position ||
		!reflect.DeepEqual(linked.Data, orig.Data) || !linked.Timestamp.Equal(orig.Timestamp) || linked.Type != orig.Type {
		t.Errorf("linked event %+v is not the original %+v", linked, orig)
	}
	// Links never show in $all: it holds each of the 4 events once.
	if all := readAll(t, s, pmd.ReadOptions{}); len(all) != 4 {
		t.Errorf("$all holds %d events, want 4", len(all))
	}

	refused := []struct {
		name   string
		stream string
		id     uuid.UUID
		is     error
	}{
		{"twice", "PM$1", a.ID, pmd.ErrDuplicateEvent},
		{"into its own stream", "Order$1", b.ID, pmd.ErrDuplicateEvent},
		{"unknown id", "PM$1", uuid.New(), pmd.ErrEventNotFound},
		{"reserved stream", "$pm", a.ID, pmd.ErrInvalidArgument},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := s.LastPosition()
			_, err := s.Link(ctx, tt.stream, pmd.Any, tt.id)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if s.LastPosition() != before {
				t.Errorf("refused link wrote something")
			}
		})
	}
	var nf *pmd.EventNotFoundError
	unknown := uuid.New()
	if _, err := s.Link(ctx, "PM$1", pmd.Any, b.ID, unknown); !errors.As(err, &nf) || nf.ID != unknown {
		t.Errorf("link of a known and an unknown id: err = %v, want not found naming %s", err, unknown)
	}
	if info := streamInfo(t, s, "PM$1"); info.Version != 2 {
		t.Errorf("a refused link batch changed the stream: %+v", info)
	}
}

func TestDeleteStream(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	a, b := ev("A"), ev("B")
	mustAppend(t, s, "Order$1", pmd.NoStream, a, b)
	mustLink(t, s, "Audit", pmd.NoStream, b.ID)
	if err := s.DeleteStream(ctx, "Order$1", pmd.AtVersion(0)); !errors.Is(err, pmd.ErrWrongExpectedVersion) {
		t.Fatalf("delete with a wrong expected version: %v", err)
	}
	if err := s.DeleteStream(ctx, "Order$1", pmd.AtVersion(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := readStream(t, s, "Order$1", pmd.ReadOptions{}); !errors.Is(err, pmd.ErrStreamNotFound) {
		t.Errorf("deleted stream read err = %v, want stream not found", err)
	}
	// a was in Order$1 only: it is dead and leaves $all. b stays, linked into Audit.
	if all := readAll(t, s, pmd.ReadOptions{}); !reflect.DeepEqual(ids(all), []uuid.UUID{b.ID}) {
		t.Errorf("$all after delete = %v, want b only", ids(all))
	}
	checkAllBackward(t, s, []uuid.UUID{b.ID})
	if _, err := s.Event(ctx, a.ID); !errors.Is(err, pmd.ErrEventNotFound) {
		t.Errorf("a dead event read by id: %v, want not found", err)
	}
	if audit, err := readStream(t, s, "Audit", pmd.ReadOptions{}); err != nil || len(audit) != 1 || audit[0].ID != b.ID {
		t.Errorf("linked stream after delete = %v, %v", audit, err)
	}
	// The stream starts again with no_stream, at the next version: versions are never reused.
	if _, err := s.Append(ctx, "Order$1", pmd.AtVersion(1), ev("C")); !errors.Is(err, pmd.ErrWrongExpectedVersion) {
		t.Errorf("append expecting the deleted version: err = %v", err)
	}
	c := ev("C")
	res := mustAppend(t, s, "Order$1", pmd.NoStream, c)
	if res.Version != 2 {
		t.Errorf("version after recreate = %d, want 2", res.Version)
	}
	// An event of the deleted part that lives on elsewhere can be linked back: it is no
	// longer in the stream. A dead one cannot.
	if _, err := s.Link(ctx, "Order$1", pmd.AtVersion(2), a.ID); !errors.Is(err, pmd.ErrEventNotFound) {
		t.Errorf("link of a dead event: %v, want not found", err)
	}
	mustLink(t, s, "Order$1", pmd.AtVersion(2), b.ID)
	got, _ := readStream(t, s, "Order$1", pmd.ReadOptions{})
	if !reflect.DeepEqual(ids(got), []uuid.UUID{c.ID, b.ID}) || !reflect.DeepEqual(versions(got), []uint64{2, 3}) {
		t.Errorf("recreated stream = %v versions %v", ids(got), versions(got))
	}
	if !got[1].Link {
		t.Errorf("re-linked event not marked as a link")
	}
	// Deleting a stream with no visible event is a no-op.
	before := s.LastPosition()
	if err := s.DeleteStream(ctx, "Nope", pmd.Any); err != nil || s.LastPosition() != before {
		t.Errorf("delete of a missing stream: %v, wrote %d records", err, s.LastPosition()-before)
	}
}

func TestPaging(t *testing.T) {
	s := openStore(t, "")
	var all []pmd.EventData
	for i := 0; i < 10; i++ {
		e := ev("E", "i", i)
		all = append(all, e)
		mustAppend(t, s, "N", pmd.Any, e)
		mustAppend(t, s, "Other", pmd.Any, ev("O"))
	}
	for _, e := range all {
		mustLink(t, s, "L", pmd.Any, e.ID)
	}
	idsOf := func(is ...int) []uuid.UUID {
		out := []uuid.UUID{}
		for _, i := range is {
			out = append(out, all[i].ID)
		}
		return out
	}
	tests := []struct {
		name   string
		stream string
		opts   pmd.ReadOptions
		want   []uuid.UUID
	}{
		{"forward from 3 limit 4", "N", pmd.ReadOptions{From: 3, Limit: 4}, idsOf(3, 4, 5, 6)},
		{"forward past the end", "N", pmd.ReadOptions{From: 10}, idsOf()},
		{"forward tail", "N", pmd.ReadOptions{From: 8, Limit: 5}, idsOf(8, 9)},
		{"backward from end limit 3", "N", pmd.ReadOptions{From: pmd.End, Backward: true, Limit: 3}, idsOf(9, 8, 7)},
		{"backward from 2", "N", pmd.ReadOptions{From: 2, Backward: true}, idsOf(2, 1, 0)},
		{"backward from 0", "N", pmd.ReadOptions{From: 0, Backward: true}, idsOf(0)},
		{"linked forward", "L", pmd.ReadOptions{From: 5, Limit: 2}, idsOf(5, 6)},
		{"linked backward", "L", pmd.ReadOptions{From: 1, Backward: true, Limit: 5}, idsOf(1, 0)},
		{"$all filtered forward", pmd.All, pmd.ReadOptions{Types: []string{"E"}, Limit: 3}, idsOf(0, 1, 2)},
		{"$all filtered backward", pmd.All, pmd.ReadOptions{Types: []string{"E"}, From: pmd.End, Backward: true, Limit: 2}, idsOf(9, 8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readStream(t, s, tt.stream, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), tt.want) {
				t.Errorf("got %v, want %v", ids(got), tt.want)
			}
		})
	}
	// $all pages, by position: walking forward and backward in pages of 3 visits all 20
	// events exactly once, in order.
	for _, backward := range []bool{false, true} {
		var seen []pmd.Event
		from := uint64(0)
		if backward {
			from = pmd.End
		}
		for {
			page := readAll(t, s, pmd.ReadOptions{From: from, Backward: backward, Limit: 3})
			seen = append(seen, page...)
			if len(page) < 3 {
				break
			}
			if backward {
				from = page[len(page)-1].Position - 1
			} else {
				from = page[len(page)-1].Position + 1
			}
		}
		if len(seen) != 20 {
			t.Fatalf("backward=%v: paged $all saw %d events, want 20", backward, len(seen))
		}
		for i := 1; i < len(seen); i++ {
			if (seen[i].Position > seen[i-1].Position) == backward {
				t.Fatalf("backward=%v: out of order at %d", backward, i)
			}
		}
	}
}

func TestCategoryAndTypes(t *testing.T) {
	s := openStore(t, "")
	o1, o2, x := ev("Placed"), ev("Paid"), ev("Placed")
	mustAppend(t, s, "Order$1", pmd.NoStream, o1)
	mustAppend(t, s, "Invoice$1", pmd.NoStream, x)
	mustAppend(t, s, "Order$2", pmd.NoStream, o2)
	mustLink(t, s, "Order$3", pmd.NoStream, x.ID) // links are not part of the category
	var got []uuid.UUID
	for e, err := range s.ReadCategory(context.Background(), "Order", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.ID)
	}
	if want := []uuid.UUID{o1.ID, o2.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("category Order = %v, want %v", got, want)
	}
	placed := readAll(t, s, pmd.ReadOptions{Types: []string{"Placed"}})
	if want := []uuid.UUID{o1.ID, x.ID}; !reflect.DeepEqual(ids(placed), want) {
		t.Errorf("$all of type Placed = %v, want %v", ids(placed), want)
	}
	both := readAll(t, s, pmd.ReadOptions{Types: []string{"Paid", "Placed"}})
	if want := []uuid.UUID{o1.ID, x.ID, o2.ID}; !reflect.DeepEqual(ids(both), want) {
		t.Errorf("$all of types Paid,Placed = %v, want %v", ids(both), want)
	}
}

func TestInvalidArguments(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	tests := []struct {
		name string
		do   func() error
		arg  string
	}{
		{"empty stream", func() error { _, err := s.Append(ctx, "", pmd.Any, ev("A")); return err }, "stream"},
		{"reserved stream", func() error { _, err := s.Append(ctx, "$all", pmd.Any, ev("A")); return err }, "stream"},
		{"control char in stream", func() error { _, err := s.Append(ctx, "a\nb", pmd.Any, ev("A")); return err }, "stream"},
		{"stream too long", func() error { _, err := s.Append(ctx, fmt.Sprintf("%0257d", 0), pmd.Any, ev("A")); return err }, "stream"},
		{"invalid utf-8", func() error { _, err := s.Append(ctx, "a\xffb", pmd.Any, ev("A")); return err }, "stream"},
		{"no events", func() error { _, err := s.Append(ctx, "S", pmd.Any); return err }, "events"},
		{"no type", func() error { _, err := s.Append(ctx, "S", pmd.Any, ev("A"), ev("")); return err }, "events[1].type"},
		{"same id twice", func() error {
			e := ev("A")
			_, err := s.Append(ctx, "S", pmd.Any, e, e)
			return err
		}, "events[1].id"},
		{"unencodable data", func() error {
			_, err := s.Append(ctx, "S", pmd.Any, pmd.EventData{Type: "A", Data: map[string]any{"f": func() {}}})
			return err
		}, "events[0].data"},
		{"no ids", func() error { _, err := s.Link(ctx, "S", pmd.Any); return err }, "event_ids"},
		{"nil id", func() error { _, err := s.Link(ctx, "S", pmd.Any, uuid.Nil); return err }, "event_ids[0].id"},
		{"negative limit", func() error { _, err := readStream(t, s, "S", pmd.ReadOptions{Limit: -1}); return err }, "limit"},
		{"types on a stream", func() error {
			_, err := readStream(t, s, "S", pmd.ReadOptions{Types: []string{"A"}})
			return err
		}, "types"},
		{"delete reserved", func() error { return s.DeleteStream(ctx, "$x", pmd.Any) }, "stream"},
		{"stream named .", func() error { _, err := s.Append(ctx, ".", pmd.Any, ev("A")); return err }, "stream"},
		{"link into ..", func() error { _, err := s.Link(ctx, "..", pmd.Any, uuid.New()); return err }, "stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			var inv *pmd.InvalidArgumentError
			if !errors.As(err, &inv) || !errors.Is(err, pmd.ErrInvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgumentError", err)
			}
			if inv.Arg != tt.arg {
				t.Errorf("error names %q, want %q (%v)", inv.Arg, tt.arg, err)
			}
			if s.LastPosition() != 0 {
				t.Errorf("bad input wrote something")
			}
		})
	}
}

func TestConcurrentWritersExactlyOneWins(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	const writers, rounds = 16, 20
	for round := 0; round < rounds; round++ {
		expected := pmd.NoStream
		if round > 0 {
			expected = pmd.AtVersion(uint64(round - 1))
		}
		var wg sync.WaitGroup
		wins := make(chan int, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				_, err := s.Append(ctx, "Race", expected, ev("Try", "w", w))
				switch {
				case err == nil:
					wins <- w
				case !errors.Is(err, pmd.ErrWrongExpectedVersion):
					t.Errorf("writer %d: %v", w, err)
				}
			}(w)
		}
		wg.Wait()
		close(wins)
		if n := len(wins); n != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1", round, n)
		}
	}
	got, err := readStream(t, s, "Race", pmd.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if e.Version != uint64(i) {
			t.Fatalf("version gap: event %d has version %d", i, e.Version)
		}
	}
	if len(got) != rounds {
		t.Errorf("stream has %d events, want %d", len(got), rounds)
	}
}

func TestConcurrentAppendsAreAllStored(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				expected := pmd.NoStream
				if i > 0 {
					expected = pmd.AtVersion(uint64(i - 1))
				}
				if _, err := s.Append(ctx, fmt.Sprintf("W$%d", w), expected, ev("E", "i", i)); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if got := len(readAll(t, s, pmd.ReadOptions{})); got != writers*each {
		t.Errorf("$all holds %d events, want %d", got, writers*each)
	}
}

func TestReopenAnswersTheSame(t *testing.T) {
	for _, lose := range []string{"nothing", "index deleted", "index damaged", "index marked damaged"} {
		t.Run(lose, func(t *testing.T) {
			dir := t.TempDir()
			s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 16 << 10, IndexFlushEvery: 50})
			if err != nil {
				t.Fatal(err)
			}
			var written []pmd.EventData
			for i := 0; i < 200; i++ {
				e := ev("E", "i", i)
				written = append(written, e)
				mustAppend(t, s, fmt.Sprintf("Order$%d", i%7), pmd.Any, e)
				if i%3 == 0 {
					mustLink(t, s, fmt.Sprintf("PM$%d", i%5), pmd.Any, e.ID)
				}
			}
			if err := s.DeleteStream(context.Background(), "Order$3", pmd.Any); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			damageIndex(t, dir, lose)
			s2 := openStore(t, dir)
			after := snapshot(t, s2)
			if !reflect.DeepEqual(before, after) {
				t.Errorf("reopened store answers differently")
			}
			// The events of Order$3 that were not linked into a PM stream are dead.
			var live []pmd.EventData
			for i, e := range written {
				if i%7 != 3 || i%3 == 0 {
					live = append(live, e)
				}
			}
			if got := ids(after[pmd.All]); !reflect.DeepEqual(got, dataIDs(live)) {
				t.Errorf("$all after reopen holds %d events, not the %d live ones in order", len(got), len(live))
			}
			// And it goes on: versions continue.
			res := mustAppend(t, s2, "Order$1", pmd.Any, ev("More"))
			if want := before["Order$1"][len(before["Order$1"])-1].Version + 1; res.Version != want {
				t.Errorf("version after reopen = %d, want %d", res.Version, want)
			}
		})
	}
}

// snapshot reads every stream and $all, keyed by name, and what else reads show of the
// events: every category and every event type of the streams' events (keyed "\x00category
// NAME", "\x00type NAME") and the events each event of $all caused ("\x00caused ID"; the
// 0 byte keeps them apart from stream names).
func snapshot(t *testing.T, s *pmd.Store) map[string][]pmd.Event {
	t.Helper()
	ctx := context.Background()
	out := map[string][]pmd.Event{pmd.All: readAll(t, s, pmd.ReadOptions{})}
	categories, types := map[string]bool{}, map[string]bool{}
	for _, info := range streams(t, s, "", "", 1000) {
		events, err := readStream(t, s, info.Name, pmd.ReadOptions{})
		if err != nil && !errors.Is(err, pmd.ErrStreamNotFound) {
			t.Fatal(err)
		}
		out[info.Name] = events
		category, _, _ := strings.Cut(info.Name, "$")
		categories[category] = true
		for _, e := range events {
			types[e.Type] = true
		}
	}
	collect := func(key string, events iter.Seq2[pmd.Event, error]) {
		for e, err := range events {
			if err != nil {
				t.Fatalf("snapshot %q: %v", key, err)
			}
			out[key] = append(out[key], e)
		}
	}
	for c := range categories {
		collect("\x00category "+c, s.ReadCategory(ctx, c, pmd.ReadOptions{}))
	}
	for typ := range types {
		collect("\x00type "+typ, s.ReadAll(ctx, pmd.ReadOptions{Types: []string{typ}}))
	}
	for _, e := range out[pmd.All] {
		caused, err := s.Caused(ctx, e.ID, 0)
		if err != nil {
			t.Fatalf("snapshot: Caused(%s): %v", e.ID, err)
		}
		if len(caused) > 0 {
			out["\x00caused "+e.ID.String()] = caused
		}
	}
	return out
}

func TestStreamsListing(t *testing.T) {
	s := openStore(t, "")
	for _, name := range []string{"b$2", "a$1", "b$1", "c", "b$3"} {
		mustAppend(t, s, name, pmd.Any, ev("E"))
	}
	got := streams(t, s, "b$", "b$1", 10)
	var names []string
	for _, st := range got {
		names = append(names, st.Name)
	}
	if want := []string{"b$2", "b$3"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Streams(b$, after b$1) = %v, want %v", names, want)
	}
	if info := streamInfo(t, s, "a$1"); !info.Exists || info.Version != 0 {
		t.Errorf("StreamInfo(a$1) = %+v", info)
	}
	if info := streamInfo(t, s, "zzz"); info.Exists || info.Version != -1 {
		t.Errorf("StreamInfo(zzz) = %+v", info)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "S", pmd.Any, ev("A"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "S", pmd.Any, ev("B")); !errors.Is(err, pmd.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
}

func TestOpenRefusesASecondOpener(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir)
	if _, err := pmd.Open(dir, pmd.Options{Logger: quietLogger()}); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
}

// TestConcurrentWritersShareFsyncs checks the contract's group commit: with syncing on,
// concurrent appends are answered by far fewer log writes (fsyncs) than there are appends, and
// OnCommit accounts for every one of them.
func TestConcurrentWritersShareFsyncs(t *testing.T) {
	var mu sync.Mutex
	var commits, served int
	s, err := pmd.Open(t.TempDir(), pmd.Options{Logger: quietLogger(), OnCommit: func(c pmd.CommitInfo) {
		mu.Lock()
		defer mu.Unlock()
		commits++
		served += c.Requests
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, each = 16, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Append(context.Background(), fmt.Sprintf("W$%d", w), pmd.Any, ev("E")); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if served != writers*each {
		t.Errorf("OnCommit reported %d appends served, want %d", served, writers*each)
	}
	// Sixteen writers give about ten appends per fsync here; half of one each would already
	// mean most writers pay their own fsync.
	if commits > writers*each/2 {
		t.Errorf("%d appends took %d fsyncs: concurrent writers did not share them", writers*each, commits)
	}
}

func streams(t testing.TB, s *pmd.Store, prefix, after string, limit int) []pmd.StreamInfo {
	t.Helper()
	list, err := s.Streams(prefix, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func streamInfo(t testing.TB, s *pmd.Store, stream string) pmd.StreamInfo {
	t.Helper()
	info, err := s.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// damageIndex does to the index of the closed store in dir what how says: "nothing",
// "index deleted", "index damaged" (its manifest overwritten, as a bad disk would) or
// "index marked damaged" (as the store does when a read or the scrub finds damage).
func damageIndex(t *testing.T, dir, how string) {
	t.Helper()
	var err error
	switch how {
	case "nothing":
	case "index deleted":
		err = os.RemoveAll(filepath.Join(dir, "index"))
	case "index damaged":
		manifests, _ := filepath.Glob(filepath.Join(dir, "index", "MANIFEST-*"))
		if len(manifests) == 0 {
			t.Fatal("the index has no manifest")
		}
		for _, m := range manifests {
			if err = os.WriteFile(m, bytes.Repeat([]byte{0xa5}, 4096), 0o640); err != nil {
				break
			}
		}
	case "index marked damaged":
		err = os.WriteFile(filepath.Join(dir, "index.rebuild"), []byte("test\n"), 0o640)
	default:
		t.Fatalf("damageIndex: unknown %q", how)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A write returns the ids it wrote, those the store made included, so that a caller can
// link or look up an event it appended without an id.
func TestWriteResultCarriesIDs(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	res, err := s.Append(ctx, "Customer$7", pmd.NoStream,
		pmd.EventData{Type: "A"}, pmd.EventData{Type: "B"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IDs) != 2 || res.IDs[0] == res.IDs[1] {
		t.Fatalf("IDs = %v, want two distinct ids", res.IDs)
	}
	var read []uuid.UUID
	for e, err := range s.ReadStream(ctx, "Customer$7", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.ID.Version() != 7 {
			t.Errorf("made id %v is not a UUIDv7", e.ID)
		}
		read = append(read, e.ID)
	}
	if !reflect.DeepEqual(read, res.IDs) {
		t.Fatalf("read ids %v, returned %v", read, res.IDs)
	}
	linked, err := s.Link(ctx, "CateringMatch$42", pmd.NoStream, res.IDs[1], res.IDs[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := []uuid.UUID{res.IDs[1], res.IDs[0]}; !reflect.DeepEqual(linked.IDs, want) {
		t.Fatalf("Link IDs = %v, want %v", linked.IDs, want)
	}
}

// TestSegmentSizeCanChange: a store written with one segment size opens and goes on with
// another, as a store of an older version (16 MiB segments) does under today's default.
// A tail larger than the new size is sealed by the next write.
func TestSegmentSizeCanChange(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var want []uuid.UUID
	for i, size := range []int{256 << 10, 32 << 10, 1 << 20} {
		s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: size})
		if err != nil {
			t.Fatalf("open %d with segments of %d bytes: %v", i, size, err)
		}
		for j := range 300 {
			res := mustAppend(t, s, fmt.Sprintf("Order$%d", j%7), pmd.Any, ev("OrderPlaced", "pad", strings.Repeat("x", 500)))
			want = append(want, res.IDs...)
		}
		var got []uuid.UUID
		for e, err := range s.ReadAll(ctx, pmd.ReadOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("open %d (segments of %d bytes): $all holds %d events, want the %d written", i, size, len(got), len(want))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadsOfAClosedStoreFail: every read of a closed store ends with ErrClosed, also
// one that would read nothing (an empty store, or past the end), rather than an empty
// result that looks like a healthy store's.
func TestReadsOfAClosedStoreFail(t *testing.T) {
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for name, opts := range map[string]pmd.ReadOptions{
		"forward":      {},
		"backward":     {Backward: true, From: pmd.End},
		"past the end": {From: 100},
		"by type":      {Types: []string{"T"}},
	} {
		var got error
		for _, err := range s.ReadAll(context.Background(), opts) {
			got = err
			break
		}
		if !errors.Is(got, pmd.ErrClosed) {
			t.Errorf("ReadAll %s of a closed store: %v, want ErrClosed", name, got)
		}
	}
}
