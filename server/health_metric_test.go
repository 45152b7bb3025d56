package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestHealthProblemsMetric: pmd_health_problems counts the problems /healthz lists, so
// that an alert on /metrics sees every degraded state, not only those with a metric of
// their own (a damaged index, writes stopped until a restart and a removed cluster node
// had none).
func TestHealthProblemsMetric(t *testing.T) {
	for _, tt := range []struct {
		name string
		node Node
		want string
	}{
		{"healthy", nil, "\npmd_health_problems 0\n"},
		{"removed", removed{}, "\npmd_health_problems 1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Node: tt.node})
			m := string(e.do("GET", "/metrics", nil).must(t, http.StatusOK).raw)
			if !strings.Contains(m, tt.want) {
				t.Errorf("/metrics lacks %q", strings.TrimSpace(tt.want))
			}
		})
	}
}
