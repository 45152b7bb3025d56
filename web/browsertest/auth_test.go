package browsertest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAsksForAToken: against a daemon run with --auth, the page asks for a
// token, says so when one is refused, keeps the one accepted for the tab, sends it
// with every request, and follows a stream live with it.
func TestBrowserAsksForAToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	const token, admin = "browser-secret", "admin-secret"
	sum, adminSum := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(admin))
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(file, []byte("tokens:\n  - {name: browser, sha256: "+hex.EncodeToString(sum[:])+", scopes: [write]}\n"+
		"  - {name: admin, sha256: "+hex.EncodeToString(adminSum[:])+", scopes: [admin]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every command is parked at its first failure: the receiver is down.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(down.Close)
	d := startDaemon(t, "--auth", file, "--config", operatorConfig(t, down.URL))
	d.token = admin
	appendWith := func(stream string, events ...string) {
		t.Helper()
		if len(events) == 0 {
			events = []string{`{"type":"OrderPlaced"}`}
		}
		req, _ := http.NewRequest("POST", d.base+"/v1/streams/"+stream, bytes.NewReader([]byte(`{"events":[`+strings.Join(events, ",")+`]}`)))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("append: %s", res.Status)
		}
	}
	appendWith("Order%2442")

	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/streams/Order%2442", "token")

	submit := func(value string) {
		b.run(t, chromedp.Evaluate(fmt.Sprintf(`document.getElementById('token').value = %q; document.querySelector('form.token').requestSubmit()`, value), nil))
	}
	poll := func(expr string) {
		t.Helper()
		b.run(t, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(15*time.Second)))
	}
	submit("wrong")
	poll(`document.querySelector('form.token') && document.querySelector('form.token').innerText.includes('was refused')`)
	var kept any
	b.eval(t, `sessionStorage.getItem('pmd-token')`, &kept)
	if kept != nil {
		t.Fatalf("a refused token was kept: %v", kept)
	}

	submit(token)
	poll(`document.getElementById('main').dataset.page === 'stream' && document.querySelectorAll('main tbody tr').length === 1`)
	b.eval(t, `sessionStorage.getItem('pmd-token')`, &kept)
	if kept != token {
		t.Fatalf("the token kept for the tab is %v", kept)
	}
	// Live, with the token: an event appended now shows without a reload.
	poll(`document.getElementById('live').textContent.includes('live')`)
	appendWith("Order%2442")
	poll(`document.querySelectorAll('main tbody tr').length === 2`)

	// Retry and skip need the admin scope: with the write token the page says the
	// retry was refused, and offers to give another token; with the admin one it is done.
	appendWith("Customer%249", `{"type":"CustomerConfirmedMenu","data":{"order_id":"9"}}`, `{"type":"CatererConfirmedMenu","data":{"order_id":"9"}}`)
	d.await(t, "CateringMatch.deliveries$9", "CommandParked")
	b.open(t, "#/parked", "parked")
	b.run(t, chromedp.Click(`tr[data-process="9"] button[data-action="retry"]`, chromedp.ByQuery))
	poll(`(r => r && r.dataset.outcome === 'failed' && r.textContent.includes('forbidden') && !!document.getElementById('use-token'))(document.getElementById('action-result'))`)
	b.run(t, chromedp.Click(`#use-token`, chromedp.ByQuery))
	poll(`!!document.querySelector('form.token')`)
	submit(admin)
	poll(`document.getElementById('main').dataset.page === 'parked' && !!document.querySelector('tr[data-process="9"] button[data-action="retry"]')`)
	b.run(t, chromedp.Click(`tr[data-process="9"] button[data-action="retry"]`, chromedp.ByQuery))
	poll(`(r => r && r.dataset.outcome === 'done')(document.getElementById('action-result'))`)
}
