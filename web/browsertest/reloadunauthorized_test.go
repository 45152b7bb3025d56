package browsertest

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// TestBrowserLiveReloadAnsweredUnauthorizedAsksForAToken: a process page, the parked
// page, the page of a manager's processes or that of the process managers, that reads
// itself again live and is answered 401 (the tab's token revoked, or
// one needed now) asks for a token, as its live subscription answered 401 does. It
// said "Not current: unauthorized" and stayed.
func TestBrowserLiveReloadAnsweredUnauthorizedAsksForAToken(t *testing.T) {
	skipWithoutBrowser(t)
	d, park := parkingDaemon(t)
	var refuse atomic.Bool // reads (not the live subscription) are answered 401
	b := newBrowser(t, front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if !refuse.Load() || r.Method != http.MethodGet || r.URL.Path == "/v1/subscribe" {
			return false
		}
		answer(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized", "message": "the token was revoked"})
		return true
	}))
	t.Cleanup(func() { b.check(t) })
	d.append(t, "Customer$u1", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "u1"}})
	d.await(t, "CateringMatch$u1", "DeadlineScheduled")

	for _, c := range []struct {
		page, fragment string
		change         func() // what the page follows live
	}{
		{"process", "#/processes/CateringMatch/u1", func() {
			d.append(t, "Caterer$u1", fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "u1"}})
		}},
		{"parked", "#/parked", func() { park("u2") }},
		{"process-list", "#/processes/CateringMatch", func() {
			d.append(t, "Customer$u3", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "u3"}})
		}},
		{"processes", "#/processes", func() {
			d.append(t, "Customer$u4", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "u4"}})
		}},
	} {
		refuse.Store(false)
		b.open(t, c.fragment, c.page)
		b.poll(t, `document.getElementById('live').textContent === '● live'`)
		refuse.Store(true)
		c.change()
		b.poll(t, `document.getElementById('main').dataset.page === 'token' || !document.getElementById('not-current').hidden`)
		if got := b.text(t, `document.getElementById('main').dataset.page`); got != "token" {
			t.Errorf("%s, read again live and answered 401, shows %q, not the token page: %s", c.fragment, got, b.text(t, `document.getElementById('main').innerText`))
		}
	}
}
