package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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
