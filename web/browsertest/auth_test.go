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
	const token = "browser-secret"
	sum := sha256.Sum256([]byte(token))
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(file, []byte("tokens:\n  - {name: browser, sha256: "+hex.EncodeToString(sum[:])+", scopes: [write]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--auth", file)
	appendWith := func(stream string) {
		t.Helper()
		req, _ := http.NewRequest("POST", d.base+"/v1/streams/"+stream, bytes.NewReader([]byte(`{"events":[{"type":"OrderPlaced"}]}`)))
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
}
