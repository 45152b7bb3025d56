package browsertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserShowsWhatTheAPISays: the pages show what the API answers and nothing it
// does not: names with a slash, a space, # and % or an accent on the stream, process and
// parked pages; an erased event as erased, not as empty; a capped list of caused events
// as capped; integers past 2^53 as written; a command's status and a subscription's
// last error; a process whose id is parked as one the API cannot read; a wrong stuck= or
// filter under the filters; one notice when a live reload fails; and a live table no
// longer than its page.
func TestBrowserShowsWhatTheAPISays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	// Every command and subscription event is parked at its first failure: the receiver is down.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(down.Close)
	d := startDaemon(t, "--config", operatorConfig(t, down.URL, down.URL))
	names := []string{"a/b", "a b#c%d", "été"}
	for _, order := range names {
		d.append(t, "Customer$"+order, fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.append(t, "Caterer$"+order, fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.await(t, "CateringMatch.deliveries$"+order, "CommandParked")
	}
	d.await(t, "billing.subscription", "EventParked")
	d.append(t, "Customer$p", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "parked"}})
	d.await(t, "CateringMatch$parked", "DeadlineScheduled")
	d.call(t, "POST", "/v1/streams/Big$1", `{"events":[{"type":"Big","data":{"n":9007199254740993,"m":-9223372036854775808,"u":18446744073709551615}}]}`, http.StatusCreated)
	erasedID := "0195f0c1-7d2a-7000-8000-0000000000e1"
	d.append(t, "Order$80", fact{ID: erasedID, Type: "OrderPlaced", Data: map[string]any{"secret": "x"}})
	d.call(t, "POST", "/v1/streams/Order$80/erase", "", http.StatusNoContent)
	cappedID := d.await(t, "Customer$a/b", "CustomerConfirmedMenu").ID

	var failReads atomic.Bool
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.URL.Path == "/v1/events/"+cappedID:
			// The daemon caps caused and streams at 1000: this event stands for one past that.
			res, err := http.Get(d.base + r.URL.RequestURI())
			if err != nil {
				t.Error(err)
				return false
			}
			defer res.Body.Close()
			var body map[string]any
			b, _ := io.ReadAll(res.Body)
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("GET %s: %s: %v", r.URL, b, err)
				return false
			}
			body["caused_truncated"], body["streams_truncated"] = true, true
			answer(w, res.StatusCode, body)
			return true
		case failReads.Load() && strings.HasPrefix(r.URL.Path, "/v1/processes/CateringMatch/"):
			answer(w, http.StatusServiceUnavailable, map[string]any{"error": "unavailable", "message": "the store cannot be read"})
			return true
		}
		return false
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	text := func(t *testing.T, selector string) string {
		t.Helper()
		var s string
		b.eval(t, fmt.Sprintf(`(n => n ? n.innerText : '<missing>')(document.querySelector(%q))`, selector), &s)
		return s
	}

	t.Run("names", func(t *testing.T) {
		defer b.check(t)
		for _, name := range names {
			b.open(t, "#/streams/"+url.PathEscape("CateringMatch$"+name), "stream")
			if h := text(t, "main h1"); h != "Stream CateringMatch$"+name && h != "StreamCateringMatch$"+name {
				t.Errorf("stream page of %q is headed %q", name, h)
			}
			b.click(t, "main p a", "process")
			b.poll(t, fmt.Sprintf(`document.querySelector('main h1').textContent === 'ProcessCateringMatch$' + %q`, name))
			b.poll(t, `!!document.querySelector('#timeline [data-status="parked"]')`)
		}
		// The process page of the last name: its parked command is retried from there.
		b.run(t, chromedp.Click(`#timeline button[data-action="retry"]`, chromedp.ByQuery))
		b.poll(t, `(r => r.dataset.outcome === 'done' && r.textContent.startsWith('Retry ConfirmOrder of CateringMatch$été: done.'))(document.getElementById('action-result'))`)
		b.open(t, "#/parked", "parked")
		for _, name := range names {
			b.poll(t, fmt.Sprintf(`[...document.querySelectorAll('tr[data-process]')].some((tr) => tr.dataset.process === %q && tr.querySelector('a').textContent === %q)`, name, name))
		}
	})

	t.Run("erased and capped event", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/events/"+erasedID, "event")
		if !strings.Contains(text(t, "main h1"), "erased") || !strings.Contains(text(t, "main .cols"), "Erased: the data") ||
			!strings.Contains(text(t, "#correlation"), "not known") || !strings.Contains(text(t, "#causation"), "not known") {
			t.Errorf("the erased event's page shows %q", text(t, "main"))
		}
		b.open(t, "#/events/"+cappedID, "event")
		if !strings.Contains(text(t, "#caused-truncated"), "more events name this one") || !strings.Contains(text(t, "#streams-truncated"), "and more") {
			t.Errorf("the capped event's page shows %q", text(t, "main"))
		}
	})

	t.Run("large integers", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/streams/Big%241", "stream")
		for _, want := range []string{`"n":9007199254740993`, `"m":-9223372036854775808`, `"u":18446744073709551615`} {
			if got := text(t, "main tbody td.preview"); !strings.Contains(got, want) {
				t.Errorf("the stream page shows %s, want %s in it", got, want)
			}
		}
		b.click(t, "main tbody td.id a", "event")
		for _, want := range []string{`"n": 9007199254740993`, `"m": -9223372036854775808`, `"u": 18446744073709551615`} {
			if got := text(t, "main .cols pre"); !strings.Contains(got, want) {
				t.Errorf("the event page shows %s, want %s in it", got, want)
			}
		}
	})

	t.Run("subscription's last error", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/", "dashboard")
		if got := text(t, `tr[data-subscription="billing"] td.last-error`); !strings.Contains(got, "503") || !strings.Contains(got, " at ") {
			t.Errorf("the last error of billing shows as %q", got)
		}
	})

	t.Run("process parked", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/processes/CateringMatch/parked", "process")
		if got := text(t, "#cannot-read"); !strings.Contains(got, "cannot read a process whose id is parked") {
			t.Errorf("the page of process parked shows %q", text(t, "main"))
		}
		b.open(t, "#/search?q=parked", "search")
		if got := text(t, "#found-processes"); got != "<missing>" {
			t.Errorf("search for parked found the process %q", got)
		}
	})

	t.Run("process of id . or ..", func(t *testing.T) {
		defer b.check(t)
		// A browser takes the id, even as %2E%2E, for a step in the address: the page
		// says it cannot open it rather than ask the API for another route.
		for _, id := range []string{".", ".."} {
			b.open(t, "#/processes/CateringMatch/"+id, "process")
			if got := text(t, "#cannot-read"); !strings.Contains(got, "cannot open a process whose id is "+id+":") ||
				!strings.Contains(got, "pmd process CateringMatch "+id) {
				t.Errorf("the page of process %s shows %q", id, text(t, "main"))
			}
			b.open(t, "#/search?q="+id, "search")
			if got := text(t, "#cannot-search"); !strings.Contains(got, "cannot look up a process of id "+id) {
				t.Errorf("search for %s shows %q", id, text(t, "main"))
			}
		}
	})

	t.Run("bad filters", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/processes/CateringMatch?stuck=1d", "process-list")
		if got := text(t, "#bad-stuck"); !strings.Contains(got, "stuck= takes a duration such as 90s, 30m, 48h") {
			t.Errorf("stuck=1d: %q", text(t, "main"))
		}
		if got := text(t, "main p.hint"); strings.Contains(got, "1d") {
			t.Errorf("stuck=1d: the hint says %q", got)
		}
		b.open(t, "#/processes/CateringMatch?older_than=1d", "process-list")
		if got := text(t, "main .error:not([hidden])"); !strings.HasPrefix(got, "bad_request: ") || text(t, "#older-than") == "<missing>" {
			t.Errorf("older_than=1d: %q", text(t, "main"))
		}
	})

	t.Run("reload fails", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/processes/CateringMatch/"+url.PathEscape("a/b"), "process")
		b.poll(t, `document.getElementById('live').textContent === '● live'`)
		failReads.Store(true)
		defer failReads.Store(false)
		// Two reloads fail (a failed one is asked for again too): one notice says so.
		for i := range 2 {
			d.append(t, "Customer$a/b", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "a/b", "i": i}})
			b.poll(t, fmt.Sprintf(`Number(document.getElementById('not-current').dataset.failed) >= %d`, i+1))
		}
		b.poll(t, `(n => !n.hidden && n.textContent === 'Not current: unavailable: the store cannot be read')(document.getElementById('not-current'))`)
		var errors int
		b.eval(t, `document.querySelectorAll('main .error').length`, &errors)
		if errors != 1 {
			t.Errorf("%d error notices after failed reloads, want 1", errors)
		}
	})

	t.Run("live table keeps a page", func(t *testing.T) {
		defer b.check(t)
		d.append(t, "Order$81", fact{Type: "OrderPlaced"}, fact{Type: "OrderPlaced"})
		b.open(t, "#/streams/Order%2481?limit=2", "stream")
		b.poll(t, `document.getElementById('live').textContent === '● live'`)
		d.append(t, "Order$81", fact{Type: "OrderPlaced"}, fact{Type: "OrderPlaced"}, fact{Type: "OrderPlaced"})
		b.poll(t, numsJS+` === '4,3'`)
	})
}
