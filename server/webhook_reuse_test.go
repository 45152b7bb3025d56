package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestWebhookReusesItsConnection: attempts to a receiver that answers with a body
// longer than the excerpt an error quotes go over one connection, delivered or failed,
// as for a short answer: the rest of the answer was left unread, which closes the
// connection, so that every attempt dialled (and shook hands, over TLS) again.
func TestWebhookReusesItsConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   int // bytes of the answer
	}{
		{"delivered, empty answer", http.StatusNoContent, 0},
		{"delivered, long answer", http.StatusOK, 4 << 10},
		{"failed, long answer", http.StatusServiceUnavailable, 4 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			receiver := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				if tc.body > 0 {
					_, _ = w.Write([]byte(strings.Repeat("x", tc.body)))
				}
			}))
			var conns atomic.Int64
			receiver.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			receiver.Start()
			defer receiver.Close()
			hooks := NewWebhooks(nil, 0)
			for i := range 3 {
				err := hooks.Deliver(context.Background(), receiver.URL, WebhookCommand{ID: "c1", Type: "T", Manager: "M"})
				if (err == nil) != (tc.status/100 == 2) {
					t.Fatalf("attempt %d: %v", i+1, err)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("3 attempts opened %d connections, want 1", n)
			}
		})
	}
}
