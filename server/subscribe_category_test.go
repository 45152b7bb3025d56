package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestSubscribeCategory: ?category=C follows the events written to the streams C$…:
// stored ones from from, then live ones, with positions as ids, not the events of
// other categories nor those linked into the category's streams.
func TestSubscribeCategory(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("Order$1", nil, ev("Placed", nil)).must(t, http.StatusCreated) // 1
	e.append("Orders", nil, ev("NotOfIt", nil)).must(t, http.StatusCreated) // 2
	e.append("Payment$1", nil, ev("Paid", nil)).must(t, http.StatusCreated) // 3
	e.append("Order$2", nil, ev("Placed", nil)).must(t, http.StatusCreated) // 4
	paid := e.do("GET", "/v1/streams/Payment%241", nil).events(t)[0]["id"]

	sub := openSSE(t, e.ts.URL+"/v1/subscribe?category=Order&from=2", "")
	id, got := sub.event(t)
	if id != "4" || got["stream"] != "Order$2" || got["position"] != num(4) {
		t.Fatalf("stored event: id %s %v, want position 4 of Order$2", id, got)
	}
	// A link into a stream of the category is not an event written to it.
	e.do("POST", "/v1/streams/Order%241/links", map[string]any{"event_ids": []any{paid}}).must(t, http.StatusCreated) // 5
	e.append("Payment$2", nil, ev("Paid", nil)).must(t, http.StatusCreated)                                           // 6
	e.append("Order$3", nil, ev("Placed", nil)).must(t, http.StatusCreated)                                           // 7
	id, got = sub.event(t)
	if id != "7" || got["stream"] != "Order$3" || got["link"] != false {
		t.Fatalf("live event: id %s %v, want position 7 of Order$3", id, got)
	}

	// Resuming after an id goes on from the next position.
	re := openSSE(t, e.ts.URL+"/v1/subscribe?category=Order", "4")
	if id, _ := re.event(t); id != "7" {
		t.Fatalf("resumed after 4: id %s, want 7", id)
	}
}

func TestSubscribeCategoryRefused(t *testing.T) {
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	tests := []struct {
		name, query, token string
		status             int
		want               string
	}{
		{"a stream name", "category=Order%241", "r-secret", http.StatusBadRequest, "category"},
		{"with a stream", "category=Order&stream=Order%241", "r-secret", http.StatusBadRequest, "not both"},
		{"with types", "category=Order&types=Placed", "r-secret", http.StatusBadRequest, "not both"},
		{"with type", "category=Order&type=Placed", "r-secret", http.StatusBadRequest, "not both"},
		{"with $all", "category=Order&stream=%24all", "r-secret", http.StatusBadRequest, "not both"},
		{"a token limited to streams", "category=Order", "o-secret", http.StatusForbidden, "every stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.call("GET", "/v1/subscribe?"+tt.query, "", tt.token, nil)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("status %d %s, want %d naming %q", status, body, tt.status, tt.want)
			}
		})
	}
}
