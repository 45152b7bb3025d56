package browsertest

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBrowserParkedPageKeepsItsListWhenAReloadFails: a live reload of the parked page
// that fails (a 503 while the leader changes) keeps the commands shown, and their
// paging links, and says once that they are not current, like the other live pages; the
// next reload that works takes the notice away. The list was replaced by an error box,
// its Retry and Skip buttons and its paging links gone, until the page was opened again.
// The pages are of 2 here: the front makes the page's limit of 200 a limit of 2.
func TestBrowserParkedPageKeepsItsListWhenAReloadFails(t *testing.T) {
	skipWithoutBrowser(t)
	d, park := parkingDaemon(t, "p1", "p2", "p3")
	var failReads atomic.Bool // the page's reads fail, its live subscription does not
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || !strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/v1/subscribe" {
			return false
		}
		if failReads.Load() {
			answer(w, http.StatusServiceUnavailable, map[string]any{"error": "unavailable", "message": "no leader"})
			return true
		}
		if strings.HasSuffix(r.URL.Path, "/parked") {
			q := r.URL.Query()
			if q.Get("limit") == "200" {
				q.Set("limit", "2")
				r.URL.RawQuery = q.Encode()
			}
		}
		return false // to the daemon
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	list := `[...document.querySelectorAll('tr[data-manager="CateringMatch"]')].map((tr) => tr.dataset.process).join(',') === 'p1,p2' &&
		!!document.querySelector('a.next-parked[data-manager="CateringMatch"]') && document.querySelector('h2').textContent.includes(' of %d)')`
	notice := `document.getElementById('not-current')`

	b.open(t, "#/parked", "parked")
	b.poll(t, strings.Replace(list, "%d", "3", 1))
	b.poll(t, `document.getElementById('live').textContent === '● live'`)

	failReads.Store(true)
	park("p4")
	b.poll(t, `(n => !!n && !n.hidden && n.textContent === 'Not current: unavailable: no leader')(`+notice+`)`)
	b.poll(t, strings.Replace(list, "%d", "3", 1))
	var errors int
	b.eval(t, `document.querySelectorAll('main .error:not([hidden])').length`, &errors)
	if errors != 1 {
		t.Errorf("%d error notices after a failed reload, want 1", errors)
	}

	failReads.Store(false)
	park("p5")
	b.poll(t, strings.Replace(list, "%d", "5", 1)+` && `+notice+`.hidden`)
}
