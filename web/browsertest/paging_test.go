package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pmd-dev/pmd/web"
)

// skipWithoutBrowser skips the test in -short, and where chromium is not installed: the
// browser tests build pmd and drive a headless chromium.
func skipWithoutBrowser(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
}

// front serves the browser and the daemon's API on one origin, with handle answering
// in the daemon's place wherever it returns true.
func front(t *testing.T, d *daemon, handle func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	api, err := url.Parse(d.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(api)
	proxy.FlushInterval = -1 // Server-Sent Events pass through as they come
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		if handle == nil || !handle(w, r) {
			proxy.ServeHTTP(w, r)
		}
	})
	mux.Handle("/healthz", proxy) // where the page learns where the log ends
	mux.Handle("/", web.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

// answer writes the daemon's JSON error body.
func answer(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// lastPosition is the position of the newest record of the log.
func (d *daemon) lastPosition(t *testing.T) int {
	t.Helper()
	res, err := http.Get(d.base + "/v1/all?direction=backward&limit=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct{ Events []struct{ Position int } }
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || len(r.Events) != 1 {
		t.Fatalf("read the last position: %v %+v", err, r)
	}
	return r.Events[0].Position
}

// positions reads /v1/all with query (from its "?") and returns the positions of the
// events it answers with, in its order.
func (d *daemon) positions(t *testing.T, query string) []int {
	t.Helper()
	res, err := http.Get(d.base + "/v1/all" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct{ Events []struct{ Position int } }
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	p := make([]int, len(r.Events))
	for i, ev := range r.Events {
		p[i] = ev.Position
	}
	return p
}

// poll waits until expr is true in the page, and says what the page shows if it never is.
func (b *browser) poll(t *testing.T, expr string) {
	t.Helper()
	if err := chromedp.Run(b.ctx, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		var text string
		b.eval(t, `document.getElementById('main').innerText + ' | badge: ' + document.getElementById('live').textContent`, &text)
		t.Fatalf("%s: %v; the page shows: %s", expr, err, text)
	}
}

const numsJS = `[...document.querySelectorAll('main tbody tr td.num')].map((td) => td.textContent).join(',')`

// TestBrowserPagesPastADamagedRecord: an older page whose read starts at a damaged
// record (corrupt, naming it by position and version) shows the error and a link past
// it that reads on from the record before, in a stream and in $all.
func TestBrowserPagesPastADamagedRecord(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	for i := range 10 {
		d.append(t, "Order$60", fact{Type: "OrderPlaced", Data: map[string]any{"n": i}})
	}
	last := d.lastPosition(t)
	damagedPosition := last - 4 // version 5 of Order$60
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		from := r.URL.Query().Get("from")
		switch {
		case r.URL.Path == "/v1/streams/Order$60" && from == "5",
			r.URL.Path == "/v1/all" && from == strconv.Itoa(damagedPosition):
			answer(w, http.StatusInternalServerError, map[string]any{"error": "corrupt",
				"message":  fmt.Sprintf("damaged record at position %d (version 5 of stream \"Order$60\"): checksum mismatch", damagedPosition),
				"position": damagedPosition, "version": 5})
			return true
		}
		return false
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	nums := func(i int) string {
		s := make([]string, 4)
		for j := range s {
			s[j] = strconv.Itoa(i - j)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		name, page, first string
		newest, past      int // the first row's number on the first page and past the damaged record
	}{
		{"stream", "stream", "#/streams/Order%2460?limit=4", 9, 4},
		{"$all", "all", "#/all?limit=4", last, damagedPosition - 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer b.check(t)
			b.open(t, c.first, c.page)
			b.poll(t, numsJS+` === '`+nums(c.newest)+`'`)
			b.click(t, `a[rel=next]`, c.page)
			b.poll(t, `document.querySelector('main .error').textContent.startsWith('corrupt: damaged record at position')`)
			b.click(t, `#past-damage`, c.page)
			b.poll(t, numsJS+` === '`+nums(c.past)+`'`)
		})
	}
}
