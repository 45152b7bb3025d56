package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWebhookAttemptBoundedByItsContext: an attempt is bounded by its context, not by
// a client-wide timeout, so a config file's deliver.timeout above the default (once a
// fixed 10s cap) is honoured; an attempt whose context has no deadline gets the default.
func TestWebhookAttemptBoundedByItsContext(t *testing.T) {
	for name, w := range map[string]*Webhooks{
		"NewWebhooks":      NewWebhooks(nil, 0),
		"NewEventWebhooks": NewEventWebhooks(nil, 0).w,
	} {
		if w.client.Timeout != 0 {
			t.Errorf("%s: the client times out every attempt after %s, whatever its context says", name, w.client.Timeout)
		}
		if tr, ok := w.client.Transport.(*http.Transport); !ok || tr.ResponseHeaderTimeout != 0 {
			t.Errorf("%s: transport %#v caps the wait for an answer", name, w.client.Transport)
		}
		if w.timeout != DefaultWebhookTimeout {
			t.Errorf("%s: default timeout %s, want %s", name, w.timeout, DefaultWebhookTimeout)
		}
	}

	// A receiver that answers only after three times the Webhooks' default: the
	// attempt's own, longer, deadline is what counts.
	const short = 100 * time.Millisecond
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client hang up
		select {
		case <-time.After(3 * short):
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer slow.Close()
	blocked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer blocked.Close()
	defer close(release) // before the receivers close: Close waits for their handlers
	hooks := NewWebhooks(nil, short)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := hooks.Deliver(ctx, slow.URL, WebhookCommand{ID: "c1", Type: "T", Manager: "M"}); err != nil {
		t.Fatalf("an attempt allowed a minute failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if took := time.Since(start); took < 3*short {
		t.Fatalf("the receiver answered after %s, before it should have", took)
	}

	// Without a deadline of its own, an attempt gets the default, and says it timed out.
	events := NewEventWebhooks(nil, short)
	err := events.Deliver(context.Background(), blocked.URL, WebhookEvent{Subscription: "S"})
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), blocked.URL) {
		t.Fatalf("an attempt to a receiver that never answers: %v; want it timed out after the default", err)
	}
}
