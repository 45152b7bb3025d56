package browsertest

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// countPositionsJS counts, in window.positions, the SubscriptionPosition records of
// stream (a subscription's, such as billing.subscription) that the page's live
// subscriptions (EventSource) receive from now on. The listener added here runs in the
// same dispatch as the page's onmessage, so a count read afterwards says the page has
// handled that record too.
func countPositionsJS(stream string) string {
	return fmt.Sprintf(`(() => {
	window.positions = 0;
	const ES = window.EventSource;
	window.EventSource = class extends ES {
		constructor(url, opts) {
			super(url, opts);
			this.addEventListener('message', (m) => {
				try {
					const ev = JSON.parse(m.data);
					if (ev.type === 'SubscriptionPosition' && ev.stream === %q) window.positions++;
				} catch (_) {}
			});
		}
	};
})()`, stream)
}

// TestBrowserParkedPageDropsAnEventDeliveredDuringItsReload: the event a subscription
// is failing on leaves the open parked page once delivered, also when the position
// record that says so reaches the page while the reload that reads the subscription
// failing is still under way. The page passed over a position of a subscription it
// did not show failing yet; the reload then showed the event failing, with Retry and
// Skip, and nothing read the page again.
func TestBrowserParkedPageDropsAnEventDeliveredDuringItsReload(t *testing.T) {
	skipWithoutBrowser(t)
	d, rcv := billingDaemon(t)
	// The page's first read of the subscription once armed gets the daemon's answer
	// (failing) only when released: after the delivery's position reached the page.
	var mu sync.Mutex
	armed := false
	fetched := make(chan struct{})
	release := make(chan struct{})
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		hold := armed && r.URL.Path == "/v1/subscriptions/billing"
		if hold {
			armed = false
		}
		mu.Unlock()
		if !hold {
			return false
		}
		res, err := http.Get(d.base + r.URL.RequestURI())
		if err != nil {
			t.Error(err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		close(fetched)
		select {
		case <-release:
		case <-r.Context().Done():
			return true
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(body)
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })

	b.open(t, "#/all?limit=5", "all")
	b.eval(t, countPositionsJS("billing.subscription"), nil)
	b.open(t, "#/parked", "parked")
	b.poll(t, `!!document.getElementById('none-parked') && document.getElementById('live').textContent === '● live'`)
	mu.Lock()
	armed = true
	mu.Unlock()
	d.append(t, "orders", fact{Type: "ConfirmOrder", Data: map[string]any{"n": 1}})
	select {
	case <-fetched:
	case <-time.After(20 * time.Second):
		t.Fatal("the page did not read the failing subscription")
	}
	rcv.set(false)
	d.await(t, "billing.subscription", "SubscriptionPosition")
	b.poll(t, `window.positions > 0`)
	close(release)
	b.poll(t, `!document.querySelector('tr[data-subscription="billing"]') && !!document.getElementById('none-parked')`)
}
