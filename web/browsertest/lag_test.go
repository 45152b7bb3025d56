package browsertest

import (
	"encoding/json"
	"io"
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
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/stats" && r.URL.Path != "/v1/processes" {
			return false
		}
		res, err := http.Get(d.base + r.URL.RequestURI())
		if err != nil {
			t.Error(err)
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("GET %s: %s: %v", r.URL, b, err)
			return false
		}
		for _, list := range []string{"processes", "subscriptions"} {
			items, _ := body[list].([]any)
			for _, item := range items {
				item.(map[string]any)["lag"] = nil
			}
		}
		answer(w, res.StatusCode, body)
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })

	unknown := `(cells => cells.length > 0 && cells.every(c => c.innerText === 'unknown' && c.classList.contains('warn') && c.title.includes('could not be read')))`
	b.open(t, "#/processes", "processes")
	b.poll(t, unknown+`([...document.querySelectorAll('tr[data-manager] td.lag')])`)
	b.open(t, "#/", "dashboard")
	b.poll(t, unknown+`([...document.querySelectorAll('#managers td.lag')])`)
	b.poll(t, unknown+`([...document.querySelectorAll('#subscriptions td.lag')])`)
}
