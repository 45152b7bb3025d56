package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHealthzOtherMethodsNeedNoToken: /healthz needs no token (CONTRACT section 10), so
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
