package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestBrowserLiveBadgeClearsOnceLiveAgain: a live subscription that the daemon ends with
// an error event other than a damaged record's (its shutdown, a subscriber cut for being
// too slow) resumes from the last event it had, missing none, so once it is live again
// the badge says only that: it said "● live · unavailable: the server is shutting down"
// for as long as the page stayed open, after every restart of the daemon. Both with
// EventSource and, with a token, with fetch.
func TestBrowserLiveBadgeClearsOnceLiveAgain(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	var mu sync.Mutex
	asked := map[string]int{}             // subscriptions asked for, by stream
	resumed := map[string]chan struct{}{} // closed when a stream's is asked for again
	ends := map[string]map[string]string{}
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/subscribe" {
			return false
		}
		stream := r.URL.Query().Get("stream")
		mu.Lock()
		defer mu.Unlock()
		asked[stream]++
		if asked[stream] == 2 {
			close(resumed[stream])
		}
		end, ok := ends[stream]
		if !ok || asked[stream] > 1 {
			return false
		}
		// The daemon's own end of a subscription: an error event, then the end of the
		// stream; the client reconnects.
		data, _ := json.Marshal(end)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprintf(w, "retry: 1000\n\nevent: error\ndata: %s\n\n", data)
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	shutdown := map[string]string{"error": "unavailable", "message": "the server is shutting down: reconnect with Last-Event-ID"}
	b.open(t, "#/streams", "streams") // the tab's sessionStorage is the page's
	tooSlow := map[string]string{"error": "too_slow", "message": "this subscriber let more than 16777216 bytes of live events pile up: reconnect with Last-Event-ID to catch up from the last event received"}
	for _, c := range []struct {
		name, stream, token string
		end                 map[string]string
	}{
		{"shutdown with EventSource", "Badge$1", "", shutdown},
		{"shutdown with fetch", "Badge$2", "any", shutdown}, // the daemon runs without --auth: any token passes
		{"too slow with EventSource", "Badge$3", "", tooSlow},
		{"too slow with fetch", "Badge$4", "any", tooSlow},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer b.check(t)
			mu.Lock()
			ends[c.stream] = c.end
			resumed[c.stream] = make(chan struct{})
			mu.Unlock()
			b.eval(t, `sessionStorage.removeItem('pmd-token')`, nil)
			if c.token != "" {
				b.eval(t, fmt.Sprintf(`sessionStorage.setItem('pmd-token', %q)`, c.token), nil)
			}
			d.append(t, c.stream, fact{Type: "OrderPlaced"})
			b.open(t, "#/streams/"+url.PathEscape(c.stream), "stream")
			select {
			case <-resumed[c.stream]:
			case <-time.After(15 * time.Second):
				t.Fatalf("the page did not ask for %s's subscription again after its end", c.stream)
			}
			b.poll(t, badgeJS+` === '● live'`)
			d.append(t, c.stream, fact{Type: "OrderShipped"})
			b.poll(t, numsJS+` === '1,0'`)
		})
	}
}
