package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// TestSubscribeCategory: SubscribeOptions.Category follows the events written to the
// streams of a category, the stored ones from From, then live ones, by position, as
// the daemon's ?category=C sends them: not those of other categories nor those linked
// into the category's streams. A dropped connection resumes after the last event
// yielded (Last-Event-ID, a position), without a gap or a duplicate; WithLeaderReads
// asks for the leader's copy, as for the other subscriptions.
func TestSubscribeCategory(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   []client.Option
		leader bool
	}{
		{"local reads", nil, false},
		{"leader reads", []client.Option{client.WithLeaderReads()}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var queries []url.Values
			var lastIDs []string
			record := func(h http.Handler) http.Handler {
				cut := cutAfterFirstEvent(h)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/v1/subscribe" {
						mu.Lock()
						queries = append(queries, r.URL.Query())
						lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
						mu.Unlock()
					}
					cut.ServeHTTP(w, r)
				})
			}
			d := startDaemon(t, server.Options{}, record)
			c := newClient(t, d.url, append(tt.opts, client.WithReconnectDelay(time.Millisecond))...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			appendTo := func(stream, typ string) pmd.WriteResult {
				t.Helper()
				res, err := c.Append(ctx, stream, pmd.Any, pmd.EventData{Type: typ})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			appendTo("Order$1", "Placed")         // 1
			appendTo("Orders", "NotOfIt")         // 2
			paid := appendTo("Payment$1", "Paid") // 3
			appendTo("Order$2", "Placed")         // 4

			var drops []error
			opts := client.SubscribeOptions{Category: "Order", Dropped: func(err error) { drops = append(drops, err) }}
			var got []client.Event
			for e, err := range c.Subscribe(ctx, opts) {
				if err != nil {
					t.Fatalf("after %d events: %v", len(got), err)
				}
				got = append(got, e)
				if len(got) == 2 {
					// The stored events are in; these come live.
					if _, err := c.Link(ctx, "Order$1", pmd.Any, paid.IDs[0]); err != nil { // 5
						t.Fatal(err)
					}
					appendTo("Payment$2", "Paid") // 6
					appendTo("Order$3", "Placed") // 7
				}
				if len(got) == 3 {
					break
				}
			}
			if !slices.Equal(positions(got), []uint64{1, 4, 7}) {
				t.Fatalf("got positions %v, want 1 4 7 (the events written to Order$…)", positions(got))
			}
			for _, e := range got {
				if e.Version != nil || e.Link || e.Type != "Placed" {
					t.Fatalf("got %+v, want a Placed event written to the category, without a version", e)
				}
			}
			if len(drops) != 1 {
				t.Fatalf("Dropped called %d times (%v), want once", len(drops), drops)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(lastIDs, []string{"", "1"}) {
				t.Fatalf("Last-Event-ID of each connection: %q, want none, then the position 1", lastIDs)
			}
			for _, q := range queries {
				if q.Get("category") != "Order" || q.Has("stream") || q.Has("types") || (q.Get("consistency") == "leader") != tt.leader {
					t.Fatalf("subscribed with %v, want category=Order (and consistency=leader: %v)", q, tt.leader)
				}
			}
		})
	}
}

// TestSubscribeCategoryRefused: a category that breaks the store's rules, or one with a
// stream or types, ends the subscription before anything is sent, with the store's
// *pmd.InvalidArgumentError naming the category (TestBadInputIsTheStoresInvalidArgument
// compares it with the store's); a token limited to streams, which the daemon does
// not let follow a category, ends it with ErrForbidden, without reconnecting.
func TestSubscribeCategoryRefused(t *testing.T) {
	var sent int
	var mu sync.Mutex
	count := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			sent++
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	d := startDaemon(t, server.Options{}, count)
	c := newClient(t, d.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name string
		opts client.SubscribeOptions
	}{
		{"a stream's name", client.SubscribeOptions{Category: "Order$1"}},
		{"with a stream", client.SubscribeOptions{Category: "Order", Stream: "Order$1"}},
		{"with $all", client.SubscribeOptions{Category: "Order", Stream: pmd.All}},
		{"with types", client.SubscribeOptions{Category: "Order", Types: []string{"Placed"}}},
		{"a control character", client.SubscribeOptions{Category: "Order\x00"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			for _, err := range c.Subscribe(ctx, tt.opts) {
				n++
				var bad *pmd.InvalidArgumentError
				if !errors.As(err, &bad) || bad.Arg != "category" {
					t.Fatalf("%v, want an *pmd.InvalidArgumentError naming the category", err)
				}
			}
			if n != 1 {
				t.Fatalf("yielded %d times, want one error", n)
			}
		})
	}
	mu.Lock()
	if sent != 0 {
		t.Errorf("the client sent %d requests", sent)
	}
	mu.Unlock()

	sum := sha256.Sum256([]byte("o-token"))
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	yaml := fmt.Sprintf("tokens:\n  - {name: orders, sha256: %s, scopes: [read], streams: [\"Order$\"]}\n", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := server.LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	limited := startDaemon(t, server.Options{Tokens: tokens}, nil)
	lc := newClient(t, limited.url, client.WithToken("o-token"), client.WithReconnectDelay(time.Millisecond))
	answered := false
	for _, err := range lc.Subscribe(ctx, client.SubscribeOptions{Category: "Order", Dropped: func(err error) { t.Errorf("reconnected after %v", err) }}) {
		if !errors.Is(err, client.ErrForbidden) {
			t.Fatalf("a token limited to streams: %v, want ErrForbidden", err)
		}
		answered = true
	}
	if !answered {
		t.Fatalf("a token limited to streams: the subscription ended without an error: %v", ctx.Err())
	}
}
