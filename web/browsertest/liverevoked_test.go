package browsertest

import (
	"net/http"
	"os"
	"sync/atomic"
	"testing"
)

// TestBrowserLiveAsksForATokenWhenRefused: a live subscription answered 401 (the tab's
// token was revoked by a reload of the token file) asks for another token, as every other
// page does, instead of only saying it stopped.
func TestBrowserLiveAsksForATokenWhenRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	var revoked atomic.Bool
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/subscribe" || !revoked.Load() {
			return false
		}
		answer(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized", "message": "unknown token"})
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	d.append(t, "Order$80", fact{Type: "OrderPlaced"})
	b.open(t, "#/streams", "streams")
	b.eval(t, `sessionStorage.setItem('pmd-token', 'revoked-secret')`, nil)
	revoked.Store(true)
	b.eval(t, `location.hash = '#/streams/Order%2480'`, nil)
	b.poll(t, `document.getElementById('main').dataset.page === 'token' && document.querySelector('form.token').innerText.includes('was refused')`)
	var kept any
	b.eval(t, `sessionStorage.getItem('pmd-token')`, &kept)
	if kept != nil {
		t.Fatalf("the refused token is still kept: %v", kept)
	}
}
