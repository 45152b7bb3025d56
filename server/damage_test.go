package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestDamageOverHTTP: a damaged record makes /healthz say degraded with the problem,
// a page of $all stops short of it with next at it, a page that starts at it fails with
// corrupt naming it (in the message, and as position and version fields), and the page
// after it is served (contract section 8). A
// subscription from below it gets the events before it, then an SSE error event,
// corrupt, naming it, with its id (docs/api.md), and ends: a client that reconnects
// with that id as Last-Event-ID, as EventSource does, gets the events after it.
func TestDamageOverHTTP(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quiet(), SegmentSize: 16 << 10}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		e := pmd.EventData{Type: "E", Data: map[string]any{"mark": fmt.Sprintf("MARK-%03d-MARK", i), "pad": strings.Repeat("p", 100)}}
		if _, err := store.Append(context.Background(), "s", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	const victim = 10 // position 11
	damagetest.FlipIn(t, dir, fmt.Sprintf("MARK-%03d-MARK", victim))
	store, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-store.Scrubbed():
	case <-time.After(time.Minute):
		t.Fatal("no scrub within a minute")
	}
	ts := httptest.NewServer(New(store, Options{Logger: quiet()}))
	t.Cleanup(func() {
		ts.Close()
		store.Close()
	})
	e := &env{t: t, store: store, ts: ts}

	r := e.do("GET", "/healthz", nil).must(t, http.StatusServiceUnavailable)
	problems, _ := r.body["problems"].([]any)
	if r.body["status"] != "degraded" || len(problems) != 1 || !strings.Contains(fmt.Sprint(problems[0]), "position 11") {
		t.Fatalf("healthz %s, want degraded naming position 11", r.raw)
	}
	page := e.do("GET", "/v1/all?limit=50", nil).must(t, http.StatusOK)
	if n := len(page.events(t)); n != victim || fmt.Sprint(page.body["next"]) != "11" {
		t.Fatalf("first page: %d events, next %v; want %d events and next 11", n, page.body["next"], victim)
	}
	bad := e.do("GET", "/v1/all?from=11", nil).mustError(t, http.StatusInternalServerError, "corrupt")
	if !strings.Contains(fmt.Sprint(bad.body["message"]), "position 11") || fmt.Sprint(bad.body["position"]) != "11" || bad.body["version"] != nil {
		t.Fatalf("read from the damaged record: %s, want it named, with position 11", bad.raw)
	}
	badStream := e.do("GET", "/v1/streams/s?from=10", nil).mustError(t, http.StatusInternalServerError, "corrupt")
	if fmt.Sprint(badStream.body["position"]) != "11" || fmt.Sprint(badStream.body["version"]) != "10" {
		t.Fatalf("read of the stream from the damaged record: %s, want position 11 and version 10", badStream.raw)
	}
	if n := len(e.do("GET", "/v1/all?from=12&limit=1000", nil).must(t, http.StatusOK).events(t)); n != 100-victim-1 {
		t.Fatalf("read after the damaged record: %d events, want %d", n, 100-victim-1)
	}
	streamPage := e.do("GET", "/v1/streams/s?limit=50", nil).must(t, http.StatusOK)
	if n := len(streamPage.events(t)); n != victim || fmt.Sprint(streamPage.body["next"]) != fmt.Sprint(victim) {
		t.Fatalf("stream page: %d events, next %v; want %d events and next version %d", n, streamPage.body["next"], victim, victim)
	}
	metrics := string(e.do("GET", "/metrics", nil).must(t, http.StatusOK).raw)
	if !strings.Contains(metrics, "pmd_damaged_records 1") {
		t.Fatal("/metrics does not count the damaged record")
	}

	// A subscription from below the damaged record gets the events before it, then an
	// error event naming it with its id, and ends; resumed from that id, it goes on.
	for _, c := range []struct {
		query, named  string
		damaged, last int // SSE ids: positions of $all, versions of a stream
	}{
		{"", "damaged record at position 11", 11, 100},
		{"types=E&", "damaged record at position 11", 11, 100},
		{"stream=s&", `damaged record at position 11 (version 10 of stream "s")`, 10, 99},
	} {
		sub := openSSE(t, ts.URL+"/v1/subscribe?"+c.query+"from=5", "")
		for id := 5; id < c.damaged; id++ {
			if got, _ := sub.event(t); got != fmt.Sprint(id) {
				t.Fatalf("subscribe?%s: event %s, want %d", c.query, got, id)
			}
		}
		f := sub.next(t)
		var body errorBody
		if f.event != "error" || json.Unmarshal([]byte(f.data), &body) != nil || body.Error != codeCorrupt || !strings.HasPrefix(body.Message, c.named) {
			t.Fatalf("subscribe?%s: after the events before the damaged record: %+v, want an error event, corrupt, %s", c.query, f, c.named)
		}
		if body.Position == nil || *body.Position != 11 || (body.Version != nil) != (c.query == "stream=s&") || (body.Version != nil && *body.Version != 10) {
			t.Fatalf("subscribe?%s: error event %s, want position 11 (and version 10 when following the stream)", c.query, f.data)
		}
		if f.id != fmt.Sprint(c.damaged) {
			t.Fatalf("subscribe?%s: the error event has id %q, want the damaged record's %d", c.query, f.id, c.damaged)
		}
		sub.waitEnd(t)
		// The reconnect of an EventSource: the same URL, from= and all, with the id.
		resumed := openSSE(t, ts.URL+"/v1/subscribe?"+c.query+"from=5", f.id)
		for id := c.damaged + 1; id <= c.last; id++ {
			if got, _ := resumed.event(t); got != fmt.Sprint(id) {
				t.Fatalf("subscribe?%s resumed with Last-Event-ID %s: event %s, want %d", c.query, f.id, got, id)
			}
		}
		resumed.close()
	}
}

func TestStoreErrorsMapToTheContract(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{&pmd.UnavailableError{Cause: fmt.Errorf("write: %w", os.ErrDeadlineExceeded)}, http.StatusServiceUnavailable, "unavailable"},
		{&pmd.CorruptError{Position: 7, Cause: fmt.Errorf("checksum mismatch")}, http.StatusInternalServerError, "corrupt"},
	} {
		if status, code := classify(tc.err); status != tc.status || code != tc.code {
			t.Errorf("classify(%v) = %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}
