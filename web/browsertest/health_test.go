package browsertest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pmd-dev/pmd/web"
)

// TestBrowserDashboardSaysUnavailable: once /v1/stats answers 503 unavailable, as it
// does where /healthz does (a store closed under the server), the dashboard's health
// says so, with the daemon's message, instead of the last health it was shown.
func TestBrowserDashboardSaysUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	api, err := url.Parse(d.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(api)
	var closed atomic.Bool
	mux := http.NewServeMux()
	// The server's answer for a closed store (server.TestStatsHealthAgreesWithHealthz).
	mux.HandleFunc("/v1/stats", func(w http.ResponseWriter, r *http.Request) {
		if !closed.Load() {
			proxy.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"unavailable","message":"the store cannot be read: store closed"}`))
	})
	mux.Handle("/v1/", proxy)
	mux.Handle("/", web.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	b := newBrowser(t, ts.URL)
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/", "dashboard")
	var status string
	b.eval(t, `document.getElementById('health').dataset.status`, &status)
	if status != "ok" {
		t.Fatalf("health %q before the store is closed, want ok", status)
	}
	closed.Store(true)
	// The dashboard asks every two seconds.
	expr := `(h => h.dataset.status === 'unavailable' && h.innerText.includes('unavailable: the store cannot be read: store closed'))(document.getElementById('health'))`
	if err := chromedp.Run(b.ctx, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		var text string
		b.eval(t, `document.getElementById('health').innerText`, &text)
		t.Fatalf("health after the store closed: %q: %v", text, err)
	}
}
