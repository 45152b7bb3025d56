package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestHealthzProblemsNeedNoToken: with --auth, /healthz still needs no token, and a
// degraded store's answer carries its problems whatever the token (docs/api.md,
// "Health"): a probe or an operator without a token learns why, as docs/api.md says.
func TestHealthzProblemsNeedNoToken(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quiet()}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	// A record after the damaged one: a damaged last record is a torn write, cut at open.
	for _, mark := range []string{"MARK-DAMAGED-MARK", "MARK-AFTER-MARK"} {
		e := pmd.EventData{Type: "E", Data: map[string]any{"mark": mark}}
		if _, err := store.Append(context.Background(), "s", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, "MARK-DAMAGED-MARK")
	if store, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	<-store.Scrubbed()
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(store, Options{Logger: quiet(), Tokens: tokens}))
	t.Cleanup(func() {
		ts.Close()
		store.Close()
	})
	srv := &env{t: t, store: store, ts: ts}
	for _, token := range []string{"", "unknown", "o-secret", "r-secret", "a-secret"} {
		t.Run("token="+token, func(t *testing.T) {
			status, body := srv.call("GET", "/healthz", "", token, nil)
			if status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", status, body)
			}
			var h struct {
				Status       string    `json:"status"`
				Problems     *[]string `json:"problems"`
				LastPosition *uint64   `json:"last_position"`
			}
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if h.Status != "degraded" || h.LastPosition == nil {
				t.Fatalf("want status degraded and last_position: %s", body)
			}
			if h.Problems == nil || !strings.Contains(strings.Join(*h.Problems, " "), "corrupt") {
				t.Fatalf("want the damaged record among the problems: %s", body)
			}
		})
	}
}
