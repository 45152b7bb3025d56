package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/prometheus/client_golang/prometheus"
)

// TestEventBeyondTheBudget: an event whose decoded bound is more than the whole memory
// budget is read, as a page, by id and by a subscription, when no other request holds
// bytes of the budget (the contract's page always holds one event); while another does,
// it is refused with a message that says so: the event, its bound and the budget. It
// was refused as any request at a full budget is, "the server is at its memory budget
// … retry shortly", however idle the server was when the client retried.
func TestEventBeyondTheBudget(t *testing.T) {
	e := newEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, MemoryBudget: 1})
	objects := repeated(15000, func(int) any { return map[string]any{} })
	r := e.append("Big$1", nil, ev("E", map[string]any{"l": objects})).must(t, http.StatusCreated)
	id := fmt.Sprint(r.body["ids"].([]any)[0])
	// What decodeHeld reserves for it: its stored bytes and their decoded bounds.
	var bound int64
	for ev, err := range e.store.ReadAll(context.Background(), pmd.ReadOptions{Encoded: true}) {
		if err != nil {
			t.Fatal(err)
		}
		data, meta := ev.Encoded()
		nd, err := decodedBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		nm, err := decodedBytes(meta)
		if err != nil {
			t.Fatal(err)
		}
		bound = int64(len(data)+len(meta)) + nd + nm
	}
	limit := e.srv.memory.limit
	if bound <= limit {
		t.Fatalf("the event's decoded bound %d is within the budget %d: the test needs more", bound, limit)
	}
	reads := []string{"/v1/streams/Big%241", "/v1/all", "/v1/events/" + id}

	t.Run("idle", func(t *testing.T) {
		for _, path := range reads {
			if r := e.do("GET", path, nil).must(t, http.StatusOK); !strings.Contains(string(r.raw), id) {
				t.Errorf("GET %s: %.200s, want the event", path, r.raw)
			}
		}
		sub := openSSE(t, e.ts.URL+"/v1/subscribe?stream=Big%241", "")
		sub.next(t) // the retry line
		if f := sub.next(t); f.event != "" || !strings.Contains(f.data, id) {
			t.Errorf("subscription: %+v, want the event", f)
		}
	})

	t.Run("busy", func(t *testing.T) {
		older := &reservation{s: e.srv}
		if err := older.take(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		defer older.free()
		check := func(where, msg string) {
			t.Helper()
			for _, want := range []string{id, fmt.Sprint(bound), fmt.Sprint(limit), "more than the server's whole memory budget"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: message %q does not say %q", where, msg, want)
				}
			}
		}
		for _, path := range reads {
			r := e.do("GET", path, nil).mustError(t, http.StatusServiceUnavailable, codeUnavailable)
			check("GET "+path, fmt.Sprint(r.body["message"]))
			// Retrying in a second fails the same way while the server is busy.
			if got := r.header.Get("Retry-After"); got != "" {
				t.Errorf("GET %s: Retry-After %q, want none", path, got)
			}
		}
		sub := openSSE(t, e.ts.URL+"/v1/subscribe?stream=Big%241", "")
		sub.next(t) // the retry line
		f := sub.next(t)
		var body errorBody
		if err := json.Unmarshal([]byte(f.data), &body); f.event != "error" || err != nil || body.Error != codeUnavailable {
			t.Fatalf("subscription: %+v, want an unavailable error event", f)
		}
		check("subscription", body.Message)
	})
}

