package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestHiddenAndDeletedStreams: a stream whose events retention hides all still exists and
// reads as empty (200, no events, next null), either way; a deleted stream reads as
// stream_not_found. GET /v1/streams lists both, the deleted one with exists false.
func TestHiddenAndDeletedStreams(t *testing.T) {
	e := newEnv(t, Options{})
	for _, stream := range []string{"Order$hidden", "Order$deleted"} {
		for i := range 2 {
			e.append(stream, nil, ev("Placed", map[string]any{"i": i})).must(t, http.StatusCreated)
		}
	}
	e.do("PUT", "/v1/streams/Order%24hidden/metadata", `{"truncate_before":2}`).must(t, http.StatusOK)
	e.do("DELETE", "/v1/streams/Order%24deleted", nil).must(t, http.StatusNoContent)

	for _, query := range []string{"", "?direction=backward", "?from=0"} {
		r := e.do("GET", "/v1/streams/Order%24hidden"+query, nil).must(t, http.StatusOK)
		if got := strings.TrimSpace(string(r.raw)); got != `{"events":[],"next":null}` {
			t.Errorf("hidden stream%s reads %s, want no events and next null", query, r.raw)
		}
		e.do("GET", "/v1/streams/Order%24deleted"+query, nil).mustError(t, http.StatusNotFound, "stream_not_found")
	}

	r := e.do("GET", "/v1/streams?prefix=Order", nil).must(t, http.StatusOK)
	want := `{"streams":[{"name":"Order$deleted","version":1,"exists":false},{"name":"Order$hidden","version":1,"exists":true}],"next":null}`
	if got := strings.TrimSpace(string(r.raw)); got != want {
		t.Errorf("streams listed as %s, want %s", got, want)
	}
}
