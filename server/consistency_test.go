package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
)

// leaderStub is a Node that leads, has applied the Raft index applied, and whose
// ReadBarrier returns barrier, counting its calls.
type leaderStub struct {
	follower
	applied  uint64
	barrier  error
	barriers atomic.Int32
}

func (*leaderStub) IsLeader() bool         { return true }
func (l *leaderStub) AppliedIndex() uint64 { return l.applied }
func (l *leaderStub) ReadBarrier(context.Context) error {
	l.barriers.Add(1)
	return l.barrier
}

// fakeLeader is a Server on a store of its own, led by a leaderStub that has applied
// index applied, for a follower to forward to. It records each request it is asked
// ("GET /v1/all?consistency=leader"), and it stamps Pmd-Applied-Index on every answer,
// errors too, which a real leader does not: a follower must heed it on a success only.
type fakeLeader struct {
	ts    *httptest.Server
	asked chan string
}

func newFakeLeader(t *testing.T, applied uint64) *fakeLeader {
	t.Helper()
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(store, Options{Logger: quiet(), Node: &leaderStub{applied: applied}})
	l := &fakeLeader{asked: make(chan string, 64)}
	l.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.asked <- r.Method + " " + r.URL.RequestURI()
		w.Header().Set(headerApplied, strconv.FormatUint(applied, 10))
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		l.ts.Close()
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// host is the leader's HTTP address, as Node.LeaderHTTP returns it.
func (l *fakeLeader) host() string { return strings.TrimPrefix(l.ts.URL, "http://") }

// took returns what the leader was asked since the last call. A request is recorded
// before it is answered, so every request whose answer was read is there.
func (l *fakeLeader) took() []string {
	var asked []string
	for len(l.asked) > 0 {
		asked = append(asked, <-l.asked)
	}
	return asked
}

// TestAppliedIndexHeader pins which answers carry Pmd-Applied-Index (docs/api.md,
// "Cluster"): the successes a node's handler gives itself, with the index that node had
// applied, and /healthz's 503 degraded, which its handler writes too. Errors carry none,
// and neither does a follower's relay of the leader's answer: the leader's index is not
// what the follower has applied, and the follower adds none of its own.
func TestAppliedIndexHeader(t *testing.T) {
	e := newEnv(t, Options{Node: &leaderStub{applied: 7}})
	event := map[string]any{"events": []any{map[string]any{"type": "OrderPlaced", "data": map[string]any{}}}}
	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		applied      string // "" for no header
	}{
		{"append", "POST", "/v1/streams/Order$1", event, http.StatusCreated, "7"},
		{"read", "GET", "/v1/streams/Order$1", nil, http.StatusOK, "7"},
		{"delete", "DELETE", "/v1/streams/Gone$1", nil, http.StatusNoContent, "7"},
		{"wrong expected version", "POST", "/v1/streams/Order$1?expected_version=no_stream", event, http.StatusConflict, ""},
		{"stream not found", "GET", "/v1/streams/Missing$1", nil, http.StatusNotFound, ""},
		{"bad request", "POST", "/v1/streams/Order$1", `{"events":[]}`, http.StatusBadRequest, ""},
	}
	e.do("POST", "/v1/streams/Gone$1", event).must(t, http.StatusCreated)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.body).must(t, tt.status)
			if got := strings.Join(r.header.Values(headerApplied), ","); got != tt.applied {
				t.Fatalf("%s %s: %d with %s %q, want %q", tt.method, tt.path, r.status, headerApplied, got, tt.applied)
			}
		})
	}

	t.Run("healthz degraded", func(t *testing.T) {
		r := newEnv(t, Options{Node: removed{}}).do("GET", "/healthz", nil).must(t, http.StatusServiceUnavailable)
		if got := strings.Join(r.header.Values(headerApplied), ","); got != "0" {
			t.Fatalf("GET /healthz of a removed node: 503 with %s %q, want \"0\"", headerApplied, got)
		}
	})

	t.Run("relayed by a follower", func(t *testing.T) {
		lead := newFakeLeader(t, 9)
		f := newEnv(t, Options{Node: follower{lead.host()}})
		r := f.do("POST", "/v1/streams/Order$1", event).must(t, http.StatusCreated)
		if asked := lead.took(); len(asked) != 1 {
			t.Fatalf("the leader was asked %q, want the one POST", asked)
		}
		if got := r.header.Values(headerApplied); len(got) != 0 {
			t.Fatalf("the follower's relay of the leader's 201 carries %s %q, want none", headerApplied, got)
		}
	})
}

// floorFollower is a follower that has applied index 5 and records the indexes its
// reads wait for (Node.WaitApplied).
type floorFollower struct {
	follower
	mu    sync.Mutex
	waits []uint64
}

