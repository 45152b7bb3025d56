package browsertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestBrowserParkedPagePassesOverAnotherSubscriptionsPositionDuringItsReload: a
// position of a subscription the parked page does not show failing, come while a read
// of the page is under way, does not read the page again once that read finds it not
// failing. The page read itself again at any position come during a read: with
// positions every second while events flow and reads slower than that, it read itself
// again for good.
func TestBrowserParkedPagePassesOverAnotherSubscriptionsPositionDuringItsReload(t *testing.T) {
	skipWithoutBrowser(t)
	hook := httptest.NewServer(&failingReceiver{})
	t.Cleanup(hook.Close)
	file := filepath.Join(t.TempDir(), "pmd.yaml")
	yaml := "subscriptions:\n  - name: audit\n    types: [Audited]\n    deliver: {webhook: " + hook.URL + "}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", file)
	// Once armed, the page's reads of the subscriptions are told to reads, and the
	// first is answered only when released.
	var mu sync.Mutex
	armed, hold := false, false
	reads := make(chan struct{}, 16)
	release := make(chan struct{})
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/subscriptions" {
			return false
		}
		mu.Lock()
		told, held := armed, hold
		hold = false
		mu.Unlock()
		if told {
			select {
			case reads <- struct{}{}:
			default:
			}
		}
		if held {
			select {
			case <-release:
			case <-r.Context().Done():
				return true
			}
		}
		return false
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })

	b.open(t, "#/all?limit=5", "all")
	b.eval(t, countPositionsJS("audit.subscription"), nil)
	b.open(t, "#/parked", "parked")
	b.poll(t, `!!document.getElementById('none-parked') && document.getElementById('live').textContent === '● live'`)
	mu.Lock()
	armed, hold = true, true
	mu.Unlock()
	// A record the page follows has it read itself again; that read is held while a
	// position of audit reaches the page.
	d.append(t, "Noise$1", fact{Type: "CommandRetried"})
	select {
	case <-reads:
	case <-time.After(20 * time.Second):
		t.Fatal("the page did not read itself again at a record it follows")
	}
	d.append(t, "Audit$1", fact{Type: "Audited"})
	d.await(t, "audit.subscription", "SubscriptionPosition")
	b.poll(t, `window.positions > 0`)
	close(release)
	b.poll(t, `!!document.getElementById('none-parked') && document.getElementById('not-current').hidden`)
	// The page would read itself again half a second after the position: none comes
	// in four times that.
	select {
	case <-reads:
		t.Error("the page read itself again at a position of a subscription it does not show failing")
	case <-time.After(2 * time.Second):
	}
}
