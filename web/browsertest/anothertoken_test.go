package browsertest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// countSubscribesJS counts, in window.subscribes, the subscriptions the page opens from
// now on, by EventSource or by fetch: both start synchronously in the code that calls
// them, so a count read right after an event was dispatched is final for that event.
const countSubscribesJS = `(() => {
	window.subscribes = 0;
	const ES = window.EventSource;
	window.EventSource = class extends ES {
		constructor(url, opts) { super(url, opts); if (String(url).includes('/v1/subscribe')) window.subscribes++; }
	};
	const f = window.fetch;
	window.fetch = (url, opts) => { if (String(url).includes('/v1/subscribe')) window.subscribes++; return f(url, opts); };
})()`

// TestBrowserAnotherTokenLeavesThePage: "Use another token" leaves the page shown: its
// live subscription is closed and the badge cleared, and a tab hidden and shown again
// opens nothing. The token page kept the subscription of the page it replaced, and the
// tab shown again opened it without a token: the daemon (--auth) refused it, and the
// page put a new, empty token form in place of the one being filled in.
func TestBrowserAnotherTokenLeavesThePage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	const admin = "admin-secret"
	sum := sha256.Sum256([]byte(admin))
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(file, []byte("tokens:\n  - {name: admin, sha256: "+hex.EncodeToString(sum[:])+", scopes: [admin]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--auth", file)
	req, _ := http.NewRequest("POST", d.base+"/v1/streams/Order%241", bytes.NewReader([]byte(`{"events":[{"type":"OrderPlaced"}]}`)))
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("append: %s", res.Status)
	}

	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/all?limit=5", "token")
	b.eval(t, fmt.Sprintf(`document.getElementById('token').value = %q; document.querySelector('form.token').requestSubmit()`, admin), nil)
	b.poll(t, `document.getElementById('main').dataset.page === 'all' && `+badgeJS+` === '● live'`)

	b.run(t, chromedp.Click(`#header-token`, chromedp.ByQuery))
	b.poll(t, `document.getElementById('main').dataset.page === 'token'`)
	var badge string
	b.eval(t, badgeJS, &badge)
	if badge != "" {
		t.Errorf("the token page shows the live badge %q of the page it replaced", badge)
	}
	b.eval(t, `document.getElementById('token').value = 'half-typed'`, nil)
	b.eval(t, countSubscribesJS, nil)
	var opened int
	b.eval(t, hideJS+`; `+showJS+`; window.subscribes`, &opened)
	if opened != 0 {
		t.Errorf("the token page, hidden and shown again, opened %d subscriptions of the page it replaced", opened)
	}
	var form struct {
		Page, Value, Badge string
	}
	b.eval(t, `({Page: document.getElementById('main').dataset.page, Value: document.getElementById('token').value, Badge: `+badgeJS+`})`, &form)
	if form.Page != "token" || form.Value != "half-typed" || form.Badge != "" {
		t.Errorf("after the tab was hidden and shown: page %q, token field %q, badge %q; want the token page as it was", form.Page, form.Value, form.Badge)
	}
}
