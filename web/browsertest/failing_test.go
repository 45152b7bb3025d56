package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// failingReceiver answers 500 while down, and keeps the types of the events it took.
type failingReceiver struct {
	mu   sync.Mutex
	down bool
	took []string
}

// billingDaemon starts a daemon whose subscription billing delivers ConfirmOrder to
// rcv, down until a test sets it up, with max_attempts far off: the event it fails on
// stays failing, not parked.
func billingDaemon(t *testing.T) (*daemon, *failingReceiver) {
	t.Helper()
	rcv := &failingReceiver{down: true}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	file := filepath.Join(t.TempDir(), "pmd.yaml")
	yaml := "subscriptions:\n  - name: billing\n    types: [ConfirmOrder]\n    deliver: {webhook: " + hook.URL + ", max_attempts: 1000}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, "--config", file), rcv
}

func (r *failingReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body struct {
		Data map[string]any `json:"data"`
	}
	_ = jsonDecode(req, &body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		http.Error(w, "the receiver is broken", http.StatusInternalServerError)
		return
	}
	r.took = append(r.took, fmt.Sprint(body.Data["n"]))
	w.WriteHeader(http.StatusNoContent)
}

func (r *failingReceiver) set(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *failingReceiver) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.took)
}

// TestBrowserFailingSubscriptionEvent: the event a subscription is failing on (not
// parked: max_attempts is far off) is shown on the parked page, with its attempts, the
// receiver's error and Retry and Skip; the dashboard's failing status links there.
// Retry sends it again at once (still failing: the receiver is down), Skip gives it up:
// the event behind it is delivered, and nothing is left to show.
func TestBrowserFailingSubscriptionEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d, rcv := billingDaemon(t)
	d.append(t, "orders", fact{Type: "ConfirmOrder", Data: map[string]any{"n": 1}}, fact{Type: "ConfirmOrder", Data: map[string]any{"n": 2}})
	d.await(t, "billing.subscription", "EventDeliveryFailed")

	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() {
		b.check(t)
		if t.Failed() {
			t.Logf("pmd logs:\n%s", d.logs)
		}
	})
	b.open(t, "#/", "dashboard")
	b.poll(t, `(a => a && a.textContent === 'failing')(document.querySelector('tr[data-subscription="billing"] td.status a[href="#/parked"]'))`)

	b.open(t, "#/parked", "parked")
	row := `tr[data-subscription="billing"][data-state="failing"]`
	b.poll(t, fmt.Sprintf(`!!document.querySelector('%s button[data-action="retry"]') && !!document.querySelector('%s button[data-action="skip"]')`, row, row))
	var shown string
	b.eval(t, fmt.Sprintf(`document.querySelector('%s').innerText`, row), &shown)
	if !strings.Contains(shown, "ConfirmOrder") || !strings.Contains(shown, "500") || !strings.Contains(shown, "orders") {
		t.Errorf("the failing event shows %q, want its type, stream and the receiver's 500", shown)
	}

	// act clicks action on the failing event until it is done. An attempt of the event
	// may be running at the click (the daemon retries it on its own, at real times):
	// that click is refused as a conflict, and the operator clicks again.
	act := func(action string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			b.poll(t, fmt.Sprintf(`!!document.querySelector('%s button[data-action="%s"]:not([disabled])')`, row, action))
			b.eval(t, fmt.Sprintf(`document.querySelector('%s button[data-action="%s"]').click()`, row, action), nil)
			b.poll(t, `!!document.getElementById('action-result').dataset.outcome`)
			var outcome, text string
			b.eval(t, `document.getElementById('action-result').dataset.outcome`, &outcome)
			b.eval(t, `document.getElementById('action-result').textContent`, &text)
			if outcome == "done" {
				if !strings.Contains(text, "ConfirmOrder for billing: done") {
					t.Errorf("the result of the %s says %q", action, text)
				}
				return
			}
			if !strings.Contains(text, "conflict") || time.Now().After(deadline) {
				t.Fatalf("%s: %s", action, text)
			}
		}
	}
	act("retry")
	d.await(t, "billing.subscription", "EventRetried")
	// The receiver is still down: the event fails again, and is shown again once it
	// waits for its next attempt (while the retried attempt runs, it is not failing).
	for deadline := time.Now().Add(20 * time.Second); ; {
		b.run(t, chromedp.Reload())
		b.shown(t, "parked", "")
		var again bool
		b.eval(t, fmt.Sprintf(`!!document.querySelector('%s')`, row), &again)
		if again {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retried event is not shown failing again")
		}
	}
	act("skip")
	d.await(t, "billing.subscription", "EventSkipped")
	rcv.set(false)
	// The position moves, and is written, only once the event behind is delivered.
	d.await(t, "billing.subscription", "SubscriptionPosition")
	if got := rcv.events(); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("the receiver took %v, want the event behind the skipped one only", got)
	}
	b.run(t, chromedp.Reload())
	b.shown(t, "parked", "")
	b.poll(t, `!!document.getElementById('none-parked')`)
}
