package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// TestNoGoroutineLeft: every way a call or a subscription ends — the loop broken, the
// context ended while it waits for live events or for a reconnect, the daemon refusing
// it, its token revoked while it runs, a request's context ended while the daemon works
// on it — leaves no goroutine behind once the daemon and the idle connections are gone.
// The goroutines are counted before the daemon starts and after it stopped, until the
// count is back or a deadline passes (as goleak does).
func TestNoGoroutineLeft(t *testing.T) {
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens := func(names ...string) {
		yaml := "tokens:\n"
		for _, n := range names {
			yaml += fmt.Sprintf("  - {name: %s, sha256: %s, scopes: [write]}\n", n, hash(n+"-token"))
		}
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeTokens("keep", "revoked")

	base := runtime.NumGoroutine()
	tokens, err := server.LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	api := server.New(store, server.Options{Tokens: tokens, Logger: quiet()})
	// /slow holds an append until its client goes away.
	entered := make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/streams/slow" {
			// The body read, the server sees the client go away.
			io.Copy(io.Discard, r.Body)
			entered <- struct{}{}
			<-r.Context().Done()
			return
		}
		api.ServeHTTP(w, r)
	}))
	closed := false
	stop := func() {
		if closed {
			return
		}
		closed = true
		ts.Close()
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t, ts.URL, client.WithToken("keep-token"), client.WithReconnectDelay(time.Hour))
	if _, err := c.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}

	t.Run("loop broken", func(t *testing.T) {
		for _, err := range c.Subscribe(ctx, client.SubscribeOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	})
	t.Run("context ends while live", func(t *testing.T) {
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		for _, err := range c.Subscribe(sctx, client.SubscribeOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			scancel() // the stored event came: the subscription now waits for live ones
		}
	})
	t.Run("context ends while it waits to reconnect", func(t *testing.T) {
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		dropped := false
		for _, err := range c.Subscribe(sctx, client.SubscribeOptions{Dropped: func(error) { dropped = true; scancel() }}) {
			if err != nil {
				t.Fatal(err)
			}
			ts.CloseClientConnections()
		}
		if !dropped {
			t.Fatal("the subscription ended without being dropped")
		}
	})
	t.Run("refused", func(t *testing.T) {
		bad := newClient(t, ts.URL, client.WithToken("nope"))
		for _, err := range bad.Subscribe(ctx, client.SubscribeOptions{}) {
			if !errors.Is(err, client.ErrUnauthorized) {
				t.Fatalf("got %v, want ErrUnauthorized", err)
			}
		}
	})
	t.Run("token revoked", func(t *testing.T) {
		revoked := newClient(t, ts.URL, client.WithToken("revoked-token"), client.WithReconnectDelay(time.Millisecond))
		var last error
		for _, err := range revoked.Subscribe(ctx, client.SubscribeOptions{}) {
			if err != nil {
				last = err
				continue
			}
			writeTokens("keep")
			if err := tokens.Reload(); err != nil {
				t.Fatal(err)
			}
		}
		if !errors.Is(last, client.ErrUnauthorized) {
			t.Fatalf("ended with %v, want ErrUnauthorized", last)
		}
	})
	t.Run("request context ends", func(t *testing.T) {
		rctx, rcancel := context.WithCancel(ctx)
		go func() {
			<-entered
			rcancel()
		}()
		if _, err := c.Append(rctx, "slow", pmd.Any, pmd.EventData{Type: "E"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})

	c.CloseIdleConnections()
	stop()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the daemon started:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
}
