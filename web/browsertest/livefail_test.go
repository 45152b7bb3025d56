package browsertest

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
)

// TestBrowserLiveSaysWhyItStopped: a live subscription answered other than 200 says
// with the badge what the daemon answered; after a 503 it tries again, later each time,
// and goes live once answered; after a 4xx it stops, since asking again would get the
// same answer. Both with EventSource and, with a token, with fetch.
func TestBrowserLiveSaysWhyItStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	var mu sync.Mutex
	asked := map[string]int{} // subscriptions asked for, by stream
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/subscribe" {
			return false
		}
		stream := r.URL.Query().Get("stream")
		mu.Lock()
		asked[stream]++
		n := asked[stream]
		mu.Unlock()
		switch {
		case stream == "Order$70" || stream == "Order$72":
			if n <= 2 {
				answer(w, http.StatusServiceUnavailable, map[string]any{"error": "unavailable", "message": "the store is shutting down"})
				return true
			}
		case stream == "Order$71" || stream == "Order$73":
			answer(w, http.StatusBadRequest, map[string]any{"error": "bad_request", "message": "from is past the end"})
			return true
		}
		return false
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	badge := `document.getElementById('live').textContent`
	for _, c := range []struct {
		name, unavailable, refused, token string
		refusedAsks                       int // EventSource's one, then fetch's
	}{
		{"EventSource", "Order$70", "Order$71", "", 2},
		{"fetch with a token", "Order$72", "Order$73", "any", 1}, // the daemon runs without --auth: any token passes
	} {
		t.Run(c.name, func(t *testing.T) {
			defer b.check(t)
			if c.token != "" {
				b.eval(t, fmt.Sprintf(`sessionStorage.setItem('pmd-token', %q)`, c.token), nil)
			}
			d.append(t, c.unavailable, fact{Type: "OrderPlaced"})
			b.open(t, "#/streams/"+url.PathEscape(c.unavailable), "stream")
			b.poll(t, badge+`.includes('unavailable: the store is shutting down')`)
			b.poll(t, badge+` === '● live'`)
			d.append(t, c.unavailable, fact{Type: "OrderPlaced"})
			b.poll(t, numsJS+` === '1,0'`)

			d.append(t, c.refused, fact{Type: "OrderPlaced"})
			b.open(t, "#/streams/"+url.PathEscape(c.refused), "stream")
			b.poll(t, badge+` === '○ not live · bad_request: from is past the end'`)
			mu.Lock()
			n := asked[c.refused]
			mu.Unlock()
			if n != c.refusedAsks {
				t.Fatalf("a subscription answered 400 was asked for %d times, want %d", n, c.refusedAsks)
			}
		})
	}
}
