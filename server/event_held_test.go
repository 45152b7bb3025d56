package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestEventByIDHoldsDecodedData: GET /v1/events/{id} decodes the event, its cause and
// the events it caused into bytes reserved of the memory budget, before it decodes
// them, as pages do (TestPagesHoldDecodedData). It read them decoded and reserved only
// its answer's JSON, so the data of three events, decoded into tens of times their
// JSON, was held for every client that asked and did not read, none of it counted.
func TestEventByIDHoldsDecodedData(t *testing.T) {
	e := newEnv(t, Options{})
	data := map[string]any{"l": repeated(5000, func(int) any { return map[string]any{} })}
	parent := e.append("Big$1", nil, ev("E", data)).must(t, http.StatusCreated)
	parentID := fmt.Sprint(parent.body["ids"].([]any)[0])
	child := e.append("Big$2", nil, map[string]any{"type": "E", "data": data,
		"metadata": map[string]any{pmd.CausationID: parentID}}).must(t, http.StatusCreated)
	childID := fmt.Sprint(child.body["ids"].([]any)[0])

	enc, err := pmd.EncodeData(data)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	took := int64(allocatedBy(func() { decoded, _ = pmd.DecodeData(enc) }))
	runtime.KeepAlive(decoded)

	var mu sync.Mutex
	var held []int64
	var capacity int
	hook := func(h int64, c int) {
		mu.Lock()
		defer mu.Unlock()
		held, capacity = append(held, h), c
	}
	e.srv.hooks.heldEncoded = hook

	// Each answer holds two events of the data: the event and its cause, or the event
	// and the one it caused.
	for _, id := range []string{parentID, childID} {
		held = nil
		if rec := e.serve(httptest.NewRequest("GET", "/v1/events/"+id, nil)); rec.Code != http.StatusOK {
			t.Fatalf("GET /v1/events/%s: %d %.200s", id, rec.Code, rec.Body)
		}
		mu.Lock()
		if len(held) != 1 {
			t.Fatalf("GET /v1/events/%s: %d answers written, want 1", id, len(held))
		}
		if held[0] < int64(capacity)+2*took {
			t.Errorf("GET /v1/events/%s held %d for an answer of %d and two events that decoded into %d each", id, held[0], capacity, took)
		}
		mu.Unlock()
		if h := e.srv.memory.Held(); h != 0 {
			t.Fatalf("%d bytes held after the answer", h)
		}
	}
}
