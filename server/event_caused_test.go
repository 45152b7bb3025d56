package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestEventReadsTheCausedItShows: GET /v1/events/{id} reads the events its cause caused
// as it lists them, and stops at the first that passes the page's bytes: an event that
// caused many large ones costs the answer's bytes, not theirs all (up to MaxLimit+1 of
// them, 16 GiB of 16 MiB events, read before).
func TestEventReadsTheCausedItShows(t *testing.T) {
	const n, size = 100, 128 << 10
	e := newEnv(t, Options{PageBytes: 64 << 10})
	ctx := context.Background()
	cause, err := e.store.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed"})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := e.store.Append(ctx, "Ship$1", pmd.Any, pmd.EventData{Type: "Shipped",
			Data: map[string]any{"pad": blob(size)}, Metadata: map[string]any{pmd.CausationID: cause.IDs[0].String()}}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req := httptest.NewRequest("GET", "/v1/events/"+cause.IDs[0].String(), nil)
	rec := e.serve(req)
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET the cause: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Caused          []json.RawMessage `json:"caused"`
		CausedTruncated bool              `json:"caused_truncated"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Caused) != 1 || !out.CausedTruncated {
		t.Fatalf("caused lists %d events (truncated %v), want the one that fits a page, and truncated", len(out.Caused), out.CausedTruncated)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > n*size/2 {
		t.Fatalf("answering with one caused event of %d bytes allocated %d bytes: the %d events were read", size, alloc, n)
	}
}
