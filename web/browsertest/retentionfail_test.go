package browsertest

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestBrowserStreamPageSaysItsRetentionCouldNotBeRead: the page of a stream whose
// retention settings cannot be read (a 503 while the leader changes, a 403) shows its
// events and says in place that what it keeps is not known, and why, as it does when
// the process managers cannot be listed. A failed read was taken for no settings: the
// page said nothing, as for a stream that keeps everything.
func TestBrowserStreamPageSaysItsRetentionCouldNotBeRead(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	for range 3 {
		d.append(t, "Kept$r1", fact{Type: "Noted"})
	}
	d.call(t, "PUT", "/v1/streams/Kept%24r1/metadata", `{"max_count":5}`, http.StatusOK)
	var status atomic.Int32 // the answer to GET its metadata, 0 the daemon's
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		switch s := int(status.Load()); {
		case r.URL.Path != "/v1/streams/Kept$r1/metadata" || s == 0:
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
	const unknown = ": what it keeps is not known, and the rows of versions it no longer keeps stay until the page is read again."

	for i, c := range []struct {
		status int
		text   string
	}{
		{http.StatusServiceUnavailable, "The retention settings of this stream could not be read (unavailable: no leader)" + unknown},
		{http.StatusForbidden, "The retention settings of this stream could not be read (forbidden: the token may read only streams starting with Order$)" + unknown},
	} {
		status.Store(int32(c.status))
		b.open(t, "#/streams/Kept%24r1?limit="+fmt.Sprint(5+i), "stream")
		b.poll(t, `(n => !!n && n.textContent === `+fmt.Sprintf("%q", c.text)+`)(document.getElementById('retention-failed')) && !document.getElementById('retention')`)
		if got := b.text(t, numsJS); got != "2,1,0" {
			t.Errorf("status %d: the page shows versions %q, want 2,1,0", c.status, got)
		}
	}
	status.Store(0)
	b.open(t, "#/streams/Kept%24r1", "stream")
	b.poll(t, `(n => !!n && n.textContent === 'Retention keeps the newest 5 versions.')(document.getElementById('retention')) && !document.getElementById('retention-failed')`)
}
