package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestMetricsIndexOverlays: /metrics reports the index's overlays, its newest entries in
// memory, and the failed hand-offs of them to disk.
func TestMetricsIndexOverlays(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("GET", "/metrics", nil).must(t, http.StatusOK)
	for _, want := range []string{"\npmd_index_overlay_entries ", "\npmd_index_overlays_frozen 0\n", "\npmd_index_overlay_bytes ", "\npmd_index_handoff_failures_total 0\n"} {
		if !strings.Contains(string(r.raw), want) {
			t.Errorf("/metrics lacks %q:\n%s", strings.TrimSpace(want), r.raw)
		}
	}
}
