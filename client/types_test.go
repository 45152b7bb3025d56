package client_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// TestTypesWithACommaFilter: an event type may hold a comma; ReadAll and Subscribe keep
// exactly the types given, sending each whole (type=, once per type), and send no
// empty query value.
func TestTypesWithACommaFilter(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	d := startDaemon(t, server.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			queries = append(queries, r.URL.RawQuery)
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})
	c := newClient(t, d.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "A,B"}, pmd.EventData{Type: "A"}, pmd.EventData{Type: "B"}, pmd.EventData{Type: "C"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		types []string
		want  []uint64
	}{
		{[]string{"A,B"}, []uint64{1}},
		{[]string{"A", "B"}, []uint64{2, 3}},
		{[]string{"C", "A,B"}, []uint64{1, 4}},
	} {
		p, err := c.ReadAll(ctx, pmd.ReadOptions{Types: tt.types})
		if err != nil {
			t.Fatal(err)
		}
		if got := positions(p.Events); !slices.Equal(got, tt.want) {
			t.Errorf("ReadAll of types %q: positions %v, want %v", tt.types, got, tt.want)
		}
		sub := collect(t, c.Subscribe(ctx, client.SubscribeOptions{Types: tt.types}), len(tt.want))
		if got := positions(sub); !slices.Equal(got, tt.want) {
			t.Errorf("Subscribe to types %q: positions %v, want %v", tt.types, got, tt.want)
		}
	}
	// An empty type is refused before anything is sent, naming it as the store does.
	mu.Lock()
	sent := len(queries)
	mu.Unlock()
	_, err := c.ReadAll(ctx, pmd.ReadOptions{Types: []string{"A", ""}})
	var invalid *pmd.InvalidArgumentError
	if !errors.As(err, &invalid) || invalid.Arg != "types[1]" {
		t.Errorf("ReadAll of types A and \"\": %v, want an invalid argument types[1]", err)
	}
	for _, err := range c.Subscribe(ctx, client.SubscribeOptions{Types: []string{""}}) {
		if !errors.As(err, &invalid) || invalid.Arg != "types[0]" {
			t.Errorf("Subscribe to type \"\": %v, want an invalid argument types[0]", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != sent {
		t.Errorf("%d requests sent for the empty types", len(queries)-sent)
	}
	for _, q := range queries {
		if q != "" && (slices.Contains(strings.Split(q, "&"), "") || strings.Contains(q, "=&") || strings.HasSuffix(q, "=")) {
			t.Errorf("the client sent an empty query value: %q", q)
		}
	}
}
