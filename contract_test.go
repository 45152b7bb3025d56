package pmd_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// Tests of the promises of docs/semantics.md ("The rules", "Writing", "Reading") at
// their edges: each fails if the promise it names is broken.

// TestNameLimits holds stream names and event types to "1–256 bytes of UTF-8, no control
// characters": the limit counts bytes, not characters, 256 is in, and a C1 control
// character (U+0085, two bytes in UTF-8) is out like an ASCII one.
func TestNameLimits(t *testing.T) {
	tests := []struct {
		name   string
		value  string
		reason string // what the refusal must say; empty when the name is accepted
	}{
		{"256 ASCII bytes", strings.Repeat("a", 256), ""},
		{"257 ASCII bytes", strings.Repeat("a", 257), "is 257 bytes long, the limit is 256"},
		{"128 two-byte characters", strings.Repeat("é", 128), ""},
		{"129 two-byte characters", strings.Repeat("é", 129), "is 258 bytes long, the limit is 256"},
		{"C1 control character", "a\u0085b", "control character U+0085"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		// An accepted name reads back, also after a reopen: the log and the index
		// keep names of the full length.
		t.Run("stream/"+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			e := ev("A")
			_, err := s.Append(ctx, tt.value, pmd.Any, e)
			checkNameVerdict(t, s, err, "stream", tt.reason)
			if tt.reason != "" {
				return
			}
			check := func(s *pmd.Store) {
				t.Helper()
				got, err := readStream(t, s, tt.value, pmd.ReadOptions{})
				if err != nil || len(got) != 1 || got[0].ID != e.ID || got[0].Stream != tt.value {
					t.Fatalf("read back: %v, %v", got, err)
				}
				if cat := readCategory(t, s, tt.value); !reflect.DeepEqual(ids(cat), []uuid.UUID{e.ID}) {
					t.Errorf("category %q = %v, want %v", tt.value, ids(cat), e.ID)
				}
			}
			check(s)
			check(reopen(t, s, dir))
		})
		t.Run("type/"+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			e := ev(tt.value)
			_, err := s.Append(ctx, "S", pmd.Any, e)
			checkNameVerdict(t, s, err, "events[0].type", tt.reason)
			if tt.reason != "" {
				return
			}
			check := func(s *pmd.Store) {
				t.Helper()
				got := readAll(t, s, pmd.ReadOptions{Types: []string{tt.value}})
				if len(got) != 1 || got[0].ID != e.ID || got[0].Type != tt.value {
					t.Fatalf("read back by type: %v", got)
				}
			}
			check(s)
			check(reopen(t, s, dir))
		})
	}
}

// checkNameVerdict checks the outcome of an append given a name: accepted if reason is
// empty, else refused as an invalid arg whose reason says so, with nothing written.
func checkNameVerdict(t *testing.T, s *pmd.Store, err error, arg, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var ia *pmd.InvalidArgumentError
	if !errors.As(err, &ia) || ia.Arg != arg || !strings.Contains(ia.Reason, reason) {
		t.Fatalf("err = %v, want an invalid %s saying %q", err, arg, reason)
	}
	if !errors.Is(err, pmd.ErrInvalidArgument) {
		t.Errorf("err = %v does not match ErrInvalidArgument", err)
	}
	if pos := s.LastPosition(); pos != 0 {
		t.Errorf("a refused append wrote up to position %d", pos)
	}
}

// reopen closes s and opens the store in dir again.
func reopen(t *testing.T, s *pmd.Store, dir string) *pmd.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openStore(t, dir)
}

func readCategory(t *testing.T, s *pmd.Store, category string) []pmd.Event {
	t.Helper()
	var out []pmd.Event
	for e, err := range s.ReadCategory(context.Background(), category, pmd.ReadOptions{}) {
		if err != nil {
			t.Fatalf("read category %q: %v", category, err)
		}
		out = append(out, e)
	}
	return out
}

