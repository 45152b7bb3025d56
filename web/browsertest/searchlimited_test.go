package browsertest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSearchWithATokenLimitedToStreams: a search with a token limited to some
// streams shows what the token may see and says, in place, what it may not: streams of
// a prefix outside the token's, an event looked up by id (which needs a token for every
// stream), the processes of an id (the list of process managers needs a token for every
// stream). The whole search page gave way to Not allowed, as if nothing could be
// searched; and a refused list of process managers was taken for none, so the page said
// no process manager had a process of the id.
func TestBrowserSearchWithATokenLimitedToStreams(t *testing.T) {
	skipWithoutBrowser(t)
	const orders = "orders-secret"
	sum := sha256.Sum256([]byte(orders))
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(file, []byte("tokens:\n  - {name: orders, sha256: "+hex.EncodeToString(sum[:])+", scopes: [read], streams: [\"Order$\"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--auth", file)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })

	b.open(t, "#/search?q=Order%24", "token")
	b.run(t, chromedp.Evaluate(fmt.Sprintf(`document.getElementById('token').value = %q; document.querySelector('form.token').requestSubmit()`, orders), nil))
	// The token's own prefix: its streams may be listed, not the process managers.
	b.poll(t, `document.getElementById('main').dataset.page === 'search' && !document.getElementById('streams-not-allowed') && !document.getElementById('event-not-allowed') &&
		(n => !!n && n.textContent.includes('not allowed to the token of this tab: forbidden: '))(document.getElementById('processes-not-allowed')) &&
		!!document.getElementById('use-token') && document.getElementById('nothing-found').textContent === 'Nothing found among what the token of this tab may see.'`)

	for _, c := range []struct {
		q               string
		refused, absent []string // the ids of what is said refused, and of what is not shown
	}{
		{"Customer", []string{"streams-not-allowed", "processes-not-allowed"}, []string{"event-not-allowed"}},
		// An id is also the start of a stream name, outside the token's.
		{"0190a6e4-7f1c-7cc2-9d5e-2b1f0e8a4c11", []string{"event-not-allowed", "streams-not-allowed", "processes-not-allowed"}, []string{"no-event"}},
	} {
		b.open(t, "#/search?q="+c.q, "search")
		for _, id := range c.refused {
			b.poll(t, fmt.Sprintf(`(n => !!n && n.textContent.includes('not allowed to the token of this tab: forbidden: '))(document.getElementById(%q))`, id))
		}
		for _, id := range c.absent {
			b.poll(t, fmt.Sprintf(`!document.getElementById(%q)`, id))
		}
		b.poll(t, `!!document.getElementById('use-token') && document.getElementById('nothing-found').textContent === 'Nothing found among what the token of this tab may see.'`)
	}
}
