package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// A write a subscription begins just as the server stops does not push back the
// deadline the stop gave it. The handler gave the write RequestTimeout after the stop
// had cut its deadline, then saw the stop and returned: net/http then wrote the
// response's last chunk under that deadline, and a client that had stopped reading held
// Shutdown RequestTimeout.
func TestStopDuringAWriteKeepsTheStopDeadline(t *testing.T) {
	store := openStore(t)
	srv := New(store, Options{Logger: quiet(), RequestTimeout: 20 * time.Second})
	ln := newStallingListener(t)
	stop := serveOn(t, srv, ln, time.Minute)
	stopped := make(chan time.Duration, 1)
	var armed atomic.Bool
	stopSet := make(chan struct{}, 1)
	ln.onWriteDeadline = func(d time.Time) {
		if time.Until(d) < 10*time.Second {
			// The stop's deadline (or the handler putting it back).
			select {
			case stopSet <- struct{}{}:
			default:
			}
			return
		}
		if !armed.CompareAndSwap(true, false) {
			return
		}
		// The handler gives its write RequestTimeout: the server stops, and the
		// stop sets its deadline before the handler's takes effect.
		go func() {
			took, _ := stop()
			stopped <- took
		}()
		select {
		case <-stopSet:
		case <-time.After(time.Minute):
			t.Error("the stop set no write deadline within a minute")
		}
	}
	sub := openSSE(t, "http://"+ln.Addr().String()+"/v1/subscribe", "")
	sub.next(t) // the retry line: subscribed

	ln.stall.Store(true) // the client stops reading
	armed.Store(true)
	if _, err := store.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "Live"}); err != nil {
		t.Fatal(err)
	}
	if took := <-stopped; took > 10*time.Second {
		t.Fatalf("Serve took %s to stop: the write begun at the stop had its deadline pushed back to RequestTimeout", took)
	}
}

// A subscriber still reading when the server stops is told why its stream ends, an
// "unavailable" error event, and the stream ends cleanly: it ended mid-stream, an
// unexpected EOF, with nothing said, where the clients' docs promise unavailable. So
// does a subscription a follower relays when the follower stops.
func TestStopTellsSubscribersWhy(t *testing.T) {
	leader := func(t *testing.T) string {
		store := openStore(t)
		srv := New(store, Options{Logger: quiet()})
		ln := listen(t)
		serveOn(t, srv, ln, time.Minute)
		return ln.Addr().String()
	}
	for _, tc := range []struct {
		name string
		node func(t *testing.T) Node
		path string
	}{
		{"own", func(*testing.T) Node { return nil }, "/v1/subscribe"},
		{"relayed", func(t *testing.T) Node { return follower{leader: leader(t)} }, "/v1/subscribe?consistency=leader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := New(openStore(t), Options{Logger: quiet(), Node: tc.node(t)})
			ln := listen(t)
			stop := serveOn(t, srv, ln, time.Minute)
			resp, err := http.Get("http://" + ln.Addr().String() + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); err != nil || line != "retry: 1000\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			rest := make(chan []byte, 1)
			readErr := make(chan error, 1)
			go func() {
				b, err := io.ReadAll(br)
				rest <- b
				readErr <- err
			}()
			took, err := stop()
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if took > 10*time.Second {
				t.Fatalf("Serve took %s", took)
			}
			b := <-rest
			if err := <-readErr; err != nil {
				t.Fatalf("the stream ended with %v after %q, not cleanly", err, b)
			}
			i := bytes.Index(b, []byte("event: error\ndata: "))
			if i < 0 || !bytes.HasSuffix(b, []byte("\n\n")) {
				t.Fatalf("the stream ended with %q, not an error event", b)
			}
			var body errorBody
			if err := json.Unmarshal(bytes.TrimSpace(b[i+len("event: error\ndata: "):]), &body); err != nil {
				t.Fatalf("error event %q: %v", b[i:], err)
			}
			if body.Error != "unavailable" || !strings.Contains(body.Message, "shutting down") || !strings.Contains(body.Message, "Last-Event-ID") {
				t.Fatalf("error event %+v, want unavailable: shutting down, reconnect with Last-Event-ID", body)
			}
		})
	}
}

// waitingForLeader is a follower that knows no leader: LeaderHTTP waits until its
// context ends.
type waitingForLeader struct {
	follower
	waiting chan struct{}
}

func (n waitingForLeader) LeaderHTTP(ctx context.Context, _ time.Duration) (string, error) {
	n.waiting <- struct{}{}
	<-ctx.Done()
	return "", &pmd.UnavailableError{Cause: context.Cause(ctx)}
}

// A subscription a follower would relay, waiting for a leader when the follower stops,
// is answered 503 unavailable, "shutting down", logged as a refusal at the shutdown:
// the cancelled wait was logged at ERROR as a failed request, and the client, whose
// write deadline the stop had cut already, got no answer at all.
func TestStopWhileARelayWaitsForALeader(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(b)
	}), nil))
	node := waitingForLeader{waiting: make(chan struct{}, 1)}
	srv := New(openStore(t), Options{Logger: logger, Node: node})
	ln := listen(t)
	stop := serveOn(t, srv, ln, time.Minute)
	type answer struct {
		status int
		body   []byte
		err    error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/v1/subscribe?consistency=leader")
		if err != nil {
			got <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- answer{resp.StatusCode, b, err}
	}()
	<-node.waiting
	if _, err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	a := <-got
	if a.err != nil || a.status != http.StatusServiceUnavailable || !bytes.Contains(a.body, []byte(`"error":"unavailable"`)) || !bytes.Contains(a.body, []byte("shutting down")) {
		t.Errorf("the client got %d %q, %v; want 503 unavailable, shutting down", a.status, a.body, a.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the stop was logged as an error:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
