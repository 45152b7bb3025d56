package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
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
// exactly the types given (a type with a comma sent whole, type= once per type), and
// send no empty query value.
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

// TestTypesFilterSpelling: the client sends types=A,B, as before type= was taken, when
// no type holds a comma, so that a daemon older than type= (which refuses it as an
// unknown query parameter) still filters; and type= once per type only when one does,
// which types= would split.
func TestTypesFilterSpelling(t *testing.T) {
	var mu sync.Mutex
	var sent []url.Values
	// An older daemon: it takes types= and refuses type= as a parameter it does not know.
	d := startDaemon(t, server.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			mu.Lock()
			sent = append(sent, q)
			mu.Unlock()
			if q.Has("type") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"bad_request","message":"unknown query parameter \"type\": GET /v1/all takes from, direction, limit and types"}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c := newClient(t, d.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "A"}, pmd.EventData{Type: "B"}, pmd.EventData{Type: "C"}); err != nil {
		t.Fatal(err)
	}
	last := func() url.Values {
		mu.Lock()
		defer mu.Unlock()
		return sent[len(sent)-1]
	}
	for _, tt := range []struct {
		types []string
		want  url.Values // the types' part of the query
		read  []uint64   // positions read from the older daemon; nil: refused
	}{
		{[]string{"A"}, url.Values{"types": {"A"}}, []uint64{1}},
		{[]string{"A", "C"}, url.Values{"types": {"A,C"}}, []uint64{1, 3}},
		{[]string{"A,B"}, url.Values{"type": {"A,B"}}, nil},
		{[]string{"C", "A,B"}, url.Values{"type": {"C", "A,B"}}, nil},
	} {
		check := func(what string, got []uint64, err error) {
			t.Helper()
			q := last()
			delete(q, "from")
			if !reflect.DeepEqual(q, tt.want) {
				t.Errorf("%s of types %q sent %v, want %v", what, tt.types, q, tt.want)
			}
			var apiErr *client.Error
			switch {
			case tt.read == nil && (!errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest):
				t.Errorf("%s of types %q from an older daemon: %v, want its refusal of type", what, tt.types, err)
			case tt.read != nil && err != nil:
				t.Errorf("%s of types %q from an older daemon: %v", what, tt.types, err)
			case tt.read != nil && !slices.Equal(got, tt.read):
				t.Errorf("%s of types %q: positions %v, want %v", what, tt.types, got, tt.read)
			}
		}
		p, err := c.ReadAll(ctx, pmd.ReadOptions{Types: tt.types})
		check("ReadAll", positions(p.Events), err)
		var sub []client.Event
		err = nil
		for e, serr := range c.Subscribe(ctx, client.SubscribeOptions{Types: tt.types}) {
			if serr != nil {
				err = serr
				break
			}
			if sub = append(sub, e); len(sub) == len(tt.read) {
				break
			}
		}
		check("Subscribe", positions(sub), err)
	}
}
