package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/client"
)

// roundTripFunc is a RoundTripper of a program's own, as httpmock or a tracing wrapper
// sets http.DefaultTransport to.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNewWithAnotherDefaultTransport: a program that set http.DefaultTransport to a
// RoundTripper that is not an *http.Transport (a wrapper, a mock) has the requests of
// a Client made then sent through it. New asserted http.DefaultTransport to be an
// *http.Transport, and panicked.
func TestNewWithAnotherDefaultTransport(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer ts.Close()
	var through atomic.Int64
	old := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		through.Add(1)
		return old.RoundTrip(r)
	})
	defer func() { http.DefaultTransport = old }()
	c := newClient(t, ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if n := through.Load(); n != 1 {
		t.Fatalf("%d requests went through http.DefaultTransport, want 1", n)
	}
	// A Client made once the standard library's transport is back shares the pool.
	http.DefaultTransport = old
	if _, err := newClient(t, ts.URL).Health(ctx); err != nil {
		t.Fatal(err)
	}
	if n := through.Load(); n != 1 {
		t.Fatalf("%d requests went through the RoundTripper no longer set, want 1", n)
	}
}

// countConns serves h, counting the connections accepted and sending each close of one
// on closed (if not nil, without blocking).
func countConns(t *testing.T, h http.Handler, closed chan<- struct{}) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	var conns atomic.Int64
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed:
			if closed != nil {
				select {
				case closed <- struct{}{}:
				default:
				}
			}
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, &conns
}

func healthy(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}`))
}

// TestClientsShareConnections: Clients made without WithHTTPClient share one pool of
// connections. Each had a transport of its own, which nothing could close: a program
// making a Client per call left a connection open per Client, for 90 s.
func TestClientsShareConnections(t *testing.T) {
	ts, conns := countConns(t, http.HandlerFunc(healthy), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const clients = 20
	for range clients {
		if _, err := newClient(t, ts.URL).Health(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// One connection, and another where a call dials while the last one's connection
	// is on its way back to the pool.
	if n := conns.Load(); n > 3 {
		t.Fatalf("%d Clients calling one after another opened %d connections, want one", clients, n)
	}
}

// TestCloseIdleConnections closes the idle connections of the Client's pool.
func TestCloseIdleConnections(t *testing.T) {
	closed := make(chan struct{}, 1)
	ts, _ := countConns(t, http.HandlerFunc(healthy), closed)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, opts := range [][]client.Option{nil, {client.WithHTTPClient(&http.Client{Transport: &http.Transport{}})}} {
		c := newClient(t, ts.URL, opts...)
		if _, err := c.Health(ctx); err != nil {
			t.Fatal(err)
		}
		c.CloseIdleConnections()
		select {
		case <-closed:
		case <-ctx.Done():
			t.Fatal("the daemon's connection is still open")
		}
	}
}

// heldServer serves health calls, holding each until callers of them have arrived so
// that each has a connection of its own, and counts the connections; round makes
// callers concurrent calls through c.
func heldServer(t *testing.T, callers int) (*atomic.Int64, string, func(c *client.Client)) {
	t.Helper()
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	ts, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ch := all
		if arrived++; arrived == callers {
			close(all)
			arrived, all = 0, make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		healthy(w, r)
	}), nil)
	round := func(c *client.Client) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for range callers {
			wg.Go(func() {
				if _, err := c.Health(ctx); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	return conns, ts.URL, round
}

// TestIdleConnectionsOfManyCallers: the default transport keeps an idle connection for
// each of 150 concurrent callers, as the documentation promises up to 256. It kept at
// most 100 over all daemons (MaxIdleConns), closing the others after their answers, and
// the next 150 concurrent calls dialled 50 connections again.
func TestIdleConnectionsOfManyCallers(t *testing.T) {
	const callers = 150
	conns, addr, round := heldServer(t, callers)
	c := newClient(t, addr)
	round(c)
	if n := conns.Load(); n != callers {
		t.Fatalf("%d concurrent calls opened %d connections, want %d", callers, n, callers)
	}
	round(c)
	// A few connections may be dialled by calls made while an answered call's
	// connection is on its way back to the pool.
	if n := conns.Load() - callers; n > callers/10 {
		t.Fatalf("the second %d concurrent calls opened %d connections, want none: the first round's were not kept", callers, n)
	}
}

// TestNewWithAProgramsTransport: a program that set http.DefaultTransport to an
// *http.Transport of its own (in its main, after the package's init) has a Client
// made then use a copy of it, with its settings (its dialer here) and an idle
// connection for each of up to 256 concurrent callers, leaving the program's transport
// as it was. Such a Client sent its requests through the program's transport itself,
// which keeps two idle connections per daemon (MaxIdleConnsPerHost unset), so that the
// second round of concurrent calls dialled all but two again.
func TestNewWithAProgramsTransport(t *testing.T) {
	const callers = 20
	conns, addr, round := heldServer(t, callers)
	var dials atomic.Int64
	var d net.Dialer
	mine := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}}
	old := http.DefaultTransport
	http.DefaultTransport = mine
	defer func() { http.DefaultTransport = old }()
	c := newClient(t, addr)
	defer c.CloseIdleConnections()
	round(c)
	round(c)
	if n := conns.Load() - callers; n > callers/4 {
		t.Fatalf("the second %d concurrent calls opened %d connections, want none: the first round's were not kept", callers, n)
	}
	if n, want := dials.Load(), conns.Load(); n != want {
		t.Fatalf("the program's dialer made %d of the %d connections, want all", n, want)
	}
	if mine.MaxIdleConnsPerHost != 0 || mine.MaxIdleConns != 0 {
		t.Fatalf("the program's transport was changed: MaxIdleConnsPerHost %d, MaxIdleConns %d", mine.MaxIdleConnsPerHost, mine.MaxIdleConns)
	}
}

// TestClientsShareAProgramsTransport: Clients made while http.DefaultTransport is the
// same *http.Transport of the program's own share one pooled copy of it. Each had a
// copy of its own, so a program making a Client per call left a connection open per
// Client, never closed with the IdleConnTimeout (0) of &http.Transport{}.
func TestClientsShareAProgramsTransport(t *testing.T) {
	ts, conns := countConns(t, http.HandlerFunc(healthy), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old := http.DefaultTransport
	http.DefaultTransport = &http.Transport{}
	defer func() { http.DefaultTransport = old }()
	const clients = 40
	var last *client.Client
	for range clients {
		last = newClient(t, ts.URL)
		if _, err := last.Health(ctx); err != nil {
			t.Fatal(err)
		}
	}
	defer last.CloseIdleConnections()
	// One connection, and another where a call dials while the last one's connection
	// is on its way back to the pool.
	if n := conns.Load(); n > 3 {
		t.Fatalf("%d Clients of one program transport calling one after another opened %d connections, want one", clients, n)
	}
}
