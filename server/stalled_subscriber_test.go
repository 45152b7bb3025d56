package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// stallingListener hands out connections whose writes, once stall is set, wait until
// their write deadline passes (for ever without one), as a write to a client that
// stopped reading does once the socket's buffers are full.
type stallingListener struct {
	net.Listener
	stall   atomic.Bool
	stalled chan struct{} // gets a value each time a write starts to wait
	// onWriteDeadline, if set, is called with each write deadline a connection is
	// given, before the connection takes it.
	onWriteDeadline func(time.Time)
}

func newStallingListener(t *testing.T) *stallingListener {
	return &stallingListener{Listener: listen(t), stalled: make(chan struct{}, 1)}
}

func (l *stallingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallingConn{Conn: c, l: l, changed: make(chan struct{})}, nil
}

// waitStalled waits for a write to stall, failing the test if none does within a
// generous bound.
func (l *stallingListener) waitStalled(t *testing.T) {
	t.Helper()
	select {
	case <-l.stalled:
	case <-time.After(time.Minute):
		t.Fatal("no write stalled within a minute")
	}
}

type stallingConn struct {
	net.Conn
	l        *stallingListener
	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{} // closed and replaced when the deadline changes
}

func (c *stallingConn) setDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *stallingConn) SetWriteDeadline(t time.Time) error {
	if c.l.onWriteDeadline != nil {
		c.l.onWriteDeadline(t)
	}
	c.setDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallingConn) SetDeadline(t time.Time) error {
	c.setDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *stallingConn) Write(b []byte) (int, error) {
	if !c.l.stall.Load() {
		return c.Conn.Write(b)
	}
	select {
	case c.l.stalled <- struct{}{}:
	default:
	}
	for {
		c.mu.Lock()
		deadline, changed := c.deadline, c.changed
		c.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			wait := time.Until(deadline)
			if wait <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			timer := time.NewTimer(wait)
			defer timer.Stop()
			expired = timer.C
		}
		select {
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		case <-changed:
		}
	}
}

// serveOn runs srv.Serve on ln until the returned stop, which returns how long Serve
// took to return and what it returned.
func serveOn(t *testing.T, srv *Server, ln net.Listener, grace time.Duration) (stop func() (time.Duration, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, grace) }()
	var once sync.Once
	var err error
	var took time.Duration
	stop = func() (time.Duration, error) {
		once.Do(func() {
			start := time.Now()
			cancel()
			err = <-done
			took = time.Since(start)
		})
		return took, err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// A subscriber that stopped reading does not hold the shutdown: its write under way
// ends when the server stops. It held Serve until the write's deadline, RequestTimeout
// (30 s) after the write began, with a deadline at every write.
func TestShutdownEndsAStalledSubscriber(t *testing.T) {
	store := openStore(t)
	srv := New(store, Options{Logger: quiet()})
	ln := newStallingListener(t)
	stop := serveOn(t, srv, ln, time.Minute)
	sub := openSSE(t, "http://"+ln.Addr().String()+"/v1/subscribe", "")
	sub.next(t) // the retry line: subscribed

	ln.stall.Store(true)
	if _, err := store.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "Live"}); err != nil {
		t.Fatal(err)
	}
	ln.waitStalled(t)

	took, err := stop()
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if took > 10*time.Second {
		t.Fatalf("Serve took %s to stop with a subscriber that stopped reading", took)
	}
}

// A subscription a follower relays from its leader (?consistency=leader, as a client
// made WithLeaderReads asks) is held to the limits of the follower's own: a client
// that stops reading is cut once a write has waited RequestTimeout, and the relay ends
// when the follower stops. The relay wrote without a deadline, so such a client held
// it, its goroutine and its connections to the client and to the leader for ever, and
// a follower shutting down waited for every relayed subscription until its grace ran
// out.
func TestRelayedSubscriptionEnds(t *testing.T) {
	// The leader sends a heartbeat a millisecond until the relay hangs up.
	hungUp := make(chan struct{}, 1)
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		fmt.Fprint(w, "retry: 1000\n\n")
		for {
			if err := rc.Flush(); err != nil {
				break
			}
			select {
			case <-r.Context().Done():
			case <-time.After(time.Millisecond):
				fmt.Fprint(w, ": heartbeat\n\n")
				continue
			}
			break
		}
		hungUp <- struct{}{}
	}))
	defer leader.Close()
	node := follower{leader: strings.TrimPrefix(leader.URL, "http://")}

	t.Run("client stops reading", func(t *testing.T) {
		srv := New(openStore(t), Options{Logger: quiet(), Node: node, RequestTimeout: 200 * time.Millisecond})
		ln := newStallingListener(t)
		serveOn(t, srv, ln, time.Minute)
		sub := openSSE(t, "http://"+ln.Addr().String()+"/v1/subscribe?consistency=leader", "")
		sub.next(t) // the leader's retry line, relayed
		ln.stall.Store(true)
		ln.waitStalled(t)
		select {
		case <-hungUp:
		case <-time.After(30 * time.Second):
			t.Fatal("the relay to a client that stopped reading did not end within 30s (RequestTimeout is 200ms)")
		}
	})

	t.Run("follower stops", func(t *testing.T) {
		srv := New(openStore(t), Options{Logger: quiet(), Node: node})
		ln := newStallingListener(t)
		stop := serveOn(t, srv, ln, time.Minute)
		sub := openSSE(t, "http://"+ln.Addr().String()+"/v1/subscribe?consistency=leader", "")
		sub.next(t)

		took, err := stop()
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if took > 10*time.Second {
			t.Fatalf("Serve took %s to stop while relaying a subscription", took)
		}
		sub.waitEnd(t)
		<-hungUp
	})
}
