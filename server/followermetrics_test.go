package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestFollowerMetrics: a follower's /metrics answers without process counts, where the
// leader's has them (followerProcesses: stats_test.go); that its process managers run
// elsewhere does not fail the scrape, which would lose its Raft figures with it.
func TestFollowerMetrics(t *testing.T) {
	tests := []struct {
		name   string
		procs  Processes
		counts bool
	}{
		{"leader", &fakeProcesses{}, true},
		{"follower", &followerProcesses{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newEnv(t, Options{Node: follower{}, Processes: tt.procs}).do("GET", "/metrics", nil).must(t, http.StatusOK)
			if got := strings.Contains(string(r.raw), "\npmd_processes{"); got != tt.counts {
				t.Fatalf("/metrics has pmd_processes series: %t, want %t", got, tt.counts)
			}
		})
	}
}
