package browsertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// TestBrowserLagUnknown: a lag of null, which the daemon answers for a process manager or
// a subscription whose lag could not be read (a damaged index: /healthz is degraded), is
// shown as "unknown" with the warning style and a title that says why, on the process
// managers page and on the dashboard: not as an empty cell, nor as "…", which is loading.
func TestBrowserLagUnknown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(down.Close)
	d := startDaemon(t, "--config", operatorConfig(t, down.URL, down.URL))
	// The daemon's answers, with every lag of a process manager and a subscription null.
	base := frontEditing(t, d, func(body map[string]any) {
		for _, list := range []string{"processes", "subscriptions"} {
			items, _ := body[list].([]any)
			for _, item := range items {
				item.(map[string]any)["lag"] = nil
			}
		}
	}, "/v1/stats", "/v1/processes")
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })

	unknown := `(cells => cells.length > 0 && cells.every(c => c.innerText === 'unknown' && c.classList.contains('warn') && c.title.includes('could not be read')))`
	b.open(t, "#/processes", "processes")
	b.poll(t, unknown+`([...document.querySelectorAll('tr[data-manager] td.lag')])`)
	b.open(t, "#/", "dashboard")
	b.poll(t, unknown+`([...document.querySelectorAll('#managers td.lag')])`)
	b.poll(t, unknown+`([...document.querySelectorAll('#subscriptions td.lag')])`)
}
