package browsertest

import (
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserStreamFilterKeepsTheLatestAnswer: typing in the streams filter reads the
// list for each prefix typed; the list shown is that of the last one, and a read of an
// earlier prefix that fails after it was answered is dropped, as one that succeeds is:
// its error replaced the list of what was typed last.
func TestBrowserStreamFilterKeepsTheLatestAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t, "--config", "")
	d.append(t, "Alpha$1", fact{Type: "A"})
	held, release := make(chan struct{}, 1), make(chan struct{})
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/streams" || r.URL.Query().Get("prefix") != "A" {
			return false
		}
		held <- struct{}{}
		<-release
		answer(w, http.StatusServiceUnavailable, map[string]any{"error": "unavailable", "message": "the store cannot be read"})
		return true
	})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the front closes, which waits for the answer held
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/streams", "streams")
	// settled lists the requests whose answers the page has read, once what it does
	// with them is done: the timer runs after the promise callbacks that read it.
	b.eval(t, `(() => {
		const f = window.fetch;
		window.settled = [];
		window.fetch = (...a) => f(...a).then((res) => {
			const text = res.text.bind(res);
			res.text = () => text().then((x) => { setTimeout(() => window.settled.push(String(a[0]))); return x; });
			return res;
		});
	})()`, nil)
	typeIn := func(prefix string) {
		t.Helper()
		b.run(t, chromedp.SetValue("#prefix", prefix, chromedp.ByQuery),
			chromedp.Evaluate(`document.getElementById('prefix').dispatchEvent(new Event('input'))`, nil))
	}
	typeIn("A")
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the page did not read the streams of prefix A")
	}
	typeIn("Al")
	b.poll(t, `location.hash === '#/streams?prefix=Al' && document.getElementById('main').dataset.route === location.hash &&
		[...document.querySelectorAll('tr[data-stream]')].map((tr) => tr.dataset.stream).join() === 'Alpha$1'`)
	unblock()
	b.poll(t, `window.settled.some((u) => u.includes('prefix=A&'))`)
	var shown string
	b.eval(t, `[...document.querySelectorAll('tr[data-stream]')].map((tr) => tr.dataset.stream).join() + (document.querySelector('main .error') ? ' and an error' : '')`, &shown)
	if shown != "Alpha$1" {
		t.Errorf("after the read of prefix A failed late, the page shows %q, want Alpha$1", shown)
	}
}
