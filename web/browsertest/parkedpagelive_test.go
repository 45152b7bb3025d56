package browsertest

import "testing"

// TestBrowserParkedPageLive: the page of parked commands shows a command that parks
// while it is open: it was read once, and said "Nothing is parked" until it was read
// again by hand.
func TestBrowserParkedPageLive(t *testing.T) {
	skipWithoutBrowser(t)
	d, park := parkingDaemon(t)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })

	b.open(t, "#/parked", "parked")
	if !b.has(t, "#none-parked") {
		t.Fatal("the parked page of a daemon with nothing parked does not say so")
	}
	park("q1")
	b.poll(t, `document.querySelector('tr[data-process="q1"] button[data-action="retry"]') !== null`)
}
