package browsertest

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestBrowserProcessesShowAParkingLive: the pages of process managers and of a
// manager's processes read themselves again when a command parks, which no fact comes
// with: they followed the facts only, so a command parked after its last attempt (half a
// minute or more after its fact with the default max_attempts) showed as Parked 0, and
// its process with no mark, until another fact came. The receiver holds each attempt
// until the page has read its process completed, then fails it.
func TestBrowserProcessesShowAParkingLive(t *testing.T) {
	skipWithoutBrowser(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "the receiver is down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(release) }) // before hook.Close, which waits for the handler
	d := startDaemon(t, "--config", operatorConfig(t, hook.URL))
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })

	// park has the command of a new order attempted, waits for the page to show its
	// process completed (shown, a fact's read), then has the attempt fail and park.
	park := func(order, completed string) {
		t.Helper()
		d.append(t, "Customer$"+order, fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.append(t, "Caterer$"+order, fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": order}})
		select {
		case <-arrived:
		case <-time.After(15 * time.Second):
			t.Fatalf("the command of %s was not delivered", order)
		}
		b.poll(t, completed)
		release <- struct{}{}
		d.await(t, "CateringMatch.deliveries$"+order, "CommandParked")
	}

	b.open(t, "#/processes/CateringMatch", "process-list")
	park("q1", `(r => r !== null && r.dataset.status === 'completed')(document.querySelector('tr[data-process="q1"]'))`)
	b.poll(t, `document.querySelector('tr[data-process="q1"] .mark.parked') !== null`)

	b.open(t, "#/processes", "processes")
	b.poll(t, `document.querySelector('tr[data-manager="CateringMatch"] td.parked').textContent === '1'`)
	park("q2", `document.querySelector('tr[data-manager="CateringMatch"] td.completed').textContent === '2'`)
	b.poll(t, `document.querySelector('tr[data-manager="CateringMatch"] td.parked').textContent === '2'`)
}
