package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
)

// members is a Node whose joins and removals fail with err, counting the calls.
type members struct {
	follower
	err   error
	calls *atomic.Int32
}

func (m members) Join(context.Context, string, string) error { m.calls.Add(1); return m.err }
func (m members) Remove(context.Context, string) error       { m.calls.Add(1); return m.err }

// answer sends method path with body to a server on store whose node is m, and returns
// the status and the error code of the answer ("" for none).
func (m members) answer(t *testing.T, store *pmd.Store, method, path, body string) (int, string, string) {
	t.Helper()
	ts := httptest.NewServer(New(store, Options{Logger: quiet(), Node: m}))
	defer ts.Close()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct{ Error, Message string }
	if resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, b.Error, b.Message
}

// TestJoinChecksRaftAddr: a join's raft_addr must be HOST:PORT: anything else is 400
// bad_request naming it, and the cluster is not asked (the leader added "garbage" as a
// voter nobody could dial, which cost the cluster its quorum at the next failure).
func TestJoinChecksRaftAddr(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"garbage", false},
		{"127.0.0.1", false},
		{":7081", false},
		{"127.0.0.1:", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:65536", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:7081", true},
		{"pmd-3.internal:7081", true},
		{"[::1]:7081", true},
	} {
		m := members{calls: new(atomic.Int32)}
		status, code, msg := m.answer(t, store, http.MethodPost, "/v1/cluster/nodes", fmt.Sprintf(`{"id":"n4","raft_addr":%q}`, tt.addr))
		switch {
		case tt.ok && (status != http.StatusNoContent || m.calls.Load() != 1):
			t.Errorf("raft_addr %q: %d %s %s, %d joins asked; want 204 and one", tt.addr, status, code, msg, m.calls.Load())
		case !tt.ok && (status != http.StatusBadRequest || code != codeBadRequest || !strings.Contains(msg, fmt.Sprintf("raft_addr %q", tt.addr)) || m.calls.Load() != 0):
			t.Errorf("raft_addr %q: %d %s %q, %d joins asked; want 400 bad_request naming it, and none", tt.addr, status, code, msg, m.calls.Load())
		}
	}
}

// TestRemoveRefused: the removal of an id that is no member is 404 not_found (it
// answered 204, and appended a configuration entry); one the cluster refuses as it
// stands (its last voter) is 409 conflict; one that fails otherwise (no leader) is 503
// unavailable. Each names the error.
func TestRemoveRefused(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: n9 is not a member of the cluster", ErrNotFound), http.StatusNotFound, codeNotFound},
		{fmt.Errorf("%w: n1 is the cluster's last voter", ErrConflict), http.StatusConflict, codeConflict},
		{errors.New("cluster: no leader"), http.StatusServiceUnavailable, codeUnavailable},
	} {
		m := members{err: tt.err, calls: new(atomic.Int32)}
		status, code, msg := m.answer(t, store, http.MethodDelete, "/v1/cluster/nodes/n9", "")
		if status != tt.status || code != tt.code || !strings.Contains(msg, "remove n9: "+tt.err.Error()) {
			t.Errorf("%v: %d %s %q, want %d %s with the error", tt.err, status, code, msg, tt.status, tt.code)
		}
	}
}
