package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestUnavailableNeedsRestart: the daemon's needs_restart makes the client's error match
// pmd.ErrNeedsRestart as well as pmd.ErrUnavailable, as the store's own error does, so
// that code that waits out a full disk and gives up on a stopped store works with both.
func TestUnavailableNeedsRestart(t *testing.T) {
	for _, tt := range []struct {
		name, body   string
		needsRestart bool
	}{
		{"full disk", `{"error":"unavailable","message":"store unavailable: no space left on device"}`, false},
		{"writes stopped", `{"error":"unavailable","message":"store unavailable: writes stopped until a restart","needs_restart":true}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, tt.body)
			}))
			defer ts.Close()
			c, err := New(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "E"})
			if !errors.Is(err, pmd.ErrUnavailable) || errors.Is(err, pmd.ErrNeedsRestart) != tt.needsRestart {
				t.Fatalf("Append: %v; want it to match ErrUnavailable, and ErrNeedsRestart: %v", err, tt.needsRestart)
			}
		})
	}
}
