package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pmd-dev/pmd/web"
)

// damagedFirst answers a subscription that does not resume (no Last-Event-ID) the way
// the daemon ends one at a damaged record: an error event, corrupt, whose id is the
// damaged record's (version 1 of the stream here), then the end of the stream. The
// others, resumed, go to the daemon. It keeps the Last-Event-ID of each.
type damagedFirst struct {
	daemon http.Handler

	mu      sync.Mutex
	resumed []string
}

func (h *damagedFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	last := r.Header.Get("Last-Event-ID")
	if last != "" {
		h.mu.Lock()
		h.resumed = append(h.resumed, r.URL.Query().Get("stream")+"@"+last)
		h.mu.Unlock()
		h.daemon.ServeHTTP(w, r)
		return
	}
	data, _ := json.Marshal(map[string]string{
		"error":   "corrupt",
		"message": fmt.Sprintf("damaged record at position 9 (version 1 of stream %q): checksum mismatch", r.URL.Query().Get("stream")),
	})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fmt.Fprintf(w, "retry: 1000\n\nid: 1\nevent: error\ndata: %s\n\n", data)
}

func (h *damagedFirst) resumedWith() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.resumed)
}

// TestBrowserLiveGoesOnPastADamagedRecord: a stream page whose live subscription ends
// with the error event of a damaged record shows the error and goes on after it, with
// EventSource and, with a token, with fetch: the reconnect sends the error event's id as
// Last-Event-ID, so the event after the damaged record shows and the page does not meet
// the damaged record again.
func TestBrowserLiveGoesOnPastADamagedRecord(t *testing.T) {
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
	proxy.FlushInterval = -1 // Server-Sent Events pass through as they come
	sub := &damagedFirst{daemon: proxy}
	mux := http.NewServeMux()
	mux.Handle("/v1/subscribe", sub)
	mux.Handle("/v1/", proxy)
	mux.Handle("/healthz", proxy) // where the page learns where the log ends
	mux.Handle("/", web.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	b := newBrowser(t, ts.URL)
	t.Cleanup(func() { b.check(t) })
	poll := func(t *testing.T, expr string) {
		t.Helper()
		if err := chromedp.Run(b.ctx, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			var live, rows string
			b.eval(t, `document.getElementById('live').textContent`, &live)
			b.eval(t, `[...document.querySelectorAll('main tbody tr td.num')].map((td) => td.textContent).join(',')`, &rows)
			t.Fatalf("%s: %v; the live badge says %q, the rows' versions are %s, resumed %v", expr, err, live, rows, sub.resumedWith())
		}
	}
	for _, c := range []struct {
		name, stream, token string
	}{
		{"EventSource", "Order$50", ""},
		{"fetch with a token", "Order$51", "any"}, // the daemon runs without --auth: any token passes
	} {
		t.Run(c.name, func(t *testing.T) {
			defer b.check(t)
			d.append(t, c.stream, fact{Type: "OrderPlaced", Data: map[string]any{"n": 0}})
			if c.token != "" {
				b.eval(t, fmt.Sprintf(`sessionStorage.setItem('pmd-token', %q)`, c.token), nil)
			}
			b.open(t, "#/streams/"+url.PathEscape(c.stream), "stream")
			// Live from version 1, the damaged record: the error shows, and the page goes on.
			poll(t, `document.getElementById('live').textContent.includes('corrupt: damaged record at position 9')`)
			d.append(t, c.stream, fact{Type: "OrderPlaced", Data: map[string]any{"n": 1}}, fact{Type: "OrderPlaced", Data: map[string]any{"n": 2}})
			// Version 1 stands for the damaged record: the page goes on after it, at 2.
			poll(t, `[...document.querySelectorAll('main tbody tr td.num')].map((td) => td.textContent).join(',') === '2,0'`)
			poll(t, `document.getElementById('live').textContent.startsWith('● live · corrupt:')`)
			if got := sub.resumedWith(); !slices.Contains(got, c.stream+"@1") {
				t.Fatalf("resumed %v; want %s resumed after the damaged record's id 1", got, c.stream)
			}
		})
	}
}
