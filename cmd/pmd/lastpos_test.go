package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLastPositionOfADegradedStore: pmd tail starts after the end of the log even when the
// store is degraded, whose /healthz answers 503 with its last position; a daemon shutting
// down (503 unavailable) is still an error.
func TestLastPositionOfADegradedStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   uint64
		ok     bool
	}{
		{"healthy", http.StatusOK, `{"status":"ok","last_position":41}`, 41, true},
		{"degraded", http.StatusServiceUnavailable, `{"status":"degraded","problems":["damaged"],"last_position":42}`, 42, true},
		{"shutting down", http.StatusServiceUnavailable, `{"error":"unavailable","message":"the server is shutting down"}`, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			got, err := newClient(ts.URL, false).lastPosition(context.Background())
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("lastPosition = %d, %v; want %d, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}
