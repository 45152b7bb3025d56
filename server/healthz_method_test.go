package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHealthzOtherMethodsNeedNoToken: /healthz needs no token (docs/api.md, "Health"), so
// another method on it is answered 405 with what it takes, as without --auth, not 401
// asking for a token that would not help.
func TestHealthzOtherMethodsNeedNoToken(t *testing.T) {
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	call := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, e.ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Not e.ts.Client(): the OpenAPI document lists no other method of /metrics.
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, method := range []string{"POST", "PUT", "DELETE"} {
		if status, body := call(method, "/healthz"); status != 405 || !strings.Contains(body, "use GET") {
			t.Errorf("%s /healthz without a token: status %d, want 405: %s", method, status, body)
		}
	}
	// The other paths still ask for a token first.
	if status, body := call("PUT", "/metrics"); status != 401 {
		t.Errorf("PUT /metrics without a token: status %d, want 401: %s", status, body)
	}
}

// TestUncleanOpenPathsNeedNoToken: with tokens, an unclean path to a route that needs no
// token (//healthz) is answered as without tokens, 404 naming the clean path, not 401
// asking for a token that would not help; other unclean paths still ask for one.
func TestUncleanOpenPathsNeedNoToken(t *testing.T) {
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	for _, tt := range []struct {
		path   string
		status int
		want   string
	}{
		{"//healthz", http.StatusNotFound, `such as \"/healthz\"`},
		{"/x/../healthz", http.StatusNotFound, `such as \"/healthz\"`},
		{"/v1/./healthz", http.StatusUnauthorized, "unauthorized"},
		{"//metrics", http.StatusUnauthorized, "unauthorized"},
		{"//v1/streams/s", http.StatusUnauthorized, "unauthorized"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(e.ts.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
				t.Fatalf("GET %s without a token: %d %s, want %d with %s", tt.path, resp.StatusCode, body, tt.status, tt.want)
			}
		})
	}
}
