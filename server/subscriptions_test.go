package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeSubscriptions is three subscriptions: "billing" (types) with one parked event,
// "audit" (a category), delivering, and "shipping" (a stream), failing on an event.
type fakeSubscriptions struct {
	done []string // "retried <id>" or "skipped <id>"
}

const (
	parkedEvent = "0190c1d2-0000-7000-8000-0000000000e1"
	busyEvent   = "0190c1d2-0000-7000-8000-0000000000e2"
)

func (f *fakeSubscriptions) List(context.Context) ([]Subscription, error) {
	at := time.Unix(5, 0).UTC()
	return []Subscription{
		{Name: "billing", Filter: SubscriptionFilter{Types: []string{"ConfirmOrder"}}, Webhook: "http://127.0.0.1:9001/events",
			Position: 7, Lag: ptr[uint64](3), Parked: 1, Status: "parked", LastError: "503", LastErrorAt: &at, Stream: "billing.subscription"},
		{Name: "audit", Filter: SubscriptionFilter{Category: "Order"}, Webhook: "http://127.0.0.1:9002/",
			Position: 12, Lag: new(uint64), Status: "delivering", Stream: "audit.subscription"},
		{Name: "shipping", Filter: SubscriptionFilter{Stream: "Orders"}, Webhook: "http://127.0.0.1:9003/",
			Position: 4, Lag: ptr[uint64](2), Status: "failing", LastError: "500", LastErrorAt: &at, RetryAt: &retryAt, Stream: "shipping.subscription"},
	}, nil
}

var retryAt = time.Unix(65, 0).UTC()

func (f *fakeSubscriptions) Subscription(ctx context.Context, name string) (SubscriptionDetail, error) {
	list, _ := f.List(ctx)
	for _, s := range list {
		if s.Name != name {
			continue
		}
		d := SubscriptionDetail{Subscription: s}
		if s.Parked > 0 {
			d.ParkedEvents = []ParkedEvent{{ID: parkedEvent, Type: "ConfirmOrder", Stream: "CateringMatch$42", Position: 7, Attempts: 10, Error: "503"}}
		}
		if s.Status == "failing" {
			d.FailingEvent = &FailingEvent{ParkedEvent: ParkedEvent{ID: busyEvent, Type: "Ship", Stream: "Orders", Position: 4, Attempts: 2, Error: "500"}, RetryAt: &retryAt}
		}
		return d, nil
	}
	return SubscriptionDetail{}, fmt.Errorf("no subscription %q: %w", name, ErrNotFound)
}

func (f *fakeSubscriptions) Retry(ctx context.Context, name string, event uuid.UUID) error {
	return f.operate("retried", name, event)
}

func (f *fakeSubscriptions) Skip(ctx context.Context, name string, event uuid.UUID) error {
	return f.operate("skipped", name, event)
}

func (f *fakeSubscriptions) operate(what, name string, event uuid.UUID) error {
	switch {
	case name != "billing":
		return fmt.Errorf("no subscription %q: %w", name, ErrNotFound)
	case event.String() == busyEvent:
		return fmt.Errorf("event %s is being delivered: %w", event, ErrConflict)
	case event.String() != parkedEvent:
		return fmt.Errorf("no event %s awaiting delivery: %w", event, ErrNotFound)
	}
	f.done = append(f.done, what+" "+event.String())
	return nil
}

