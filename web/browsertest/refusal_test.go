package browsertest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserTokenRefusals: the token page refuses a token a header cannot carry,
// saying why, and one kept anyway is treated as refused; a page the token does not
// reach (403) says so and offers another token, as the header does while the tab has
// one, and the streams page, whose list a token limited to some streams reaches with a
// prefix, says so under its filter; the dashboard whose token is revoked asks for another instead of blaming the
// store, and stops asking for the stats.
func TestBrowserTokenRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	const admin, orders = "admin-secret", "orders-secret"
	sum, ordersSum := sha256.Sum256([]byte(admin)), sha256.Sum256([]byte(orders))
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(file, []byte("tokens:\n  - {name: admin, sha256: "+hex.EncodeToString(sum[:])+", scopes: [admin]}\n"+
		"  - {name: orders, sha256: "+hex.EncodeToString(ordersSum[:])+", scopes: [read], streams: [\"Order$\"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--auth", file)
	var revoked atomic.Bool
	var statsAfter atomic.Int32 // stats asked for once revoked
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/stats" || !revoked.Load() {
			return false
		}
		statsAfter.Add(1)
		answer(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized", "message": "unknown token"})
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	submit := func(value string) {
		t.Helper()
		b.run(t, chromedp.Evaluate(fmt.Sprintf(`document.getElementById('token').value = %q; document.querySelector('form.token').requestSubmit()`, value), nil))
	}
	kept := func() any {
		t.Helper()
		var v any
		b.eval(t, `sessionStorage.getItem('pmd-token')`, &v)
		return v
	}

	b.open(t, "#/streams/Order%2442", "token")
	for _, c := range []struct{ token, says string }{
		{"été", "printable ASCII"},
		{"sécret", "printable ASCII"},
		{"  ", "it is empty"},
	} {
		submit(c.token)
		b.poll(t, fmt.Sprintf(`(p => !p.hidden && p.textContent.includes(%q))(document.getElementById('token-problem'))`, c.says))
		if v := kept(); v != nil {
			t.Fatalf("token %q kept: %v", c.token, v)
		}
	}
	// One kept by other means is refused when it is to be sent, not thrown at fetch.
	b.eval(t, `sessionStorage.setItem('pmd-token', 'tökén')`, nil)
	b.open(t, "#/streams", "token")
	b.poll(t, `document.querySelector('form.token').innerText.includes('was refused')`)

	// 403: the token reaches Order$ streams only, not the list of every stream. The list
	// says so under its filter, which lists the names of a prefix the token reaches.
	submit(orders)
	b.poll(t, `document.getElementById('main').dataset.page === 'streams' && !!document.getElementById('header-token')`)
	b.poll(t, `document.querySelector('main .error').textContent.startsWith('forbidden: ') && !!document.getElementById('use-token')`)
	b.run(t, chromedp.SetValue("#prefix", "Order$", chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById('prefix').dispatchEvent(new Event('input'))`, nil))
	b.poll(t, `!document.querySelector('main .error') && document.querySelector('main p.empty').textContent === 'No stream starts with “Order$”.'`)
	b.open(t, "#/all", "forbidden") // a page that is all or nothing says the token does not reach it
	b.poll(t, `document.querySelector('main .error').textContent.startsWith('forbidden: ') && !!document.getElementById('use-token')`)
	b.run(t, chromedp.Click(`#use-token`, chromedp.ByQuery))
	b.poll(t, `!!document.querySelector('form.token') && !document.getElementById('header-token')`)
	if v := kept(); v != nil {
		t.Fatalf("the token kept after Use another token: %v", v)
	}

	// The dashboard whose token is revoked.
	submit(admin)
	b.poll(t, `document.getElementById('main').dataset.page === 'all'`) // the same address, now reached
	b.open(t, "#/", "dashboard")
	revoked.Store(true)
	b.poll(t, `!!document.querySelector('form.token') && document.querySelector('form.token').innerText.includes('was refused')`)
	var health int
	b.eval(t, `document.querySelectorAll('#health').length`, &health)
	if health != 0 {
		t.Fatal("the dashboard stays after its token was refused")
	}
	if n := statsAfter.Load(); n != 1 {
		t.Fatalf("the stats were asked for %d times after the token was revoked, want 1 (then the token page)", n)
	}
}
