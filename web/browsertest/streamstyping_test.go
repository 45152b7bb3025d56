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

// TestBrowserStreamsFilterTypedIsRefusedAsTheFirst: a prefix typed into the streams
// page's filter that the tab's token does not reach (403) is said under the filter
// with the way to another token, as for the prefix the page was opened with, and one
// answered 401 (the token revoked) asks for a token. Both showed a bare error box.
func TestBrowserStreamsFilterTypedIsRefusedAsTheFirst(t *testing.T) {
	skipWithoutBrowser(t)
	const orders = "orders-secret"
	sum := sha256.Sum256([]byte(orders))
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(file, []byte("tokens:\n  - {name: orders, sha256: "+hex.EncodeToString(sum[:])+`, scopes: [read], streams: ["Order$"]}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--auth", file)
	var revoked atomic.Bool
	b := newBrowser(t, front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if !revoked.Load() {
			return false
		}
		answer(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized", "message": "unknown token"})
		return true
	}))
	t.Cleanup(func() { b.check(t) })
	typeIn := func(prefix string) {
		t.Helper()
		b.run(t, chromedp.SetValue("#prefix", prefix, chromedp.ByQuery),
			chromedp.Evaluate(`document.getElementById('prefix').dispatchEvent(new Event('input'))`, nil))
	}

	b.open(t, "#/streams?prefix=Order%24", "token")
	b.run(t, chromedp.Evaluate(fmt.Sprintf(`document.getElementById('token').value = %q; document.querySelector('form.token').requestSubmit()`, orders), nil))
	b.poll(t, `document.getElementById('main').dataset.page === 'streams' && document.querySelector('main p.empty').textContent === 'No stream starts with “Order$”.'`)
	typeIn("Cust")
	b.poll(t, `(e => !!e && e.textContent.startsWith('forbidden: '))(document.querySelector('main .error')) && !!document.getElementById('use-token') && document.getElementById('prefix').value === 'Cust'`)
	typeIn("Order$")
	b.poll(t, `!document.querySelector('main .error') && document.querySelector('main p.empty').textContent === 'No stream starts with “Order$”.'`)
	revoked.Store(true)
	typeIn("Order$4")
	b.poll(t, `document.getElementById('main').dataset.page === 'token' && document.querySelector('form.token').innerText.includes('was refused')`)
}