// TestSubscriptionRoutes: the list and one subscription, in the documented shape, and
// retry and skip of an event, refused by name when they cannot be done.
func TestSubscriptionRoutes(t *testing.T) {
	fake := &fakeSubscriptions{}
	e := newEnv(t, Options{Subscriptions: fake})

	r := e.do("GET", "/v1/subscriptions", nil).must(t, http.StatusOK)
	got, _ := json.Marshal(r.body)
	want := `{"subscriptions":[` +
		`{"filter":{"types":["ConfirmOrder"]},"lag":3,"last_error":"503","last_error_at":"1970-01-01T00:00:05Z","name":"billing","parked":1,` +
		`"position":7,"retry_at":null,"status":"parked","stream":"billing.subscription","webhook":"http://127.0.0.1:9001/events"},` +
		`{"filter":{"category":"Order"},"lag":0,"last_error":"","last_error_at":null,"name":"audit","parked":0,` +
		`"position":12,"retry_at":null,"status":"delivering","stream":"audit.subscription","webhook":"http://127.0.0.1:9002/"},` +
		`{"filter":{"stream":"Orders"},"lag":2,"last_error":"500","last_error_at":"1970-01-01T00:00:05Z","name":"shipping","parked":0,` +
		`"position":4,"retry_at":"1970-01-01T00:01:05Z","status":"failing","stream":"shipping.subscription","webhook":"http://127.0.0.1:9003/"}]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	r = e.do("GET", "/v1/subscriptions/billing", nil).must(t, http.StatusOK)
	parked := r.body["parked_events"].([]any)
	if len(parked) != 1 || parked[0].(map[string]any)["id"] != parkedEvent || r.body["position"] != num(7) {
		t.Fatalf("billing: %s", r.raw)
	}
	if r.body["failing_event"] != nil {
		t.Fatalf("billing names a failing event: %s", r.raw)
	}
	r = e.do("GET", "/v1/subscriptions/audit", nil).must(t, http.StatusOK)
	if parked := r.body["parked_events"].([]any); len(parked) != 0 || r.body["failing_event"] != nil {
		t.Fatalf("audit: %s", r.raw)
	}
	// A failing subscription names its failing event, as one names its parked events.
	r = e.do("GET", "/v1/subscriptions/shipping", nil).must(t, http.StatusOK)
	failing, _ := json.Marshal(r.body["failing_event"])
	if want := `{"attempts":2,"error":"500","id":"` + busyEvent + `","position":4,"retry_at":"1970-01-01T00:01:05Z","stream":"Orders","type":"Ship"}`; string(failing) != want {
		t.Fatalf("shipping's failing event: got  %s\nwant %s", failing, want)
	}
	e.do("GET", "/v1/subscriptions/nope", nil).mustError(t, http.StatusNotFound, "not_found")
	e.do("GET", "/v1/subscriptions?limit=1", nil).mustError(t, http.StatusBadRequest, "bad_request")

	path := func(name, event, op string) string {
		return "/v1/subscriptions/" + name + "/events/" + event + "/" + op
	}
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"retry", path("billing", parkedEvent, "retry"), "", http.StatusNoContent, ""},
		{"skip", path("billing", parkedEvent, "skip"), "", http.StatusNoContent, ""},
		{"being delivered", path("billing", busyEvent, "retry"), "", http.StatusConflict, "conflict"},
		{"unknown event", path("billing", "0190c1d2-0000-7000-8000-0000000000ff", "skip"), "", http.StatusNotFound, "not_found"},
		{"unknown subscription", path("nope", parkedEvent, "retry"), "", http.StatusNotFound, "not_found"},
		{"not a UUID", path("billing", "e1", "retry"), "", http.StatusBadRequest, "bad_request"},
		{"a body", path("billing", parkedEvent, "skip"), `{"why":"x"}`, http.StatusBadRequest, "bad_request"},
		{"GET", path("billing", parkedEvent, "skip"), "", http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.name == "GET" {
				method = "GET"
			}
			status, body := e.call(method, tt.path, tt.body, "", nil)
			if status != tt.status || tt.code != "" && !strings.Contains(body, `"error":"`+tt.code+`"`) {
				t.Fatalf("status %d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	if want := []string{"retried " + parkedEvent, "skipped " + parkedEvent}; !slices.Equal(fake.done, want) {
		t.Fatalf("done %q, want %q", fake.done, want)
	}

	// A daemon without subscriptions lists none and knows none.
	none := newEnv(t, Options{})
	r = none.do("GET", "/v1/subscriptions", nil).must(t, http.StatusOK)
	if got, _ := json.Marshal(r.body); string(got) != `{"subscriptions":[]}` {
		t.Fatalf("no subscriptions: %s", got)
	}
	none.do("GET", "/v1/subscriptions/billing", nil).mustError(t, http.StatusNotFound, "not_found")
	if status, _ := none.call("POST", path("billing", parkedEvent, "retry"), "", "", nil); status != http.StatusNotFound {
		t.Fatalf("retry without subscriptions: %d", status)
	}
}
