package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
				// The client puts a connection back for the next request once it read
				// the answer to its end, on a goroutine of its own: wait for that, or the
				// next attempt might dial before it is back.
				kept := make(chan error, 1)
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					PutIdleConn: func(err error) { kept <- err },
				})
				err := hooks.Deliver(ctx, receiver.URL, WebhookCommand{ID: "c1", Type: "T", Manager: "M"})
				if (err == nil) != (tc.status/100 == 2) {
					t.Fatalf("attempt %d: %v", i+1, err)
				}
				select {
				case err := <-kept:
					if err != nil {
						t.Fatalf("attempt %d: its connection was not kept: %v", i+1, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("attempt %d: its connection was not kept for the next attempt", i+1)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("3 attempts opened %d connections, want 1", n)
			}
		})
	}
}

// TestWebhookKeepsAConnectionPerConcurrentAttempt: a process manager runs up to 4
// attempts to its receiver at once (pm.Options.Deliverers' default), and every manager
// of the daemon shares one Webhooks: the connections of concurrent attempts are kept
// for the next ones. The transport kept 2 idle connections a host (Go's default), so
// round after round of 4 attempts at once closed 2 connections and dialled 2 again.
func TestWebhookKeepsAConnectionPerConcurrentAttempt(t *testing.T) {
	const concurrent, rounds = 4, 3
	arrived := make(chan struct{})
	release := make(chan struct{})
	receiver := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
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
	for round := range rounds {
		errs := make(chan error, concurrent)
		for range concurrent {
			go func() {
				errs <- hooks.Deliver(context.Background(), receiver.URL, WebhookCommand{ID: "c1", Type: "T", Manager: "M"})
			}()
		}
		for range concurrent { // all of them at once at the receiver
			<-arrived
		}
		for range concurrent {
			release <- struct{}{}
		}
		for range concurrent {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round+1, err)
			}
		}
	}
	if n := conns.Load(); n != concurrent {
		t.Fatalf("%d rounds of %d attempts at once opened %d connections, want %d", rounds, concurrent, n, concurrent)
	}
}
