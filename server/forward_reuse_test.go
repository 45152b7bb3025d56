package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// TestForwardIsNotSentAgainOnABrokenKeptAliveConnection: Go's transport sends a request
// again by itself when a kept-alive connection breaks after the request was written,
// if it can be rewound (no body, or GetBody) and carries an Idempotency-Key. pmd does
// not honour that header, so the leader would apply the write twice: the follower's
// forward is never sent again, and its 503 says the write may have been applied.
func TestForwardIsNotSentAgainOnABrokenKeptAliveConnection(t *testing.T) {
	type write struct{ method, path, body string }
	for _, tt := range []struct {
		header string
		write  write
	}{
		{"Idempotency-Key", write{"POST", "/v1/streams/Order$2", appendBody}},
		{"X-Idempotency-Key", write{"POST", "/v1/streams/Order$2", appendBody}},
		{"Idempotency-Key", write{"POST", "/v1/streams/Order$2/erase", ""}},
		{"Idempotency-Key", write{"DELETE", "/v1/streams/Order$2", ""}},
	} {
		t.Run(tt.header+" "+tt.write.method+" "+tt.write.path, func(t *testing.T) {
			var got atomic.Int32 // the requests for Order$2 the leader read whole
			leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if !strings.Contains(r.URL.Path, "Order$2") {
					w.WriteHeader(http.StatusCreated) // the connection stays open for the next
					return
				}
				got.Add(1)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				conn.(*net.TCPConn).SetLinger(0) // a reset, after the whole request was read
				conn.Close()
			}))
			defer leader.Close()
			u, err := url.Parse(leader.URL)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(New(openStore(t), Options{Logger: quiet(), Node: newLeaderSequence(u.Host)}))
			defer ts.Close()
			for _, w := range []write{{"POST", "/v1/streams/Order$1", appendBody}, tt.write} {
				var body io.Reader
				if w.body != "" {
					body = strings.NewReader(w.body)
				}
				req, err := http.NewRequest(w.method, ts.URL+w.path, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set(tt.header, "k-"+w.path)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if w != tt.write {
					if resp.StatusCode != http.StatusCreated {
						t.Fatalf("%s %s: %d %s, want 201", w.method, w.path, resp.StatusCode, b)
					}
					continue
				}
				if code, msg := errorMessage(b); resp.StatusCode != http.StatusServiceUnavailable || code != "unavailable" || !strings.Contains(msg, "may have been applied") {
					t.Fatalf("%s %s: %d %s, want 503 saying the write may have been applied", w.method, w.path, resp.StatusCode, b)
				}
			}
			if n := got.Load(); n != 1 {
				t.Fatalf("the leader read the write %d times, want once", n)
			}
		})
	}
}

// TestForwardSendsNoBodyOfAGet: a follower neither reads nor forwards the body of a GET
// (no route reads one): a relayed subscription would otherwise hold it in memory, beyond
// the memory budget, for as long as it runs.
func TestForwardSendsNoBodyOfAGet(t *testing.T) {
	live, seen := liveLeader(t)
	ts := httptest.NewServer(New(openStore(t), Options{Logger: quiet(), Node: newLeaderSequence(live)}))
	defer ts.Close()
	req, err := http.NewRequest("GET", ts.URL+"/v1/streams/Order$1?consistency=leader", strings.NewReader(strings.Repeat("x", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("GET through the follower: %d, want the leader's 201", resp.StatusCode)
	}
	if a := <-seen; a.method != "GET" || a.body != "" {
		t.Fatalf("the leader was asked %s with a body of %d bytes, want a GET without one", a.method, len(a.body))
	}
}

// brokenOnReuse is a connection whose second write fails before any byte of it is
// written: a kept-alive connection the leader closed while it was idle.
type brokenOnReuse struct {
	net.Conn
	writes int
}

func (c *brokenOnReuse) Write(b []byte) (int, error) {
	c.writes++
	if c.writes == 2 {
		return 0, errors.New("broken pipe (test)")
	}
	return c.Conn.Write(b)
}

// TestForwardGoesOutAgainWhenNothingOfItWasWritten: a forward whose kept-alive
// connection fails before any of it is written reached nobody, and the transport sends
// it on a new connection (it can rewind the body), instead of the follower answering 503
// that the write may have been applied.
func TestForwardGoesOutAgainWhenNothingOfItWasWritten(t *testing.T) {
	live, seen := liveLeader(t)
	srv := New(openStore(t), Options{Logger: quiet(), Node: newLeaderSequence(live)})
	tr := srv.forwarder.Transport.(*http.Transport)
	dial := tr.DialContext
	var conns atomic.Int32
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil || conns.Add(1) > 1 {
			return c, err
		}
		return &brokenOnReuse{Conn: c}, nil
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for _, stream := range []string{"Order$1", "Order$2"} {
		resp, err := http.Post(ts.URL+"/v1/streams/"+stream, "application/json", strings.NewReader(appendBody))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s, want the leader's 201", stream, resp.StatusCode, b)
		}
		if a := <-seen; a.target != "/v1/streams/"+stream || a.body != appendBody {
			t.Fatalf("the leader was asked %+v, want POST %s with its body", a, stream)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections to the leader, want 2: the broken one, then a new one", n)
	}
}
