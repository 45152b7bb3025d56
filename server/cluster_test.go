package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// follower is a Node that never leads and names leader as the leader.
type follower struct{ leader string }

func (f follower) IsLeader() bool { return false }
func (f follower) LeaderHTTP(context.Context, time.Duration) (string, error) {
	return f.leader, nil
}
func (follower) AppliedIndex() uint64                       { return 0 }
func (follower) WaitApplied(context.Context, uint64) error  { return nil }
func (follower) ReadBarrier(context.Context) error          { return nil }
func (follower) Join(context.Context, string, string) error { return nil }
func (follower) Remove(context.Context, string) error       { return nil }
func (follower) Problems() []string                         { return nil }
func (follower) LeaderKnown() error                         { return nil }

// removed is a Node the leader removed from the cluster.
type removed struct{ follower }

var errRemoved = errors.New("cluster: this node was removed from the cluster")

func (removed) LeaderHTTP(context.Context, time.Duration) (string, error) { return "", errRemoved }
func (removed) Problems() []string                                        { return []string{errRemoved.Error()} }

// TestRemovedNode: a node removed from its cluster says so on /healthz and on the stats
// route, refuses writes naming why, and still answers reads of its own copy.
func TestRemovedNode(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "OrderPlaced"}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(store, Options{Logger: quiet(), Node: removed{}}))
	defer ts.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get("/healthz"); st != http.StatusServiceUnavailable || !strings.Contains(body, `"degraded"`) || !strings.Contains(body, errRemoved.Error()) {
		t.Errorf("GET /healthz: %d %s, want 503 degraded naming the removal", st, body)
	}
	if st, body := get("/v1/stats"); st != http.StatusOK || !strings.Contains(body, errRemoved.Error()) {
		t.Errorf("GET /v1/stats: %d %s, want the removal among the problems", st, body)
	}
	if st, body := get("/v1/streams/Order$1"); st != http.StatusOK || !strings.Contains(body, "OrderPlaced") {
		t.Errorf("GET the stream: %d %s, want its event", st, body)
	}
	resp, err := http.Post(ts.URL+"/v1/streams/Order$1", "application/json", strings.NewReader(`{"events":[{"type":"OrderPlaced","data":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), errRemoved.Error()) {
		t.Errorf("POST: %d %s, want 503 naming the removal", resp.StatusCode, b)
	}
	if last := store.LastPosition(); last != 1 {
		t.Errorf("the removed node's store ends at %d, want 1", last)
	}
}

// TestForwardTLS forwards a write from a follower served over HTTPS to a leader whose
// certificate only a private CA vouches for: with the CA in ForwardTLS the leader answers;
// without it the follower says why it cannot reach the leader.
func TestForwardTLS(t *testing.T) {
	seen := make(chan string, 10) // what the leader was asked
	leader := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Method + " " + r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"from_leader":true}`)
	}))
	leader.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	leader.StartTLS()
	defer leader.Close()
	leaderURL, err := url.Parse(leader.URL)
	if err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	ca.AddCert(leader.Certificate())

	tests := []struct {
		name       string
		forwardTLS *tls.Config
		status     int
		body       string
	}{
		{"private CA trusted", &tls.Config{RootCAs: ca}, http.StatusCreated, `"from_leader":true`},
		{"system roots only", nil, http.StatusServiceUnavailable, "forwarding to the leader at " + leaderURL.Host},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ts := httptest.NewTLSServer(New(store, Options{Logger: quiet(), Node: follower{leaderURL.Host}, ForwardTLS: tt.forwardTLS}))
			defer ts.Close()
			resp, err := ts.Client().Post(ts.URL+"/v1/streams/Order$1", "application/json",
				strings.NewReader(`{"events":[{"type":"OrderPlaced","data":{}}]}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.body) {
				t.Fatalf("POST through the follower: %d %s, want %d with %q", resp.StatusCode, b, tt.status, tt.body)
			}
			var asked []string
			for len(seen) > 0 {
				asked = append(asked, <-seen)
			}
			want := 0
			if tt.status == http.StatusCreated {
				want = 1
			}
			if len(asked) != want || want == 1 && asked[0] != "POST /v1/streams/Order$1" {
				t.Fatalf("the leader was asked %q, want %d POST", asked, want)
			}
			if !json.Valid(b) {
				t.Fatalf("answer is not JSON: %s", b)
			}
			if last := store.LastPosition(); last != 0 {
				t.Fatalf("the follower wrote to its own store, up to position %d", last)
			}
		})
	}
}

// remover is a Node that records the ids it is asked to remove.
type remover struct {
	follower
	mu  *sync.Mutex
	ids *[]string
}

func (n remover) Remove(_ context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	*n.ids = append(*n.ids, id)
	return nil
}

// TestRemoveNodeTakesNoBody: DELETE /v1/cluster/nodes/{id} with a body is refused and
// removes nothing: a client that sends one means something by it.
func TestRemoveNodeTakesNoBody(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	e := newEnv(t, Options{Node: remover{mu: &mu, ids: &ids}})
	e.do("DELETE", "/v1/cluster/nodes/n2", `{"id":"n3"}`).mustError(t, http.StatusBadRequest, "bad_request")
	e.do("DELETE", "/v1/cluster/nodes/n2", nil).must(t, http.StatusNoContent)
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 1 || ids[0] != "n2" {
		t.Fatalf("removed %q, want only n2, once", ids)
	}
}
