package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// leaderSequence is a follower whose LeaderHTTP names, call after call, the leaders in
// answers ("" for none known: an error, as at the end of the real wait), the last one
// again once they run out. Each call is sent on calls, when there is room.
type leaderSequence struct {
	follower
	answers []string
	n       *atomic.Int32
	calls   chan int
}

var errNoLeaderYet = errors.New("cluster: no leader within the wait")

func newLeaderSequence(answers ...string) leaderSequence {
	return leaderSequence{answers: answers, n: new(atomic.Int32), calls: make(chan int, 100)}
}

func (l leaderSequence) LeaderHTTP(context.Context, time.Duration) (string, error) {
	n := int(l.n.Add(1))
	select {
	case l.calls <- n:
	default:
	}
	a := l.answers[min(n, len(l.answers))-1]
	if a == "" {
		return "", errNoLeaderYet
	}
	return a, nil
}

// deadAddr is the address of a leader that died: nothing listens there, a dial is
// refused. Port 1, where nothing listens, rather than a port just closed, which a
// later listener (of this test or another) could take.
func deadAddr(*testing.T) string {
	return "127.0.0.1:1"
}

// asked is what a fake leader was asked: the method, the path with its query and the body.
type asked struct{ method, target, body string }

// liveLeader answers every request 201 with a JSON body, after reading the request's
// body, and sends what it was asked on the returned channel.
func liveLeader(t *testing.T) (addr string, seen chan asked) {
	t.Helper()
	seen = make(chan asked, 10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("the leader read the forwarded body: %v", err)
		}
		seen <- asked{r.Method, r.URL.RequestURI(), string(b)}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"from_leader":true}`)
	}))
	t.Cleanup(ts.Close)
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host, seen
}

// errorMessage is the message of an error answer b, or b itself if it is none.
func errorMessage(b []byte) (code, message string) {
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil {
		return "", string(b)
	}
	return e.Error, e.Message
}

const appendBody = `{"events":[{"id":"0c8b4a5e-8d4f-4b8e-9a3b-2f1d6c7e9a10","type":"OrderPlaced","data":{}}]}`

// TestForwardWaitsPastALeaderThatRefuses: right after the leader dies Raft still names it
// until the heartbeat timeout, and a follower's forward is refused at once. The follower
// asks again for the leader, within the same wait for one, and sends the request, body
// and all, to the new leader; with no leader by the end of the wait the 503 names the
// refusal. It answered 503 at the first refusal.
func TestForwardWaitsPastALeaderThatRefuses(t *testing.T) {
	dead := deadAddr(t)
	live, seen := liveLeader(t)
	tests := []struct {
		name    string
		method  string
		target  string
		body    string
		leaders []string
		status  int
		want    string // in the answer's body
		asked   string // what the live leader was asked, "" for nothing
		calls   int    // of LeaderHTTP
	}{
		{"a write, the new leader next", "POST", "/v1/streams/Order$1", appendBody,
			[]string{dead, live}, http.StatusCreated, `"from_leader":true`, "POST /v1/streams/Order$1", 2},
		{"a write, the dead leader named twice", "POST", "/v1/streams/Order$1", appendBody,
			[]string{dead, dead, live}, http.StatusCreated, `"from_leader":true`, "POST /v1/streams/Order$1", 3},
		{"a leader read", "GET", "/v1/streams/Order$1?consistency=leader", "",
			[]string{dead, live}, http.StatusCreated, `"from_leader":true`, "GET /v1/streams/Order$1?consistency=leader", 2},
		{"no leader after the refusal", "POST", "/v1/streams/Order$1", appendBody,
			[]string{dead, ""}, http.StatusServiceUnavailable, "", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newLeaderSequence(tt.leaders...)
			ts := httptest.NewServer(New(openStore(t), Options{Logger: quiet(), Node: node}))
			defer ts.Close()
			req, err := http.NewRequest(tt.method, ts.URL+tt.target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("%s %s through the follower: %d %s, want %d with %q", tt.method, tt.target, resp.StatusCode, b, tt.status, tt.want)
			}
			if tt.status == http.StatusServiceUnavailable {
				code, msg := errorMessage(b)
				if code != "unavailable" || !strings.Contains(msg, errNoLeaderYet.Error()) ||
					!strings.Contains(msg, dead) || !strings.Contains(msg, "connection refused") {
					t.Fatalf("the 503 says %s %q, want unavailable naming the wait's end and the refusal by %s", code, msg, dead)
				}
			}
			if got := int(node.n.Load()); got != tt.calls {
				t.Errorf("LeaderHTTP was called %d times, want %d", got, tt.calls)
			}
			select {
			case a := <-seen:
				if tt.asked == "" {
					t.Fatalf("the live leader was asked %+v, want nothing", a)
				}
				if got := a.method + " " + a.target; got != tt.asked || a.body != tt.body {
					t.Fatalf("the live leader was asked %s %q, want %s %q", got, a.body, tt.asked, tt.body)
				}
			default:
				if tt.asked != "" {
					t.Fatalf("the live leader was not asked, want %s", tt.asked)
				}
			}
		})
	}
}

// dyingLeader reads what a request sends of its body (all of it, or none) and dies
// without answering: the request reached it, and a write may have been applied.
func dyingLeader(t *testing.T, readBody bool) (addr string, reached chan struct{}) {
	t.Helper()
	reached = make(chan struct{}, 10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readBody {
			io.Copy(io.Discard, r.Body)
		}
		reached <- struct{}{}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // a reset, as a process that died
		conn.Close()
	}))
	t.Cleanup(ts.Close)
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host, reached
}

// TestForwardDoesNotResendAWriteThatReachedTheLeader: a forwarded write that reached the
// leader, which then died without answering, is not sent again to the next leader (it
// may have been applied, and would be applied twice): the answer is a 503 that says the
// write may have been applied.
func TestForwardDoesNotResendAWriteThatReachedTheLeader(t *testing.T) {
	for _, readBody := range []bool{true, false} {
		name := "the leader read the body"
		if !readBody {
			name = "the leader read the headers only"
		}
		t.Run(name, func(t *testing.T) {
			dying, reached := dyingLeader(t, readBody)
			live, seen := liveLeader(t)
			node := newLeaderSequence(dying, live)
			ts := httptest.NewServer(New(openStore(t), Options{Logger: quiet(), Node: node}))
			defer ts.Close()
			resp, err := http.Post(ts.URL+"/v1/streams/Order$1", "application/json", strings.NewReader(appendBody))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, msg := errorMessage(b)
			if resp.StatusCode != http.StatusServiceUnavailable || code != "unavailable" ||
				!strings.Contains(msg, dying) || !strings.Contains(msg, "may have been applied") {
				t.Fatalf("POST through the follower: %d %s, want 503 unavailable naming %s and saying the write may have been applied", resp.StatusCode, b, dying)
			}
			if len(reached) != 1 {
				t.Errorf("the dying leader was reached %d times, want once", len(reached))
			}
			select {
			case a := <-seen:
				t.Fatalf("the write was sent again, to the next leader: %+v", a)
			default:
			}
			if got := node.n.Load(); got != 1 {
				t.Errorf("LeaderHTTP was called %d times, want once", got)
			}
		})
	}
}

// TestForwardWaitEndsWithTheClient: a client that leaves while its write waits on a
// follower for a leader that does not refuse ends the wait at once, not at its end.
func TestForwardWaitEndsWithTheClient(t *testing.T) {
	node := newLeaderSequence(deadAddr(t))
	srv := New(openStore(t), Options{Logger: quiet(), Node: node})
	returned := make(chan time.Time, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		returned <- time.Now()
	}))
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/streams/Order$1", strings.NewReader(appendBody))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for n := 0; n < 2; { // at the second, the first forward was refused: the follower waits again
		select {
		case n = <-node.calls:
		case err := <-done:
			t.Fatalf("the request ended (%v) before the follower asked for the leader again", err)
		}
	}
	cancelled := time.Now()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the request was answered, want it cut by the client")
	}
	end := <-returned
	if took := end.Sub(cancelled); end.Sub(start) >= leaderWait || took > leaderWait/2 {
		t.Fatalf("the follower went on waiting %s after the client left, want it to stop at once", took)
	}
}
