package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestHealthzAfterStoreClosed: a store its owner closed under the server (an embedder
// may; pmd serve stops HTTP first) is not "open and serving": /healthz answers 503
// unavailable naming the closed store, not 200 ok, and reads and writes are 503
// unavailable.
func TestHealthzAfterStoreClosed(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.append("Order$1", nil, ev("E", nil)).must(t, http.StatusCreated).body["ids"].([]any)[0].(string)
	e.do("GET", "/healthz", nil).must(t, http.StatusOK)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}

	r := e.do("GET", "/healthz", nil).mustError(t, http.StatusServiceUnavailable, "unavailable")
	if msg := r.body["message"].(string); !strings.Contains(msg, "store closed") {
		t.Fatalf("healthz message %q does not say the store is closed", msg)
	}
	for _, path := range []string{
		"/v1/all",
		"/v1/all?direction=backward",
		"/v1/all?types=E",
		"/v1/streams/Order%241",
		"/v1/categories/Order",
		"/v1/streams",
		"/v1/events/" + id,
	} {
		e.do("GET", path, nil).mustError(t, http.StatusServiceUnavailable, "unavailable")
	}
	e.append("Order$1", nil, ev("E", nil)).mustError(t, http.StatusServiceUnavailable, "unavailable")
}

// TestStatsHealthAgreesWithHealthz: the health /v1/stats shows is what /healthz says:
// ok on an open store, and once the store is closed under the server, the same 503
// unavailable naming the closed store rather than health ok.
func TestStatsHealthAgreesWithHealthz(t *testing.T) {
	e := newEnv(t, Options{})
	e.do("GET", "/healthz", nil).must(t, http.StatusOK)
	r := e.do("GET", "/v1/stats", nil).must(t, http.StatusOK)
	if h, _ := r.body["health"].(map[string]any); h["status"] != "ok" {
		t.Fatalf("stats of an open store: health %v, want ok", r.body["health"])
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}

	healthz := e.do("GET", "/healthz", nil).mustError(t, http.StatusServiceUnavailable, "unavailable")
	stats := e.do("GET", "/v1/stats", nil).mustError(t, http.StatusServiceUnavailable, "unavailable")
	if stats.body["message"] != healthz.body["message"] {
		t.Fatalf("stats of a closed store: %q; /healthz: %q", stats.body["message"], healthz.body["message"])
	}
}
