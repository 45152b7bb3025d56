package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestErrorBodySaysNeedsRestart: a write refused because the store stopped writing
// until a restart answers 503 unavailable as a full disk does, and says needs_restart,
// so that a client that waits out a full disk can tell the one it must not wait for
// (pmd.ErrNeedsRestart).
func TestErrorBodySaysNeedsRestart(t *testing.T) {
	srv := New(openStore(t), Options{Logger: quiet()})
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"full disk", &pmd.UnavailableError{Cause: errors.New("no space left on device")}, false},
		{"writes stopped", &pmd.UnavailableError{Cause: errors.New("index: apply failed"), NeedsRestart: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			srv.writeError(&statusRecorder{ResponseWriter: rec, status: http.StatusOK}, httptest.NewRequest("POST", "/v1/streams/s", nil), tt.err)
			var b map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
				t.Fatalf("%v: %s", err, rec.Body)
			}
			got, present := b["needs_restart"]
			if rec.Code != http.StatusServiceUnavailable || b["error"] != "unavailable" || present != tt.want || tt.want && got != true {
				t.Fatalf("answer %d %s, want 503 unavailable with needs_restart %v", rec.Code, rec.Body, tt.want)
			}
		})
	}
}
