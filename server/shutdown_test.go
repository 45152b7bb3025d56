package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// heldAppend is an append whose request is in its handler, in flight, and stays there
// until its body is sent: its head asks with Expect: 100-continue, and the server
// says "100 Continue" when the handler starts reading the body.
type heldAppend struct {
	conn net.Conn
	br   *bufio.Reader
	body string
}

func holdAppend(t *testing.T, addr, stream string) *heldAppend {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Bounds a broken test; nothing waits for it to pass.
	conn.SetDeadline(time.Now().Add(time.Minute))
	h := &heldAppend{conn: conn, br: bufio.NewReader(conn), body: `{"events":[{"type":"Held"}]}`}
	fmt.Fprintf(conn, "POST /v1/streams/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", stream, len(h.body))
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("append head answered %s, want 100 Continue", resp.Status)
	}
	return h
}

// finish sends the body and returns the answer.
func (h *heldAppend) finish(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	if _, err := io.WriteString(h.conn, h.body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// abandon ends the body short and waits for the server to close the connection: its
// handler has returned by then.
func (h *heldAppend) abandon(t *testing.T) {
	t.Helper()
	if err := h.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, h.br); err != nil {
		t.Fatal(err)
	}
}

// handlerTransport answers a client's request with a handler, without a listener: it
// reaches a server whose Serve has closed its listener.
type handlerTransport struct{ h http.Handler }

func (tr handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	in := httptest.NewRequest(req.Method, req.URL.String(), req.Body)
	in.Header = req.Header.Clone()
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, in)
	return rec.Result(), nil
}

// serving runs srv.Serve on a new listener until the returned cancel; wait returns
// what Serve returned.
func serving(t *testing.T, srv *Server, grace time.Duration) (addr string, cancel context.CancelFunc, wait func() error) {
	t.Helper()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = srv.Serve(ctx, ln, grace)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String(), cancel, func() error {
		<-done
		return err
	}
}

func openStore(t *testing.T) *pmd.Store {
	t.Helper()
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return store
}

// TestShutdownAnswersInFlightAndRefusesNew: once Serve's context is done, new requests,
// /healthz among them, are 503 unavailable, while an append already in its handler is
// answered and stored, and Serve returns nil; an append that does not finish within the
// grace makes Serve return an error saying how many requests were still in flight.
func TestShutdownAnswersInFlightAndRefusesNew(t *testing.T) {
	t.Run("in flight finishes", func(t *testing.T) {
		store := openStore(t)
		srv := New(store, Options{Logger: quiet()})
		addr, cancel, wait := serving(t, srv, time.Minute)
		sub := openSSE(t, "http://"+addr+"/v1/subscribe", "")
		sub.next(t) // the retry line: subscribed
		held := holdAppend(t, addr, "s")

		cancel()
		// Subscriptions end once the server is stopping: from here on it refuses.
		sub.waitEnd(t)
		client := &http.Client{Transport: newValidating(t, handlerTransport{srv})}
		for _, path := range []string{"/healthz", "/v1/all"} {
			resp, err := client.Get("http://127.0.0.1" + path)
			if err != nil {
				t.Fatal(err)
			}
			var body errorBody
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || body.Error != codeUnavailable || body.Message != "the server is shutting down" {
				t.Errorf("GET %s while stopping: %d %+v, want 503 unavailable, shutting down", path, resp.StatusCode, body)
			}
		}

		resp, raw := held.finish(t)
		var res writeResponse
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("append answer %s: %v", raw, err)
		}
		if resp.StatusCode != http.StatusCreated || res.LastPosition != 1 {
			t.Fatalf("the append in flight: %s %s, want 201 at position 1", resp.Status, raw)
		}
		if err := wait(); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		var stored []string
		for ev, err := range store.ReadStream(context.Background(), "s", pmd.ReadOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, ev.Type)
		}
		if len(stored) != 1 || stored[0] != "Held" {
			t.Fatalf("stream s holds %v, want the held append's event", stored)
		}
	})

	t.Run("grace expires", func(t *testing.T) {
		store := openStore(t)
		srv := New(store, Options{Logger: quiet()})
		// The body never comes, so the grace, however short, runs out first: the
		// server's own read timeout (Options.RequestTimeout) is 30s.
		const grace = 50 * time.Millisecond
		addr, cancel, wait := serving(t, srv, grace)
		held := holdAppend(t, addr, "s")

		cancel()
		err := wait()
		want := "server: shutdown: 1 requests still in flight after 50ms: context deadline exceeded"
		if err == nil || err.Error() != want {
			t.Fatalf("Serve: %v, want %q", err, want)
		}
		held.abandon(t)
		if n := store.LastPosition(); n != 0 {
			t.Fatalf("an append whose body never came wrote up to position %d", n)
		}
	})
}
