package browsertest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// lateAnswers is a front that can answer a read late with an old answer: armed with a
// path, it holds the next GET of that path until released, then answers it with the
// path's first answer, the page's own when it was opened; reads asked for meanwhile go
// through. That is a read overtaken by the next one: a slow daemon, a lost packet.
type lateAnswers struct {
	proxy   *httputil.ReverseProxy
	mu      sync.Mutex
	first   map[string]*httptest.ResponseRecorder
	armed   string
	held    chan struct{}
	release chan struct{}
}

func newLateAnswers(t *testing.T, d *daemon) *lateAnswers {
	api, err := url.Parse(d.base)
	if err != nil {
		t.Fatal(err)
	}
	return &lateAnswers{proxy: httputil.NewSingleHostReverseProxy(api), first: map[string]*httptest.ResponseRecorder{},
		held: make(chan struct{}, 1), release: make(chan struct{})}
}

func (l *lateAnswers) handle(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet || r.URL.Path == "/v1/subscribe" {
		return false
	}
	l.mu.Lock()
	first, late := l.first[r.URL.Path], l.armed == r.URL.Path
	if late {
		l.armed = ""
	}
	l.mu.Unlock()
	switch {
	case first == nil:
		rec := httptest.NewRecorder()
		l.proxy.ServeHTTP(rec, r)
		l.mu.Lock()
		l.first[r.URL.Path] = rec
		l.mu.Unlock()
		first = rec
	case late:
		l.held <- struct{}{}
		select {
		case <-l.release:
		case <-r.Context().Done():
			return true
		}
		w.Header().Set("X-Late", "1")
	default:
		return false
	}
	for k, v := range first.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(first.Code)
	_, _ = w.Write(first.Body.Bytes())
	return true
}

// arm has the next read of path answered late.
func (l *lateAnswers) arm(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = path
}

// awaitHeld waits until the armed read is held.
func (l *lateAnswers) awaitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-l.held:
	case <-time.After(20 * time.Second):
		t.Fatal("the page did not read again within 20s")
	}
}

// lateSettledJS marks, in window.lateSettled, that the page has done with the late
// answer: its body read, and every step of the page's that awaited it run (they are
// microtasks, run before the timeout's task).
const lateSettledJS = `(() => {
	const f = window.fetch;
	window.lateSettled = false;
	window.fetch = async (...a) => {
		const res = await f(...a);
		if (res.headers.get('X-Late')) {
			const text = res.text.bind(res);
			res.text = () => text().then((t) => { setTimeout(() => { window.lateSettled = true; }); return t; });
		}
		return res;
	};
})()`

// TestBrowserProcessPagesDropAnOverTakenRead: the pages of process managers, of a
// manager's processes, of a process and of parked commands read themselves again as
// facts come and commands park; a read answered after a later one (a slow daemon) is
// dropped, and the page keeps the newer answer. The older answer replaced it: the
// page went back to a process open that was completed, or to a count of completed
// processes since passed, until the next fact.
func TestBrowserProcessPagesDropAnOverTakenRead(t *testing.T) {
	skipWithoutBrowser(t)
	d, park := parkingDaemon(t) // each command issued parks, for the parked page
	late := newLateAnswers(t, d)
	b := newBrowser(t, front(t, d, late.handle))
	t.Cleanup(func() { b.check(t) })
	confirm := func(order string, types ...string) {
		t.Helper()
		for _, typ := range types {
			d.append(t, typ[:len(typ)-len("ConfirmedMenu")]+"$"+order, fact{Type: typ, Data: map[string]any{"order_id": order}})
		}
	}
	const customer, caterer = "CustomerConfirmedMenu", "CatererConfirmedMenu"

	for _, c := range []struct {
		page, fragment, path string
		before               func() // what the page shows first
		older, newer         func() // what the held read, then the one after it, follow
		shows                string // the newer read, in the page
	}{
		{"processes", "#/processes", "/v1/processes", func() {},
			func() { confirm("q1", customer, caterer) },
			func() { confirm("q2", customer, caterer); d.awaitCompleted(t, "CateringMatch", 2) },
			`document.querySelector('tr[data-manager="CateringMatch"] td.completed').textContent === '2'`},
		{"process-list", "#/processes/CateringMatch", "/v1/processes/CateringMatch", func() {},
			func() { confirm("q3", customer, caterer) },
			func() { confirm("q4", customer, caterer); d.awaitCompleted(t, "CateringMatch", 4) },
			`!!document.querySelector('tr[data-process="q4"]')`},
		{"process", "#/processes/CateringMatch/q5", "/v1/processes/CateringMatch/q5", func() { confirm("q5", customer); d.await(t, "CateringMatch$q5", customer) },
			func() { confirm("q5", customer) },
			func() { confirm("q5", caterer); d.awaitCompleted(t, "CateringMatch", 5) },
			`document.getElementById('status').textContent === 'completed'`},
		{"parked", "#/parked", "/v1/processes/CateringMatch/parked", func() {},
			func() { park("q6") },
			func() { park("q7") },
			`!!document.querySelector('tr[data-process="q7"]')`},
	} {
		c.before()
		b.open(t, c.fragment, c.page)
		b.poll(t, `document.getElementById('live').textContent === '● live'`)
		b.eval(t, lateSettledJS, nil)
		late.arm(c.path)
		c.older()
		late.awaitHeld(t)
		c.newer()
		b.poll(t, c.shows)
		late.release <- struct{}{}
		b.poll(t, `window.lateSettled`)
		// At once: a read after it would show the newer state again.
		var kept bool
		if b.eval(t, c.shows, &kept); !kept {
			t.Errorf("%s: the answer of an older read replaced that of a newer one: %s", c.fragment, b.text(t, `document.getElementById('main').innerText`))
		}
	}
}
