package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// parkingDaemon runs pmd with the catering process manager delivering its commands to
// a receiver that is down, each parked at its first failure (operatorConfig), and parks
// the command of each of orders. park parks that of another order: both confirmations
// of the menu, then the parking of the command they issue.
func parkingDaemon(t *testing.T, orders ...string) (d *daemon, park func(order string)) {
	t.Helper()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(down.Close)
	d = startDaemon(t, "--config", operatorConfig(t, down.URL))
	park = func(order string) {
		t.Helper()
		d.append(t, "Customer$"+order, fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.append(t, "Caterer$"+order, fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.await(t, "CateringMatch.deliveries$"+order, "CommandParked")
	}
	for _, order := range orders {
		park(order)
	}
	return d, park
}

// TestBrowserParkedActions: a Retry clicked twice is sent once, its buttons waiting for
// the answer, so it reads as done; a Skip whose request never gets an answer (the
// connection drops) says it could not reach pmd instead of waiting for ever, and when a
// process page cannot be read again either, its buttons work again.
func TestBrowserParkedActions(t *testing.T) {
	skipWithoutBrowser(t)
	d, _ := parkingDaemon(t, "p1", "p2")
	var retries atomic.Int32
	var failReads atomic.Bool // the page's reads fail: the daemon went away
	held := make(chan struct{}, 2)
	release := make(chan struct{})
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/") && failReads.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/retry"):
			retries.Add(1)
			held <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return false // to the daemon
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/skip"):
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // no answer at all
			}
			return true
		}
		return false
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/parked", "parked")
	b.poll(t, `!!document.querySelector('tr[data-process="p1"] button[data-action="retry"]')`)

	b.eval(t, `(b => { b.click(); b.click(); return b.disabled })(document.querySelector('tr[data-process="p1"] button[data-action="retry"]'))`, nil)
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the retry did not reach the daemon within 15s")
	}
	b.poll(t, `document.querySelector('tr[data-process="p1"] button[data-action="skip"]').disabled`)
	close(release)
	b.poll(t, `(r => r.dataset.outcome === 'done' && r.textContent.includes(': done.'))(document.getElementById('action-result'))`)
	if n := retries.Load(); n != 1 {
		t.Fatalf("a retry clicked twice was sent %d times", n)
	}

	b.eval(t, `document.querySelector('tr[data-process="p2"] button[data-action="skip"]').click()`, nil)
	b.poll(t, `(r => r.dataset.outcome === 'failed' && r.textContent.includes('failed: could not reach pmd: '))(document.getElementById('action-result'))`)
	b.poll(t, `!!document.querySelector('tr[data-process="p2"] button[data-action="skip"]:not([disabled])')`)

	// On a process page that cannot be read again after the failed skip either, the
	// timeline stays, and its buttons work again instead of staying disabled.
	b.open(t, "#/processes/CateringMatch/p2", "process")
	b.poll(t, `!!document.querySelector('#timeline button[data-action="skip"]')`)
	failReads.Store(true)
	b.eval(t, `document.querySelector('#timeline button[data-action="skip"]').click()`, nil)
	b.poll(t, `(r => r.dataset.outcome === 'failed' && r.textContent.includes('failed: could not reach pmd: '))(document.getElementById('action-result'))`)
	b.poll(t, `!!document.querySelector('#timeline button[data-action="skip"]:not([disabled])')`)
}
