package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// joining is a Node whose joins fail with err.
type joining struct {
	follower
	err error
}

func (j joining) Join(context.Context, string, string) error { return j.err }

// TestJoinRefused: a join the cluster refuses as it stands (ErrConflict: the node's pmd
// applies older rules than the cluster's log) answers 409 conflict with the refusal's
// text; one that fails otherwise (no leader) answers 503 unavailable.
func TestJoinRefused(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"rules too old", fmt.Errorf("%w: node n4's pmd applies rules up to version 1", ErrConflict), http.StatusConflict, codeConflict},
		{"no leader", errors.New("cluster: no leader"), http.StatusServiceUnavailable, codeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(New(store, Options{Logger: quiet(), Node: joining{err: tt.err}}))
			defer ts.Close()
			resp, err := http.Post(ts.URL+"/v1/cluster/nodes", "application/json", strings.NewReader(`{"id":"n4","raft_addr":"127.0.0.1:7084"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error, Message string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || body.Error != tt.code || !strings.Contains(body.Message, "join n4: "+tt.err.Error()) {
				t.Fatalf("%d %+v, want %d %s with the error", resp.StatusCode, body, tt.status, tt.code)
			}
		})
	}
}
