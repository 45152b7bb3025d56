package client_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// TestBadInputIsTheStoresInvalidArgument checks that input the embedded store refuses
// as an invalid argument is refused by the client the same way, before anything is
// sent: an *pmd.InvalidArgumentError with the store's Arg, not the answer of another
// route (an empty name) nor an encoding error (NaN).
func TestBadInputIsTheStoresInvalidArgument(t *testing.T) {
	var sent atomic.Int64
	d := startDaemon(t, server.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sent.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	c := newClient(t, d.url)
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	id := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	first := func(seq func(func(pmd.Event, error) bool)) error {
		for _, err := range seq {
			return err
		}
		return nil
	}
	firstOf := func(seq func(func(client.Event, error) bool)) error {
		for _, err := range seq {
			return err
		}
		return nil
	}
	placed := pmd.EventData{Type: "Placed"}
	withID := pmd.EventData{ID: id, Type: "Placed"}
	nan := pmd.EventData{Type: "Placed", Data: map[string]any{"ratio": math.NaN()}}
	intKeys := pmd.EventData{Type: "Placed", Data: map[string]any{"counts": map[int]int{1: 2}}}
	boolKeys := pmd.EventData{Type: "Placed", Metadata: map[string]any{"seen": map[bool]int{true: 1}}}
	loop := map[string]any{"k": 1}
	loop["self"] = loop
	holdsItself := pmd.EventData{Type: "Placed", Data: map[string]any{"m": loop}}
	tests := []struct {
		name   string
		store  func() error
		client func() error
	}{
		{"append to an empty stream name",
			func() error { _, err := s.Append(ctx, "", pmd.Any, placed); return err },
			func() error { _, err := c.Append(ctx, "", pmd.Any, placed); return err }},
		{"append to a reserved stream",
			func() error { _, err := s.Append(ctx, "$mine", pmd.Any, placed); return err },
			func() error { _, err := c.Append(ctx, "$mine", pmd.Any, placed); return err }},
		{"append to ..",
			func() error { _, err := s.Append(ctx, "..", pmd.Any, placed); return err },
			func() error { _, err := c.Append(ctx, "..", pmd.Any, placed); return err }},
		{"append an event without a type",
			func() error { _, err := s.Append(ctx, "Order$1", pmd.Any, placed, pmd.EventData{}); return err },
			func() error { _, err := c.Append(ctx, "Order$1", pmd.Any, placed, pmd.EventData{}); return err }},
		{"append NaN data",
			func() error { _, err := s.Append(ctx, "Order$1", pmd.Any, nan); return err },
			func() error { _, err := c.Append(ctx, "Order$1", pmd.Any, nan); return err }},
		{"append NaN metadata",
			func() error {
				_, err := s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed", Metadata: map[string]any{"x": []any{math.Inf(1)}}})
				return err
			},
			func() error {
				_, err := c.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed", Metadata: map[string]any{"x": []any{math.Inf(1)}}})
				return err
			}},
		{"append data with a map whose keys are not strings",
			func() error { _, err := s.Append(ctx, "Order$1", pmd.Any, intKeys); return err },
			func() error { _, err := c.Append(ctx, "Order$1", pmd.Any, intKeys); return err }},
		{"append metadata with a map whose keys are bools",
			func() error { _, err := s.Append(ctx, "Order$1", pmd.Any, boolKeys); return err },
			func() error { _, err := c.Append(ctx, "Order$1", pmd.Any, boolKeys); return err }},
		{"append data that holds itself",
			func() error { _, err := s.Append(ctx, "Order$1", pmd.Any, holdsItself); return err },
			func() error { _, err := c.Append(ctx, "Order$1", pmd.Any, holdsItself); return err }},
		{"append no event",
			func() error { _, err := s.Append(ctx, "Order$1", pmd.Any); return err },
			func() error { _, err := c.Append(ctx, "Order$1", pmd.Any); return err }},
		{"append an id twice",
			func() error { _, err := s.Append(ctx, "Order$1", pmd.Any, withID, placed, withID); return err },
			func() error { _, err := c.Append(ctx, "Order$1", pmd.Any, withID, placed, withID); return err }},
		{"link no event",
			func() error { _, err := s.Link(ctx, "Order$1", pmd.Any); return err },
			func() error { _, err := c.Link(ctx, "Order$1", pmd.Any); return err }},
		{"link the nil id",
			func() error { _, err := s.Link(ctx, "Order$1", pmd.Any, id, uuid.Nil); return err },
			func() error { _, err := c.Link(ctx, "Order$1", pmd.Any, id, uuid.Nil); return err }},
		{"link an id twice",
			func() error { _, err := s.Link(ctx, "Order$1", pmd.Any, id, id); return err },
			func() error { _, err := c.Link(ctx, "Order$1", pmd.Any, id, id); return err }},
		{"link into an empty stream name",
			func() error { _, err := s.Link(ctx, "", pmd.Any, id); return err },
			func() error { _, err := c.Link(ctx, "", pmd.Any, id); return err }},
		{"delete an empty stream name",
			func() error { return s.DeleteStream(ctx, "", pmd.Any) },
			func() error { return c.DeleteStream(ctx, "", pmd.Any) }},
		{"read an empty stream name",
			func() error { return first(s.ReadStream(ctx, "", pmd.ReadOptions{})) },
			func() error { _, err := c.ReadStream(ctx, "", pmd.ReadOptions{}); return err }},
		{"read a stream with a control character",
			func() error { return first(s.ReadStream(ctx, "Order\x00", pmd.ReadOptions{})) },
			func() error { _, err := c.ReadStream(ctx, "Order\x00", pmd.ReadOptions{}); return err }},
		{"read a stream with a negative limit",
			func() error { return first(s.ReadStream(ctx, "Order$1", pmd.ReadOptions{Limit: -1})) },
			func() error { _, err := c.ReadStream(ctx, "Order$1", pmd.ReadOptions{Limit: -1}); return err }},
		{"read $all with a negative limit",
			func() error { return first(s.ReadAll(ctx, pmd.ReadOptions{Limit: -1})) },
			func() error { _, err := c.ReadAll(ctx, pmd.ReadOptions{Limit: -1}); return err }},
		{"read a stream by type",
			func() error { return first(s.ReadStream(ctx, "Order$1", pmd.ReadOptions{Types: []string{"Placed"}})) },
			func() error {
				_, err := c.ReadStream(ctx, "Order$1", pmd.ReadOptions{Types: []string{"Placed"}})
				return err
			}},
		{"follow a stream with a control character",
			func() error { return first(s.Subscribe(ctx, pmd.SubscribeOptions{Stream: "Order\x00"})) },
			func() error { return firstOf(c.Subscribe(ctx, client.SubscribeOptions{Stream: "Order\x00"})) }},
		{"follow a stream by type",
			func() error {
				return first(s.Subscribe(ctx, pmd.SubscribeOptions{Stream: "Order$1", Types: []string{"Placed"}}))
			},
			func() error {
				return firstOf(c.Subscribe(ctx, client.SubscribeOptions{Stream: "Order$1", Types: []string{"Placed"}}))
			}},
		{"follow a category holding a $",
			func() error { return first(s.Subscribe(ctx, pmd.SubscribeOptions{Category: "Order$1"})) },
			func() error { return firstOf(c.Subscribe(ctx, client.SubscribeOptions{Category: "Order$1"})) }},
		{"follow a category and a stream",
			func() error { return first(s.Subscribe(ctx, pmd.SubscribeOptions{Category: "Order", Stream: pmd.All})) },
			func() error {
				return firstOf(c.Subscribe(ctx, client.SubscribeOptions{Category: "Order", Stream: pmd.All}))
			}},
		{"follow a category by type",
			func() error {
				return first(s.Subscribe(ctx, pmd.SubscribeOptions{Category: "Order", Types: []string{"Placed"}}))
			},
			func() error {
				return firstOf(c.Subscribe(ctx, client.SubscribeOptions{Category: "Order", Types: []string{"Placed"}}))
			}},
		{"read an empty category",
			func() error { return first(s.ReadCategory(ctx, "", pmd.ReadOptions{})) },
			func() error { _, err := c.ReadCategory(ctx, "", pmd.ReadOptions{}); return err }},
		{"read a category holding a $",
			func() error { return first(s.ReadCategory(ctx, "Order$1", pmd.ReadOptions{})) },
			func() error { _, err := c.ReadCategory(ctx, "Order$1", pmd.ReadOptions{}); return err }},
		{"retention of an empty stream name",
			func() error { _, err := s.Retention(""); return err },
			func() error { _, err := c.Retention(ctx, ""); return err }},
		{"set the retention of an empty stream name",
			func() error { return s.SetRetention(ctx, "", pmd.Retention{}) },
			func() error { return c.SetRetention(ctx, "", pmd.Retention{}) }},
		{"set a negative max age",
			func() error { return s.SetRetention(ctx, "Order$1", pmd.Retention{MaxAge: -time.Second}) },
			func() error { return c.SetRetention(ctx, "Order$1", pmd.Retention{MaxAge: -time.Second}) }},
		{"erase an empty stream name",
			func() error { return s.EraseStream(ctx, "") },
			func() error { return c.EraseStream(ctx, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want *pmd.InvalidArgumentError
			if err := tt.store(); !errors.As(err, &want) {
				t.Fatalf("the store: %v, want an *pmd.InvalidArgumentError", err)
			}
			before := sent.Load()
			err := tt.client()
			var got *pmd.InvalidArgumentError
			if !errors.Is(err, pmd.ErrInvalidArgument) || !errors.As(err, &got) {
				t.Fatalf("the client: %v, want an *pmd.InvalidArgumentError", err)
			}
			if got.Arg != want.Arg {
				t.Errorf("the client names %q (%v), the store %q (%v)", got.Arg, err, want.Arg, want)
			}
			if n := sent.Load() - before; n != 0 {
				t.Errorf("the client sent %d requests", n)
			}
		})
	}
	if _, err := c.ReadStream(ctx, "Order$1", pmd.ReadOptions{}); !errors.Is(err, pmd.ErrStreamNotFound) {
		t.Fatalf("the daemon's store was written: %v", err)
	}
}

// TestBadProcessOptionsAreInvalidArguments: a negative bound of a process listing or
// page is refused before anything is sent, as the rest of the client's bad input is:
// an *pmd.InvalidArgumentError naming the query parameter the daemon would refuse.
func TestBadProcessOptionsAreInvalidArguments(t *testing.T) {
	var sent atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		http.Error(w, "no request was expected", http.StatusTeapot)
	}))
	defer ts.Close()
	c := newClient(t, ts.URL)
	ctx := context.Background()
	minus := int64(-1)
	tests := []struct {
		name, arg string
		call      func() error
	}{
		{"find with a negative limit", "limit", func() error {
			_, err := c.FindProcesses(ctx, "M", client.ProcessQuery{Limit: -1})
			return err
		}},
		{"find older than a negative age", "older_than", func() error {
			_, err := c.FindProcesses(ctx, "M", client.ProcessQuery{OlderThan: -time.Hour})
			return err
		}},
		{"find idle for a negative time", "idle_for", func() error {
			_, err := c.FindProcesses(ctx, "M", client.ProcessQuery{IdleFor: -time.Hour})
			return err
		}},
		{"read a process before a negative version", "before", func() error {
			_, err := c.ReadProcess(ctx, "M", "1", client.ProcessOptions{Before: &minus})
			return err
		}},
		{"read a process with a negative limit", "limit", func() error {
			_, err := c.ReadProcess(ctx, "M", "1", client.ProcessOptions{Limit: -1})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var got *pmd.InvalidArgumentError
			if !errors.Is(err, pmd.ErrInvalidArgument) || !errors.As(err, &got) {
				t.Fatalf("%v, want an *pmd.InvalidArgumentError", err)
			}
			if got.Arg != tt.arg {
				t.Errorf("%v names %q, want %q", err, got.Arg, tt.arg)
			}
		})
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("the client sent %d requests", n)
	}
}
