package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// TestTokenThatCannotBeSent: a token no request can carry in its Authorization header
// (a control character, such as the newline ending a token read from a file) is refused
// by New, naming the option. It was taken: every request then failed before reaching
// the daemon as a *ConnectionError, "cannot reach pmd", and a subscription retried it
// forever.
func TestTokenThatCannotBeSent(t *testing.T) {
	for _, tt := range []struct {
		token string
		ok    bool
	}{
		{"s3cret", true},
		{"with space\tand tab", true},
		{"", true},
		{"s3cret\n", false},
		{"s3\rcret", false},
		{"s3cret\x00", false},
		{"s3cret\x7f", false},
	} {
		_, err := client.New("127.0.0.1:7070", client.WithToken(tt.token))
		switch {
		case tt.ok && err != nil:
			t.Errorf("token %q: %v", tt.token, err)
		case !tt.ok && (err == nil || !strings.Contains(err.Error(), "WithToken")):
			t.Errorf("token %q: got %v, want an error naming WithToken", tt.token, err)
		}
	}
}

// TestConcurrentCallsReuseConnections: the default client keeps an idle connection for
// each of a program's concurrent callers. It used http.DefaultTransport, which keeps two
// per host and closes the others after each answer: 16 writers opened a new connection
// for about one call in twelve, each left in TIME_WAIT, and the daemon accepted them.
func TestConcurrentCallsReuseConnections(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ts := httptest.NewUnstartedServer(server.New(store, server.Options{Logger: quiet()}))
	var conns atomic.Int64
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	defer ts.Close()
	c := newClient(t, ts.URL)
	const writers, calls = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range calls {
				if _, err := c.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "A"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// One connection per writer, and a few more where a call dials while another's
	// connection is on its way back to the pool.
	if n := conns.Load(); n > 2*writers {
		t.Fatalf("%d calls of %d writers opened %d connections, want at most %d", writers*calls, writers, n, 2*writers)
	}
}

// TestNewRefusesADurationThatIsNotPositive: a reconnect delay or idle timeout of zero
// or less is refused, naming it.
func TestNewRefusesADurationThatIsNotPositive(t *testing.T) {
	for _, tt := range []struct {
		opt  client.Option
		want string
	}{
		{client.WithReconnectDelay(0), "reconnect delay"},
		{client.WithIdleTimeout(0), "idle timeout"},
		{client.WithIdleTimeout(-time.Second), "idle timeout"},
	} {
		if _, err := client.New("127.0.0.1:7070", tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v, want an error naming the %s", err, tt.want)
		}
	}
}
