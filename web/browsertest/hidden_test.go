package browsertest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// hideJS and showJS stand for the user leaving a tab for another and coming back: the
// page sees the Page Visibility API say so (headless chromium's tabs are all visible).
const (
	hideJS = `Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
		Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
		document.dispatchEvent(new Event('visibilitychange'))`
	showJS = `delete document.hidden; delete document.visibilityState;
		document.dispatchEvent(new Event('visibilitychange'))`
	badgeJS = `document.getElementById('live').textContent`
)

// openSubscriptions is the daemon's count of open SSE subscriptions (pmd_subscriptions).
func (d *daemon) openSubscriptions(t *testing.T) int {
	t.Helper()
	res, err := http.Get(d.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "pmd_subscriptions "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("pmd_subscriptions %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no pmd_subscriptions: %v", sc.Err())
	return 0
}

// awaitSubscriptions waits until the daemon counts n open subscriptions.
func (d *daemon) awaitSubscriptions(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got := d.openSubscriptions(t)
		if got == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the daemon counts %d open subscriptions, want %d", got, n)
		case <-tick.C:
		}
	}
}

// TestBrowserHiddenTabLetsGo: a tab that is hidden closes its live subscriptions and
// says so, and once shown again reads its newest events and follows them, so the events
// written meanwhile show (TestBrowserShownAgainReadsTheNewestPage). Over HTTP/1.1 a browser gives one server six connections for
// all its tabs, and each subscription holds one: six live tabs left in the background
// kept any further page of the daemon, a new tab's too, from loading at all.
func TestBrowserHiddenTabLetsGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	base := d.browserBase(t)
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })

	for _, c := range []struct{ name, stream, fragment, token string }{
		{"EventSource", "Order$80", "#/streams/Order%2480", ""},
		{"fetch with a token", "Order$81", "#/streams/Order%2481", "any"}, // no --auth: any token passes
	} {
		t.Run(c.name, func(t *testing.T) {
			defer b.check(t)
			if c.token != "" {
				b.eval(t, fmt.Sprintf(`sessionStorage.setItem('pmd-token', %q)`, c.token), nil)
			}
			d.append(t, c.stream, fact{Type: "OrderPlaced"})
			b.open(t, c.fragment, "stream")
			b.poll(t, badgeJS+` === '● live'`)
			d.awaitSubscriptions(t, 1)

			b.eval(t, hideJS, nil)
			b.poll(t, badgeJS+` === '○ paused while the tab is hidden'`)
			d.awaitSubscriptions(t, 0)
			d.append(t, c.stream, fact{Type: "OrderShipped"})

			b.eval(t, showJS, nil)
			b.poll(t, badgeJS+` === '● live'`)
			b.poll(t, numsJS+` === '1,0'`) // the event written while hidden, and no other twice
			d.awaitSubscriptions(t, 1)
			d.append(t, c.stream, fact{Type: "OrderDelivered"})
			b.poll(t, numsJS+` === '2,1,0'`)
		})
	}
	b.eval(t, `sessionStorage.removeItem('pmd-token')`, nil)

	// What it is for: six more tabs, each live and then left for another, and a new tab
	// still loads.
	d.append(t, "Order$82", fact{Type: "OrderPlaced"})
	for i := range 7 {
		ctx, cancel := chromedp.NewContext(b.ctx)
		defer cancel()
		ctx, stop := context.WithTimeout(ctx, 20*time.Second)
		defer stop()
		if err := chromedp.Run(ctx, chromedp.Navigate(base+"/#/streams/Order%2482"),
			chromedp.Poll(`document.getElementById('main').dataset.page === 'stream' && `+badgeJS+` === '● live'`, nil)); err != nil {
			t.Fatalf("tab %d of the stream did not load and go live with %d hidden tabs open: %v", i+2, i, err)
		}
		if err := chromedp.Run(ctx, chromedp.Evaluate(hideJS, nil)); err != nil {
			t.Fatal(err)
		}
	}
}
