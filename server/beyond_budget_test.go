package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
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
