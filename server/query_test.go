package server

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTypeParameter: ?type= names one whole event type, once per type, so a type
// holding a comma can be filtered; ?types= is split at its commas as before; both
// together are refused.
func TestTypeParameter(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("s", nil, ev("A,B", nil), ev("A", nil), ev("B", nil), ev("C", nil)).must(t, http.StatusCreated)
	types := func(r reply) string {
		var got []string
		for _, ev := range r.events(t) {
			got = append(got, ev["type"].(string))
		}
		return strings.Join(got, " ")
	}
	for _, tt := range []struct{ query, want string }{
		{"type=A%2CB", "A,B"},
		{"type=A&type=C", "A C"},
		{"type=C&type=A%2CB", "A,B C"},
		{"types=A,B", "A B"},
		{"types=A%2CB", "A B"},
		{"types=C", "C"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			if got := types(e.do("GET", "/v1/all?"+tt.query, nil).must(t, http.StatusOK)); got != tt.want {
				t.Fatalf("read types %q, want %q", got, tt.want)
			}
		})
	}

	// The same filters on a subscription.
	sub := openSSE(t, e.ts.URL+"/v1/subscribe?type=A%2CB", "")
	if _, got := sub.event(t); got["type"] != "A,B" {
		t.Fatalf("subscription with type=A%%2CB sent %v", got)
	}
	e.append("s", nil, ev("B", nil), ev("A,B", nil)).must(t, http.StatusCreated)
	if id, got := sub.event(t); got["type"] != "A,B" || id != "6" {
		t.Fatalf("subscription with type=A%%2CB sent %s %v, want the live A,B at 6", id, got)
	}
	old := openSSE(t, e.ts.URL+"/v1/subscribe?types=A,B", "")
	var ids []string
	for range 3 {
		id, _ := old.event(t)
		ids = append(ids, id)
	}
	if strings.Join(ids, " ") != "2 3 5" {
		t.Fatalf("subscription with types=A,B sent %v, want positions 2 3 5", ids)
	}

	for _, tt := range []struct{ path, want string }{
		{"/v1/all?type=A&types=B", "give type (once per type) or types (comma-separated), not both"},
		{"/v1/subscribe?type=A&types=B", "give type (once per type) or types (comma-separated), not both"},
		{"/v1/subscribe?type=A&stream=s", "give stream or type, not both"},
		{"/v1/subscribe?types=A&stream=s", "give stream or types, not both"},
		{"/v1/all?type=A&type=%01", "type[1]"},
		{"/v1/subscribe?type=A&type=%01", "type[1]"},
		{"/v1/all?types=A,", "types[1]"},
		{"/v1/subscribe?types=A,", "types[1]"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			r := e.do("GET", tt.path, nil).mustError(t, http.StatusBadRequest, codeBadRequest)
			if msg := r.body["message"].(string); !strings.Contains(msg, tt.want) {
				t.Fatalf("message %q lacks %q", msg, tt.want)
			}
		})
	}
}

// TestEmptyQueryValues: a query parameter given with no value is refused, naming it,
// rather than taken as absent (?stream= would follow the whole global log).
func TestEmptyQueryValues(t *testing.T) {
	e := newEnv(t, Options{})
	e.ts.Client().Timeout = 10 * time.Second // a subscription taken would not end
	e.append("s", nil, ev("E", nil)).must(t, http.StatusCreated)
	for _, tt := range []struct{ method, path, param string }{
		{"GET", "/v1/all?limit=", "limit"},
		{"GET", "/v1/all?from=", "from"},
		{"GET", "/v1/all?direction=", "direction"},
		{"GET", "/v1/all?types=", "types"},
		{"GET", "/v1/all?type=A&type=", "type"},
		{"GET", "/v1/all?limit", "limit"},
		{"GET", "/v1/streams/s?from=&limit=1", "from"},
		{"GET", "/v1/categories/c?direction=", "direction"},
		{"GET", "/v1/streams?prefix=", "prefix"},
		{"GET", "/v1/streams?after=", "after"},
		{"GET", "/v1/subscribe?stream=", "stream"},
		{"GET", "/v1/subscribe?types=", "types"},
		{"GET", "/v1/subscribe?from=", "from"},
		{"GET", "/v1/processes/p?status=", "status"},
		{"POST", "/v1/streams/s?expected_version=", "expected_version"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var body any
			if tt.method == "POST" {
				body = `{"events":[{"type":"E"}]}`
			}
			r := e.do(tt.method, tt.path, body).mustError(t, http.StatusBadRequest, codeBadRequest)
			want := "query parameter " + tt.param + " is empty"
			if msg := r.body["message"].(string); !strings.Contains(msg, want) {
				t.Fatalf("message %q lacks %q", msg, want)
			}
		})
	}
	if n := e.store.LastPosition(); n != 1 {
		t.Fatalf("last position %d after the refusals, want 1", n)
	}
}

// TestRouteListNamesConsistency: GET /v1/ lists every query parameter of each route,
// consistency, which every route takes, among them.
func TestRouteListNamesConsistency(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("GET", "/v1/", nil).must(t, http.StatusOK)
	for i, got := range r.body["routes"].([]any) {
		rt := e.srv.table[i]
		var query []string
		for _, q := range got.(map[string]any)["query"].([]any) {
			query = append(query, q.(string))
		}
		if want := append(slices.Clone(rt.params), "consistency"); !slices.Equal(query, want) {
			t.Errorf("%s %s lists query %v, want %v", rt.method, rt.path, query, want)
		}
	}
}

// TestMemoryBudgetRefusalLoggedAsWarning: a request refused at the memory budget is
// load shedding the daemon means to do, logged as a warning naming what was refused; a
// server error is still logged as one.
func TestMemoryBudgetRefusalLoggedAsWarning(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	e.srv.memory.limit = 1 << 10
	e.srv.memory.wait = time.Millisecond
	e.append("s", nil, ev("E", map[string]any{"pad": blob(4 << 10)}), ev("E", nil)).must(t, http.StatusCreated)

	// A reader that does not read holds its page, beyond the limit.
	stalled := newStalledWriter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.ServeHTTP(stalled, httptest.NewRequest("GET", "http://localhost/v1/streams/s?limit=1", nil))
	}()
	<-stalled.started
	rec := e.serve(httptest.NewRequest("GET", "/v1/streams/s?from=1", nil))
	close(stalled.release)
	<-done
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "memory budget") {
		t.Fatalf("read at the memory budget: %d %s, want 503", rec.Code, rec.Body)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var refused []string
	for _, l := range lines {
		if strings.Contains(l, "from=1") || strings.Contains(l, "memory budget") {
			refused = append(refused, l)
		}
	}
	if len(refused) != 1 || !strings.Contains(refused[0], "level=WARN") || !strings.Contains(refused[0], "path=/v1/streams/s") {
		t.Fatalf("log lines:\n%s\nwant one warning for the refused read, naming its path", logs.String())
	}

	logs.Reset()
	e.srv.writeError(&statusRecorder{ResponseWriter: httptest.NewRecorder()}, httptest.NewRequest("GET", "/v1/stats", nil), errors.New("boom"))
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "boom") {
		t.Fatalf("a server error logged as %q, want an error", l)
	}
}
