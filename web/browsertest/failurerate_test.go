package browsertest

import (
	"fmt"
	"testing"
)

// TestBrowserFailureRate: the dashboard's delivery failure rate of a process manager
// says some but not all failed as neither 0% nor 100%: one failure in 2,500 attempts
// showed as 0.0% and 2,499 as 100%, read at a glance as a manager that delivers
// everything, or nothing.
func TestBrowserFailureRate(t *testing.T) {
	skipWithoutBrowser(t)
	cases := []struct {
		failures, attempts int
		want               string
	}{
		{0, 10, "0% (0 of 10)"},
		{1, 2500, "0.04% (1 of 2500)"},
		{1, 200, "0.5% (1 of 200)"},
		{1, 3, "33% (1 of 3)"},
		{199, 200, "99.5% (199 of 200)"},
		{2499, 2500, "99.96% (2499 of 2500)"},
		{10, 10, "100% (10 of 10)"},
	}
	d := startDaemon(t)
	// The daemon's stats, with a manager for each case: deliveries failing in these
	// numbers cannot be arranged in the window of a test.
	base := frontEditing(t, d, func(body map[string]any) {
		managers, _ := body["processes"].([]any)
		if len(managers) == 0 {
			return
		}
		var edited []any
		for i, c := range cases {
			m := map[string]any{}
			for k, v := range managers[0].(map[string]any) {
				m[k] = v
			}
			m["name"] = fmt.Sprintf("M%d", i)
			m["window_failures"], m["window_attempts"] = c.failures, c.attempts
			m["failure_rate"] = float64(c.failures) / float64(c.attempts)
			edited = append(edited, m)
		}
		body["processes"] = edited
	}, "/v1/stats")
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/", "dashboard")
	b.poll(t, fmt.Sprintf(`document.querySelectorAll('#managers tr[data-manager]').length === %d`, len(cases)))
	for i, c := range cases {
		var got string
		b.eval(t, fmt.Sprintf(`document.querySelector('#managers tr[data-manager="M%d"] td.failures').textContent`, i), &got)
		if got != c.want {
			t.Errorf("%d failures of %d attempts show as %q, want %q", c.failures, c.attempts, got, c.want)
		}
	}
}
