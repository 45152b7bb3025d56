package browsertest

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestBrowserStreamPageSaysWhyItCannotTellAProcess: the page of a stream whose name
// could be a process's (CateringMatch$q1) asks for the process managers to link the
// process's timeline; when that is refused (403, a token limited to streams) or fails
// (503), the page says so in place of the link, as the search page does. Any failure
// was taken for no process manager: the page said nothing, as for a stream of no process.
func TestBrowserStreamPageSaysWhyItCannotTellAProcess(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	d.append(t, "CateringMatch$q1", fact{Type: "Noted", Data: map[string]any{"n": 1}})
	var status atomic.Int32 // the answer to GET /v1/processes, 0 the daemon's
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		switch s := int(status.Load()); {
		case r.URL.Path != "/v1/processes" || s == 0:
			return false
		case s == http.StatusForbidden:
			answer(w, s, map[string]any{"error": "forbidden", "message": "the token may read only streams starting with Order$"})
		default:
			answer(w, s, map[string]any{"error": "unavailable", "message": "no leader"})
		}
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	timeline := `document.querySelector('a[href="#/processes/CateringMatch/q1"]')`

	for i, c := range []struct {
		status int
		id     string
		text   string
	}{
		{http.StatusForbidden, "processes-not-allowed", "The token of this tab may not list the process managers (forbidden: the token may read only streams starting with Order$): whether this is the stream of a process is not known."},
		{http.StatusServiceUnavailable, "processes-failed", "The process managers could not be read (unavailable: no leader): whether this is the stream of a process is not known."},
	} {
		status.Store(int32(c.status))
		b.open(t, "#/streams/CateringMatch%24q1?limit="+fmt.Sprint(5+i), "stream")
		b.poll(t, `(n => !!n && n.textContent === `+fmt.Sprintf("%q", c.text)+`)(document.getElementById('`+c.id+`')) && !`+timeline)
	}
	status.Store(0)
	b.open(t, "#/streams/CateringMatch%24q1", "stream")
	b.poll(t, `!!`+timeline+` && !document.getElementById('processes-not-allowed') && !document.getElementById('processes-failed')`)
}
