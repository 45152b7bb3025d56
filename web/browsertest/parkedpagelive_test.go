package browsertest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestBrowserParkedPageLive: the page of parked commands shows a command that parks
// while it is open: it was read once, and said "Nothing is parked" until it was read
// again by hand.
func TestBrowserParkedPageLive(t *testing.T) {
	skipWithoutBrowser(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the receiver is down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(hook.Close)
	d := startDaemon(t, "--config", operatorConfig(t, hook.URL))
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })

	b.open(t, "#/parked", "parked")
	if !b.has(t, "#none-parked") {
		t.Fatal("the parked page of a daemon with nothing parked does not say so")
	}
	d.append(t, "Customer$q1", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "q1"}})
	d.append(t, "Caterer$q1", fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "q1"}})
	d.await(t, "CateringMatch.deliveries$q1", "CommandParked")
	b.poll(t, `document.querySelector('tr[data-process="q1"] button[data-action="retry"]') !== null`)
}