// TestEventRelativesBeyondTheBudget: GET /v1/events/{id} of a small event answers 200
// while another request holds bytes of the budget, though its cause or the first event
// it caused is more than the whole budget: the cause is left out (causation null,
// causation_omitted) and the caused list ends there (caused_truncated). Both failed the
// whole answer with a 503 naming the relative.
func TestEventRelativesBeyondTheBudget(t *testing.T) {
	e := newEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, MemoryBudget: 1})
	big := func(meta map[string]any) map[string]any {
		m := ev("Big", map[string]any{"l": repeated(15000, func(int) any { return map[string]any{} })})
		if meta != nil {
			m["metadata"] = meta
		}
		return m
	}
	small := func(meta map[string]any) map[string]any {
		m := ev("Small", map[string]any{})
		if meta != nil {
			m["metadata"] = meta
		}
		return m
	}
	idOf := func(r reply) string { return fmt.Sprint(r.body["ids"].([]any)[0]) }
	cause := idOf(e.append("Cause$1", nil, big(nil)).must(t, http.StatusCreated))
	a := idOf(e.append("A$1", nil, small(map[string]any{pmd.CausationID: cause})).must(t, http.StatusCreated))
	b := idOf(e.append("B$1", nil, small(nil)).must(t, http.StatusCreated))
	caused := idOf(e.append("Caused$1", nil, big(map[string]any{pmd.CausationID: b})).must(t, http.StatusCreated))

	older := &reservation{s: e.srv}
	if err := older.take(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	defer older.free()
	for _, c := range []struct {
		id                 string
		omitted, truncated bool
	}{
		{id: a, omitted: true},
		{id: b, truncated: true},
	} {
		r := e.do("GET", "/v1/events/"+c.id, nil).must(t, http.StatusOK)
		if got := r.body["caused"].([]any); len(got) != 0 {
			t.Errorf("GET /v1/events/%s: caused %v, want none", c.id, got)
		}
		if got := r.body["causation_omitted"]; got != c.omitted {
			t.Errorf("GET /v1/events/%s: causation_omitted %v, want %v", c.id, got, c.omitted)
		}
		if got := r.body["caused_truncated"]; got != c.truncated {
			t.Errorf("GET /v1/events/%s: caused_truncated %v, want %v", c.id, got, c.truncated)
		}
		if r.body["causation"] != nil {
			t.Errorf("GET /v1/events/%s: causation %v, want null", c.id, r.body["causation"])
		}
	}
	// Idle, both relatives are read.
	older.free()
	if r := e.do("GET", "/v1/events/"+a, nil).must(t, http.StatusOK); r.body["causation"] == nil || r.body["causation_omitted"] != false {
		t.Errorf("GET /v1/events/%s idle: %.300s, want its cause", a, r.raw)
	}
	if r := e.do("GET", "/v1/events/"+b, nil).must(t, http.StatusOK); !strings.Contains(string(r.raw), caused) || r.body["caused_truncated"] != false {
		t.Errorf("GET /v1/events/%s idle: %.300s, want the event it caused", b, r.raw)
	}
}

// TestEventCauseWithoutRoom: GET /v1/events/{id} leaves out a cause well within the
// budget when the budget has no room for it now, without waiting for room and without
// counting a refusal, as it does the events the event caused. The cause was decoded
// waiting for room, holding the event's own bytes for the wait, and the budget's
// refusal at its end counted in pmd_memory_budget_refused_total though the request was
// answered; the docs said only a cause larger than the whole budget was left out.
func TestEventCauseWithoutRoom(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, Registry: reg})
	const budget = 128 << 10
	e.srv.memory.limit = budget
	e.srv.memory.wait = 20 * time.Millisecond
	idOf := func(r reply) string { return fmt.Sprint(r.body["ids"].([]any)[0]) }
	cause := idOf(e.append("Cause$1", nil, ev("Cause", map[string]any{"pad": blob(4 << 10)})).must(t, http.StatusCreated))
	for ev, err := range e.store.ReadAll(context.Background(), pmd.ReadOptions{Encoded: true}) {
		if err != nil {
			t.Fatal(err)
		}
		data, _ := ev.Encoded()
		if n, err := decodedBytes(data); err != nil || n < 16<<10 || n > budget/2 {
			t.Fatalf("the cause's decoded bound is %d (%v), want more than the room left, 16 KiB, and well within the budget", n, err)
		}
	}
	small := ev("Small", map[string]any{})
	small["metadata"] = map[string]any{pmd.CausationID: cause}
	a := idOf(e.append("A$1", nil, small).must(t, http.StatusCreated))

	// An older request leaves room for the small event and its answer, not its cause.
	older := &reservation{s: e.srv}
	if err := older.take(context.Background(), budget-16<<10); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v1/events/"+a, nil).must(t, http.StatusOK)
	if r.body["causation"] != nil || r.body["causation_omitted"] != true {
		t.Errorf("GET /v1/events/%s with no room for its cause: %.300s, want causation null, causation_omitted", a, r.raw)
	}
	if got := counter(t, reg, "pmd_memory_budget_refused_total"); got != 0 {
		t.Errorf("pmd_memory_budget_refused_total = %v after an answered read, want 0", got)
	}
	older.free()
	if r := e.do("GET", "/v1/events/"+a, nil).must(t, http.StatusOK); !strings.Contains(string(r.raw), cause) || r.body["causation_omitted"] != false {
		t.Errorf("GET /v1/events/%s idle: %.300s, want its cause", a, r.raw)
	}
}