// TestCategoryIsBeforeTheFirstDollar: the category is the part of a stream's name before
// its first $, and a name without $ is its own category (docs/semantics.md); a category
// with a $ is refused.
func TestCategoryIsBeforeTheFirstDollar(t *testing.T) {
	s := openStore(t, "")
	deep, other, bare := ev("A"), ev("B"), ev("C")
	mustAppend(t, s, "Order$1$2", pmd.NoStream, deep)
	mustAppend(t, s, "Order-x$3", pmd.NoStream, other)
	mustAppend(t, s, "Order", pmd.NoStream, bare)

	if got, want := ids(readCategory(t, s, "Order")), []uuid.UUID{deep.ID, bare.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("category Order = %v, want %v (Order$1$2, Order)", got, want)
	}
	// A name holding a $ is no category (Order$1$2 is in Order): asking for one, typically
	// a stream's name by mistake, is refused rather than read as empty.
	for _, err := range s.ReadCategory(context.Background(), "Order$1", pmd.ReadOptions{}) {
		var ia *pmd.InvalidArgumentError
		if !errors.As(err, &ia) || ia.Arg != "category" || !strings.Contains(ia.Reason, `before its first $ (here "Order")`) {
			t.Errorf("category Order$1: %v, want an invalid category naming the one meant", err)
		}
		break
	}
	for _, err := range s.Subscribe(context.Background(), pmd.SubscribeOptions{Category: "Order$1"}) {
		if !errors.Is(err, pmd.ErrInvalidArgument) {
			t.Errorf("subscribe to category Order$1: %v, want an invalid argument", err)
		}
		break
	}
	if got, want := ids(readCategory(t, s, "Order-x")), []uuid.UUID{other.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("category Order-x = %v, want %v", got, want)
	}
}

// TestTimestampsAreUTC: every read gives the store's timestamp in UTC (time.UTC itself,
// not a local zone that happens to be UTC), the same instant whichever way it is read.
func TestTimestampsAreUTC(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	e, erased := ev("A"), ev("B")
	mustAppend(t, s, "Order$1", pmd.NoStream, e)
	mustLink(t, s, "Audit", pmd.NoStream, e.ID)
	mustAppend(t, s, "Secret", pmd.NoStream, erased)
	if err := s.EraseStream(ctx, "Secret"); err != nil {
		t.Fatal(err)
	}

	type read struct {
		how string
		pmd.Event
	}
	var reads []read
	add := func(how string, events []pmd.Event, err error) {
		t.Helper()
		if err != nil || len(events) == 0 {
			t.Fatalf("%s: %v, %v", how, events, err)
		}
		for _, e := range events {
			reads = append(reads, read{how, e})
		}
	}
	for _, stream := range []string{"Order$1", "Audit", "Secret"} {
		got, err := readStream(t, s, stream, pmd.ReadOptions{})
		add("ReadStream "+stream, got, err)
		got, err = readStream(t, s, stream, pmd.ReadOptions{From: pmd.End, Backward: true})
		add("ReadStream backward "+stream, got, err)
	}
	add("ReadAll", readAll(t, s, pmd.ReadOptions{}), nil)
	add("ReadAll backward", readAll(t, s, pmd.ReadOptions{From: pmd.End, Backward: true}), nil)
	add("ReadAll by type", readAll(t, s, pmd.ReadOptions{Types: []string{"A"}}), nil)
	add("ReadCategory", readCategory(t, s, "Order"), nil)
	for _, id := range []uuid.UUID{e.ID, erased.ID} {
		got, err := s.Event(ctx, id)
		add("Event", []pmd.Event{got}, err)
	}

	first := map[uuid.UUID]time.Time{}
	for _, got := range reads {
		if loc := got.Timestamp.Location(); loc != time.UTC {
			t.Errorf("%s of %s (erased %v): timestamp %v in %v, want UTC", got.how, got.ID, got.Erased, got.Timestamp, loc)
		}
		if got.Timestamp.IsZero() {
			t.Errorf("%s of %s: no timestamp", got.how, got.ID)
		}
		if ts, ok := first[got.ID]; ok && ts != got.Timestamp {
			t.Errorf("%s of %s: timestamp %v, an earlier read gave %v", got.how, got.ID, got.Timestamp, ts)
		}
		first[got.ID] = got.Timestamp
	}
}

