package browsertest

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowserShownAgainRecoversWhenTheReadFails: a page of the newest events shown again
// while the daemon cannot answer (a laptop waking before its network, a daemon
// restarting, a proxy's 502) keeps what it showed and resumes its subscription from the
// last event it had, asking again, later each time, until the daemon answers: its read
// afresh failed, and the page was an error page for good, with nothing left to ask again.
// Both with EventSource and, with a token, with fetch.
func TestBrowserShownAgainRecoversWhenTheReadFails(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	var mu sync.Mutex
	down := false
	var refusedSubscribe chan struct{} // closed once a subscription is refused while down
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if !down {
			return false
		}
		if r.URL.Path == "/v1/subscribe" {
			// The page resumes, and is refused too: the daemon is back from here on,
			// to the subscription's next try.
			down = false
			close(refusedSubscribe)
		}
		answer(w, http.StatusBadGateway, map[string]any{"error": "unavailable", "message": "daemon restarting"})
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/streams", "streams") // the tab's sessionStorage is the page's
	for _, c := range []struct{ name, stream, token string }{
		{"EventSource", "Down$1", ""},
		{"fetch", "Down$2", "any"}, // the daemon runs without --auth: any token passes
	} {
		t.Run(c.name, func(t *testing.T) {
			defer b.check(t)
			b.eval(t, `sessionStorage.removeItem('pmd-token')`, nil)
			if c.token != "" {
				b.eval(t, fmt.Sprintf(`sessionStorage.setItem('pmd-token', %q)`, c.token), nil)
			}
			d.append(t, c.stream, fact{Type: "Before"})
			b.open(t, "#/streams/"+url.PathEscape(c.stream), "stream")
			b.poll(t, badgeJS+` === '● live'`)

			b.eval(t, hideJS, nil)
			b.poll(t, badgeJS+` === '○ paused while the tab is hidden'`)
			d.append(t, c.stream, fact{Type: "Meanwhile"})
			mu.Lock()
			down = true
			refused := make(chan struct{})
			refusedSubscribe = refused
			mu.Unlock()
			b.eval(t, showJS, nil)
			select {
			case <-refused:
			case <-time.After(15 * time.Second):
				mu.Lock()
				down = false
				mu.Unlock()
				var text string
				b.eval(t, `document.getElementById('main').innerText + ' | badge: ' + `+badgeJS, &text)
				t.Fatalf("the page shown again did not ask for its subscription again after its read failed; it shows: %s", text)
			}
			// It kept what it showed meanwhile, and comes back by itself.
			var page string
			b.eval(t, `document.getElementById('main').dataset.page`, &page)
			if page != "stream" {
				t.Errorf("the page shown again while the daemon did not answer is %q, want the stream's kept", page)
			}
			b.poll(t, badgeJS+` === '● live'`)
			b.poll(t, `[...document.querySelectorAll('main tbody tr')].map((tr) => tr.dataset.type).join() === 'Meanwhile,Before'`)
			d.append(t, c.stream, fact{Type: "After"})
			b.poll(t, `[...document.querySelectorAll('main tbody tr')].map((tr) => tr.dataset.type).join() === 'After,Meanwhile,Before'`)
		})
	}
}

// TestBrowserShownAgainKeepsAFilterTyped: a filter typed on the processes list, not yet
// applied (no Enter, no tab out), is still there, and still applies, once the tab that
// was hidden is shown again and the list read afresh: the page built anew took the field
// away while it was typed in, which said change and applied the filter half-typed.
func TestBrowserShownAgainKeepsAFilterTyped(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/processes/CateringMatch", "process-list")
	b.poll(t, badgeJS+` === '● live'`)
	b.run(t, chromedp.Click("#older-than", chromedp.ByQuery), chromedp.SendKeys("#older-than", "2h", chromedp.ByQuery))

	// A mark on the list shown: gone once the list is read afresh.
	b.eval(t, `document.querySelector('main h1').dataset.old = 'yes'`, nil)
	b.eval(t, hideJS, nil)
	b.poll(t, badgeJS+` === '○ paused while the tab is hidden'`)
	b.eval(t, showJS, nil)
	b.poll(t, `!document.querySelector('main h1').dataset.old && `+badgeJS+` === '● live'`)
	var got struct {
		Value   string
		Focused bool
	}
	b.eval(t, `(() => { const i = document.getElementById('older-than'); return { value: i.value, focused: document.activeElement === i }; })()`, &got)
	before := b.hash(t)
	if got.Value != "2h" || !got.Focused || before != "#/processes/CateringMatch" {
		t.Fatalf("shown again, the filter typed holds %q (focused: %v) at %s, want \"2h\" still being typed, not applied", got.Value, got.Focused, before)
	}
	b.run(t, chromedp.SendKeys("#older-than", kb.Enter, chromedp.ByQuery))
	b.shown(t, "process-list", before)
	if h := b.hash(t); h != "#/processes/CateringMatch?older_than=2h" {
		t.Errorf("the filter kept applied as %s, want #/processes/CateringMatch?older_than=2h", h)
	}
}
