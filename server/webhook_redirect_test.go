package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestWebhookRedirectIsAFailedAttempt: a receiver that answers with a redirect has not
// received the command or event. Go's client would follow a 301, 302 or 303 with a GET
// without the body, and count the 2xx that answers it as delivered: the command lost,
// recorded as delivered (an http:// webhook behind a proxy that redirects to https:// is
// the common case). No redirect is followed, a 307 or 308 either (it would send the body
// and its Idempotency-Key to wherever the Location says): the attempt fails, naming the
// status and where the receiver points, so that the operator fixes the URL.
func TestWebhookRedirectIsAFailedAttempt(t *testing.T) {
	var mu sync.Mutex
	var got []string // requests the target received
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer target.Close()

	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, target.URL+"/new?key=secret", code)
		}))
		for name, deliver := range map[string]func() error{
			"command": func() error {
				return NewWebhooks(nil, 0).Deliver(context.Background(), redirecting.URL,
					WebhookCommand{ID: "c1", Type: "Ship", Manager: "M", Data: map[string]any{"a": 1}})
			},
			"event": func() error {
				return NewEventWebhooks(nil, 0).Deliver(context.Background(), redirecting.URL, WebhookEvent{Subscription: "S"})
			},
		} {
			err := deliver()
			if err == nil {
				t.Errorf("%d, %s: a redirect counted as delivered", code, name)
				continue
			}
			for _, want := range []string{http.StatusText(code), target.URL + "/new?key=xxxxx", "follows no redirect"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%d, %s: error %q does not say %q", code, name, err, want)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("%d, %s: error %q shows the Location's query unmasked", code, name, err)
			}
		}
		redirecting.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) > 0 {
		t.Errorf("the redirect was followed: the target received %q", got)
	}
}
