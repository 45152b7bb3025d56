package browsertest

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBrowserSearchSaysInPlaceWhatFailed: a search whose list of process managers, or
// a lookup of a process of the id, fails (a 503 while the leader changes) shows the
// streams it found and says, in place, what could not be read; the whole search page
// gave way to an error box, the streams found with it. A refusal (403) is said as one
// (TestBrowserSearchWithATokenLimitedToStreams); this is any other failure.
func TestBrowserSearchSaysInPlaceWhatFailed(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	d.append(t, "CateringMatch$q1", fact{Type: "Noted", Data: map[string]any{"n": 1}})
	var failing atomic.Value // the path that fails, "" none
	failing.Store("")
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if p := failing.Load().(string); p != "" && r.Method == "GET" && strings.HasPrefix(r.URL.Path, p) {
			answer(w, http.StatusServiceUnavailable, map[string]any{"error": "unavailable", "message": "no leader"})
			return true
		}
		return false
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })

	for _, c := range []struct{ q, path, id string }{
		{"CateringMatch%24q", "/v1/processes", "processes-failed"},                 // the list of process managers
		{"CateringMatch%24q1", "/v1/processes/CateringMatch/", "processes-failed"}, // a process of the id
		{"CateringMatch%24", "/v1/streams", "streams-failed"},                      // the streams of the prefix
		{"0190a6e4-7f1c-7cc2-9d5e-2b1f0e8a4c11", "/v1/events/", "event-failed"},    // an event by its id
	} {
		failing.Store(c.path)
		b.open(t, "#/search?q="+c.q, "search")
		b.poll(t, `(n => !!n && n.textContent.endsWith(': could not be read: unavailable: no leader'))(document.getElementById('`+c.id+`'))`)
		switch c.id {
		case "processes-failed":
			b.poll(t, `!!document.querySelector('#found-streams a[href="#/streams/CateringMatch%24q1"]') && !document.getElementById('nothing-found')`)
		default:
			b.poll(t, `document.getElementById('nothing-found').textContent === 'Nothing found among what could be read.' && !document.getElementById('no-event')`)
		}
		failing.Store("")
	}
}
