package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTailWithoutTokenSaysOnlyThat: a daemon with auth on answers /healthz without a
// token and refuses the rest; tail fails with the auth error (exit 1) and never says it
// is following, whichever way it finds where to start.
func TestTailWithoutTokenSaysOnlyThat(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/healthz" {
			io.WriteString(w, `{"status":"ok","last_position":7}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"unauthorized","message":"this pmd needs a token: send Authorization: Bearer <token>"}`)
	}))
	defer ts.Close()
	t.Setenv("PMD_TOKEN", "")
	tests := []struct {
		name string
		args []string
	}{
		{"the global log from the end", nil},
		{"the global log from a position", []string{"--from", "1"}},
		{"a stream from the end", []string{"--stream", "Order$1"}},
		{"a stream from a version", []string{"--stream", "Order$1", "--from", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			code, out, errOut := runPMD(t, ctx, append([]string{"tail", "--addr", ts.URL}, tt.args...)...)
			if code != exitFailed || out != "" || strings.Contains(errOut, "following") || !strings.Contains(errOut, "unauthorized") {
				t.Fatalf("exit %d, want %d; stdout %q; stderr %q", code, exitFailed, out, errOut)
			}
		})
	}
}
