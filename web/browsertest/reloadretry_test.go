package browsertest

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBrowserFailedLiveReloadIsAskedForAgain: a page of process managers or of a
// process whose live reload failed with a 503 (the leader changing, the store stopped)
// says it is not current, asks again, later each time, and comes back by itself once
// the daemon answers, with no other event to read it again. It waited for the next
// live event, which on a quiet store may never come, saying "Not current" for good.
func TestBrowserFailedLiveReloadIsAskedForAgain(t *testing.T) {
	skipWithoutBrowser(t)
	d, _ := parkingDaemon(t)
	var failReads atomic.Bool // reads (not the live subscription) are answered 503
	var failed atomic.Int32   // reads answered 503
	b := newBrowser(t, front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if !failReads.Load() || r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v1/processes") {
			return false
		}
		failed.Add(1)
		answer(w, http.StatusServiceUnavailable, map[string]any{"error": "unavailable", "message": "no leader"})
		return true
	}))
	t.Cleanup(func() { b.check(t) })
	d.append(t, "Customer$r1", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "r1"}})
	d.await(t, "CateringMatch$r1", "DeadlineScheduled")
	notice := `document.getElementById('not-current')`

	for _, c := range []struct {
		page, fragment, shows string // shows: what the page shows once read again
		change                func() // what the page follows live
	}{
		{"processes", "#/processes", `document.querySelector('tr[data-manager="CateringMatch"] td.open').textContent === '2'`, func() {
			d.append(t, "Customer$r2", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "r2"}})
		}},
		{"process", "#/processes/CateringMatch/r1", `!!document.querySelector('#timeline > li[data-type="CatererConfirmedMenu"]')`, func() {
			d.append(t, "Caterer$r1", fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "r1"}})
		}},
	} {
		failReads.Store(false)
		b.open(t, c.fragment, c.page)
		b.poll(t, `document.getElementById('live').textContent === '● live'`)
		failReads.Store(true)
		c.change()
		b.poll(t, `(n => !!n && !n.hidden && n.textContent === 'Not current: unavailable: no leader')(`+notice+`)`)
		asked := failed.Load()
		b.poll(t, `Number(`+notice+`.dataset.failed) >= 2`) // asked again, by itself
		if failed.Load() <= asked {
			t.Errorf("%s: not asked again after a failed reload", c.fragment)
		}
		failReads.Store(false)
		b.poll(t, notice+`.hidden && `+c.shows)
	}
}