func (*floorFollower) AppliedIndex() uint64 { return 5 }

func (f *floorFollower) WaitApplied(_ context.Context, index uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, index)
	return nil
}

func (f *floorFollower) waited() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.waits)
}

// TestForwardRaisesReadFloor: a write a follower forwarded and the leader took raises the
// follower's read floor to the index the leader had applied, so that its next read of
// its own copy waits until it holds the write; a write the leader refused raises
// nothing, though the answer names an index.
func TestForwardRaisesReadFloor(t *testing.T) {
	lead := newFakeLeader(t, 9)
	f := &floorFollower{follower: follower{lead.host()}}
	e := newEnv(t, Options{Node: f})
	event := map[string]any{"events": []any{map[string]any{"type": "OrderPlaced", "data": map[string]any{}}}}

	e.do("POST", "/v1/streams/Order$1?expected_version=3", event).mustError(t, http.StatusConflict, codeWrongExpected)
	e.do("GET", "/v1/all", nil).must(t, http.StatusOK)
	if w := f.waited(); len(w) != 0 {
		t.Fatalf("after a write the leader refused, a read waited for index %v; want no wait", w)
	}

	e.do("POST", "/v1/streams/Order$1", event).must(t, http.StatusCreated)
	e.do("GET", "/v1/all", nil).must(t, http.StatusOK)
	if w := f.waited(); !slices.Equal(w, []uint64{9}) {
		t.Fatalf("after a write the leader took at index 9, reads waited for %v; want [9]", w)
	}
	want := []string{"POST /v1/streams/Order$1?expected_version=3", "POST /v1/streams/Order$1"}
	if asked := lead.took(); !slices.Equal(asked, want) {
		t.Fatalf("the leader was asked %q, want %q: reads are the follower's own", asked, want)
	}
}

// TestConsistencyParam: ?consistency=leader sends a follower's read to the leader, which
// gets it with consistency=leader; local and the default read the follower's own copy;
// anything else is a bad request. On the leader, consistency=leader first passes a read
// barrier, whose failure is 503 unavailable.
func TestConsistencyParam(t *testing.T) {
	errLost := errors.New("leadership lost while committing log")
	tests := []struct {
		name    string
		leads   bool  // the node leads; otherwise it follows the fake leader
		barrier error // what the leader's ReadBarrier returns
		query   string
		status  int
		code    string   // the error code, for an error
		asked   []string // what the fake leader was asked
		passed  int32    // read barriers the leader passed through
	}{
		{name: "leader on a follower", query: "?limit=5&consistency=leader", status: http.StatusOK,
			asked: []string{"GET /v1/all?consistency=leader&limit=5"}},
		{name: "local on a follower", query: "?consistency=local&limit=5", status: http.StatusOK},
		{name: "default on a follower", query: "?limit=5", status: http.StatusOK},
		{name: "bogus on a follower", query: "?consistency=bogus", status: http.StatusBadRequest, code: codeBadRequest},
		{name: "twice on a follower", query: "?consistency=leader&consistency=leader", status: http.StatusBadRequest, code: codeBadRequest},
		{name: "leader on the leader", leads: true, query: "?consistency=leader", status: http.StatusOK, passed: 1},
		{name: "local on the leader", leads: true, query: "?consistency=local", status: http.StatusOK},
		{name: "leader on a leader whose barrier fails", leads: true, barrier: errLost, query: "?consistency=leader",
			status: http.StatusServiceUnavailable, code: codeUnavailable, passed: 1},
		{name: "bogus on the leader", leads: true, query: "?consistency=bogus", status: http.StatusBadRequest, code: codeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lead := newFakeLeader(t, 9)
			var node Node = follower{lead.host()}
			stub := &leaderStub{follower: follower{lead.host()}, barrier: tt.barrier}
			if tt.leads {
				node = stub
			}
			r := newEnv(t, Options{Node: node}).do("GET", "/v1/all"+tt.query, nil)
			if tt.code != "" {
				r.mustError(t, tt.status, tt.code)
			} else {
				r.must(t, tt.status)
			}
			if tt.barrier != nil && !strings.Contains(fmt.Sprint(r.body["message"]), tt.barrier.Error()) {
				t.Errorf("the message %q does not say why: %v", r.body["message"], tt.barrier)
			}
			if asked := lead.took(); !slices.Equal(asked, tt.asked) {
				t.Errorf("the leader was asked %q, want %q", asked, tt.asked)
			}
			if n := stub.barriers.Load(); n != tt.passed {
				t.Errorf("%d read barriers, want %d", n, tt.passed)
			}
		})
	}
}
