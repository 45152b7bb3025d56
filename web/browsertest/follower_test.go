package browsertest

import (
	"os"
	"strings"
	"testing"
)

// TestBrowserFollowerDashboard: the dashboard of a cluster's follower, whose stats list
// no process manager and no subscription (they run on the leader, and a follower cannot
// say how they stand), says they run on the leader and names it, instead of telling the
// operator that the daemon runs no process manager and to start it with --config.
func TestBrowserFollowerDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t) // the catering process manager
	leader := map[string]any{"id": "n1", "http_addr": "10.0.0.1:7070", "raft_addr": "10.0.0.1:7071", "state": "leader", "applied_index": nil, "lag": nil}
	follower := map[string]any{"id": "n2", "http_addr": "10.0.0.2:7070", "raft_addr": "10.0.0.2:7071", "state": "follower", "applied_index": 9, "lag": 0}
	for _, c := range []struct {
		name, leaderID, says string
	}{
		{"with a leader", "n1", "run on the leader, n1 (10.0.0.1:7070)"},
		{"without one", "", "run on the leader, and no leader is known"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The daemon's stats as a follower answers them.
			base := frontEditing(t, d, func(body map[string]any) {
				body["processes"], body["subscriptions"] = []any{}, []any{}
				body["cluster"] = map[string]any{"node_id": "n2", "leader_id": c.leaderID, "commit_index": 9, "applied_index": 9,
					"nodes": []any{leader, follower}}
			}, "/v1/stats")
			b := newBrowser(t, base)
			t.Cleanup(func() { b.check(t) })
			b.open(t, "#/", "dashboard")
			b.poll(t, `!!document.querySelector('#cluster tr[data-node="n2"]')`)
			var text string
			b.eval(t, `document.getElementById('managers').innerText`, &text)
			if !strings.Contains(text, c.says) || strings.Contains(text, "runs no process manager") {
				t.Errorf("a follower's dashboard shows, for its process managers: %q; want it to say they %s", text, c.says)
			}
		})
	}
}
