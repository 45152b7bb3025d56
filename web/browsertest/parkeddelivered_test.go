package browsertest

import "testing"

// TestBrowserParkedPageDropsAFailingEventDeliveredAtLast: the event a subscription is
// failing on leaves the open parked page once a later attempt delivers it. That writes
// none of the records the page followed (a failure, a parking, a retry, a skip), only
// the subscription's position: the event stayed, with its Retry and Skip, until the
// page was read again by hand.
func TestBrowserParkedPageDropsAFailingEventDeliveredAtLast(t *testing.T) {
	skipWithoutBrowser(t)
	d, rcv := billingDaemon(t)
	d.append(t, "orders", fact{Type: "ConfirmOrder", Data: map[string]any{"n": 1}})
	d.await(t, "billing.subscription", "EventDeliveryFailed")
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })

	b.open(t, "#/parked", "parked")
	b.poll(t, `!!document.querySelector('tr[data-subscription="billing"][data-state="failing"] button[data-action="retry"]')`)
	b.poll(t, `document.getElementById('live').textContent === '● live'`)
	rcv.set(false)
	d.await(t, "billing.subscription", "SubscriptionPosition")
	b.poll(t, `!document.querySelector('tr[data-subscription="billing"]') && !!document.getElementById('none-parked')`)
}
