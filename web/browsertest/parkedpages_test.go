package browsertest

import (
	"net/http"
	"strings"
	"testing"
)

// TestBrowserParkedPages: the parked page shows a page of each manager's commands with
// a link to the next (the daemon's next), and from there a link back to the first, so
// that every parked command can be seen; it showed the first page and how many there
// were, with no way to see the rest. The pages are of 2 here: the front makes the
// page's limit of 200 a limit of 2.
func TestBrowserParkedPages(t *testing.T) {
	skipWithoutBrowser(t)
	d, _ := parkingDaemon(t, "p1", "p2", "p3")
	base := front(t, d, func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/parked") {
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
	shows := func(want ...string) string {
		return `[...document.querySelectorAll('tr[data-manager="CateringMatch"]')].map((tr) => tr.dataset.process).join(',') === ` + "'" + strings.Join(want, ",") + "'"
	}

	b.open(t, "#/parked", "parked")
	b.poll(t, shows("p1", "p2")+` && document.querySelector('h2').textContent.includes('(the first 2 of 3)') &&
		!!document.querySelector('a.next-parked[data-manager="CateringMatch"]') && !document.querySelector('a.first-parked')`)
	b.click(t, `a.next-parked[data-manager="CateringMatch"]`, "parked")
	b.poll(t, shows("p3")+` && document.querySelector('h2').textContent.includes('(1 of 3, from position ') && !document.querySelector('a.next-parked')`)
	b.click(t, `a.first-parked[data-manager="CateringMatch"]`, "parked")
	b.poll(t, shows("p1", "p2")+` && !!document.querySelector('a.next-parked')`)
}
