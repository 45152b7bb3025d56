package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestFallbacksAnsweredLocally: on a cluster node, the fallbacks (an unclean path, an
// unknown route, a method a known path does not take) are answered by the node itself:
// their 404 or 405 depends on no data, so they are not forwarded to the leader, and a node
// without a leader (removed, or during an election) does not answer 503 unavailable for
// them, nor report itself unavailable on //healthz.
func TestFallbacksAnsweredLocally(t *testing.T) {
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "//healthz", http.StatusNotFound, codeNotFound},
		{"GET", "/v1", http.StatusNotFound, codeNotFound},
		{"GET", "//v1/streams/s", http.StatusNotFound, codeNotFound},
		{"POST", "/v1/streams/./s", http.StatusNotFound, codeNotFound},
		{"GET", "/v1/streams/s/.?consistency=leader", http.StatusNotFound, codeNotFound},
		{"GET", "/v1/nosuch", http.StatusNotFound, codeNotFound},
		{"POST", "/v1/nosuch", http.StatusNotFound, codeNotFound},
		{"GET", "/v1/nosuch?consistency=leader", http.StatusNotFound, codeNotFound},
		{"PUT", "/v1/streams/s", http.StatusMethodNotAllowed, codeMethodNotAllowed},
		{"PATCH", "/v1/?consistency=leader", http.StatusMethodNotAllowed, codeMethodNotAllowed},
	}
	lead := newFakeLeader(t, 3)
	nodes := []struct {
		name string
		node Node
	}{
		{"single", nil},
		{"removed", removed{}},
		{"follower", follower{lead.host()}},
	}
	for _, n := range nodes {
		t.Run(n.name, func(t *testing.T) {
			store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ts := httptest.NewServer(New(store, Options{Logger: quiet(), Node: n.node}))
			defer ts.Close()
			for _, tt := range tests {
				req, err := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(`{"events":[{"type":"E"}]}`))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				var got errorBody
				if resp.StatusCode != tt.status || json.Unmarshal(raw, &got) != nil || got.Error != tt.code {
					t.Errorf("%s %s: %d %s, want %d %s", tt.method, tt.path, resp.StatusCode, raw, tt.status, tt.code)
				}
			}
			if asked := lead.took(); len(asked) != 0 {
				t.Errorf("the leader was asked %q, want nothing", asked)
			}
		})
	}
}