// TestExpectedVersionOnDeletedStreams: a deleted stream has no event, so stream_exists
// is refused; a link expecting no_stream starts it again at the version after its last
// one (versions are never reused).
func TestExpectedVersionOnDeletedStreams(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	a, b, kept := ev("A"), ev("B"), ev("K")
	mustAppend(t, s, "Order$1", pmd.NoStream, a, b)
	mustAppend(t, s, "Other", pmd.NoStream, kept)
	if err := s.DeleteStream(ctx, "Order$1", pmd.AtVersion(1)); err != nil {
		t.Fatal(err)
	}
	before := s.LastPosition()

	writes := []struct {
		what  string
		write func() error
	}{
		{"append", func() error { _, err := s.Append(ctx, "Order$1", pmd.StreamExists, ev("C")); return err }},
		{"link", func() error { _, err := s.Link(ctx, "Order$1", pmd.StreamExists, kept.ID); return err }},
	}
	for _, w := range writes {
		what, err := w.what, w.write()
		var wev *pmd.WrongExpectedVersionError
		if !errors.As(err, &wev) || !errors.Is(err, pmd.ErrWrongExpectedVersion) {
			t.Fatalf("%s expecting stream_exists on a deleted stream: err = %v, want wrong expected version", what, err)
		}
		if wev.Stream != "Order$1" || wev.Expected != pmd.StreamExists || wev.Actual != -1 {
			t.Errorf("%s: error %+v, want stream Order$1, expected stream_exists, actual -1 (no_stream)", what, *wev)
		}
	}
	if pos := s.LastPosition(); pos != before {
		t.Fatalf("refused writes wrote up to position %d (was %d)", pos, before)
	}

	res := mustLink(t, s, "Order$1", pmd.NoStream, kept.ID)
	if res.Version != 2 {
		t.Errorf("link with no_stream into the deleted stream landed at version %d, want 2", res.Version)
	}
	got, err := readStream(t, s, "Order$1", pmd.ReadOptions{})
	if err != nil || len(got) != 1 {
		t.Fatalf("restarted stream = %v, %v", got, err)
	}
	if got[0].ID != kept.ID || got[0].Version != 2 || !got[0].Link || got[0].Stream != "Other" {
		t.Errorf("restarted stream holds %+v, want %s linked at version 2, written to Other", got[0], kept.ID)
	}
}

// TestDuplicateLinkNamesEventAndStream: linking an event into a stream it is already in,
// written or linked, fails with a *DuplicateEventError naming that event and that
// stream, and writes nothing.
func TestDuplicateLinkNamesEventAndStream(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	own, linked, fresh := ev("A"), ev("B"), ev("C")
	mustAppend(t, s, "Order$1", pmd.NoStream, own)
	mustAppend(t, s, "Order$2", pmd.NoStream, linked, fresh)
	mustLink(t, s, "Order$1", pmd.AtVersion(0), linked.ID)
	before := s.LastPosition()

	tests := []struct {
		name string
		ids  []uuid.UUID
		dup  uuid.UUID
	}{
		{"written to the stream", []uuid.UUID{own.ID}, own.ID},
		{"linked into the stream", []uuid.UUID{linked.ID}, linked.ID},
		{"after a new one", []uuid.UUID{fresh.ID, linked.ID}, linked.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Link(ctx, "Order$1", pmd.Any, tt.ids...)
			var de *pmd.DuplicateEventError
			if !errors.As(err, &de) || !errors.Is(err, pmd.ErrDuplicateEvent) {
				t.Fatalf("err = %v, want a duplicate event", err)
			}
			if de.ID != tt.dup || de.Stream != "Order$1" {
				t.Errorf("error names event %s in stream %q, want %s in Order$1", de.ID, de.Stream, tt.dup)
			}
			if pos := s.LastPosition(); pos != before {
				t.Errorf("a refused link wrote up to position %d (was %d)", pos, before)
			}
		})
	}
}
