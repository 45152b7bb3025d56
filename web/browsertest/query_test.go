package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// requests keeps the path and query of each request the page sends to the API.
type requests struct {
	mu   sync.Mutex
	seen []*url.URL
	more chan struct{} // closed, and replaced, at each request
}

func (rs *requests) add(u *url.URL) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.seen = append(rs.seen, u)
	close(rs.more)
	rs.more = make(chan struct{})
}

func (rs *requests) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.seen)
}

// await is the query of the first request to path after the first n requests.
func (rs *requests) await(t *testing.T, path string, n int) url.Values {
	t.Helper()
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	for {
		rs.mu.Lock()
		for _, u := range rs.seen[n:] {
			if u.Path == path {
				rs.mu.Unlock()
				return u.Query()
			}
		}
		more := rs.more
		rs.mu.Unlock()
		select {
		case <-more:
		case <-timeout.C:
			t.Fatalf("no request to %s within 15s", path)
		}
	}
}

// TestBrowserQueries: the pages send no query parameter without a value, which the API
// refuses (an address with ?before= or ?limit= empty takes the default), and filter by
// event types as the Go client does: types=A,B, or type= once per type when a type holds
// a comma, which types= would split. So on $all, by its address and by its field (where
// a type with a comma is written in double quotes), and in the live reload of the
// process managers page, whose manager handles such a type.
func TestBrowserQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(receiver.Close)
	config := filepath.Join(t.TempDir(), "pmd.yaml")
	yaml := fmt.Sprintf(`processes:
  - name: Match
    correlate_by: order_id
    handles: ["Menu,Confirmed", Caterer]
    complete_when: all
    issue: {type: ConfirmOrder}
    deliver: {webhook: %s, max_attempts: 1}
`, receiver.URL)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", config)
	rs := &requests{more: make(chan struct{})}
	base := front(t, d, func(_ http.ResponseWriter, r *http.Request) bool {
		u := *r.URL
		rs.add(&u)
		return false
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	d.append(t, "Other$1", fact{Type: "A"}, fact{Type: "C"})
	d.append(t, "Customer$1", fact{Type: "Menu,Confirmed", Data: map[string]any{"order_id": "1"}})

	typesOf := func(q url.Values) url.Values {
		out := url.Values{}
		for _, k := range []string{"type", "types"} {
			if q.Has(k) {
				out[k] = q[k]
			}
		}
		return out
	}
	shows := func(want ...string) {
		t.Helper()
		var got []string
		b.eval(t, `[...document.querySelectorAll('main tbody tr')].map(tr => tr.dataset.type)`, &got)
		if !slices.Equal(got, want) {
			t.Errorf("$all shows types %q, want %q", got, want)
		}
	}

	// The process managers page follows the types its manager handles, one with a comma,
	// and the records of deadlines fired and commands parked, retried or skipped.
	n := rs.count()
	b.open(t, "#/processes", "processes")
	if got, want := typesOf(rs.await(t, "/v1/subscribe", n)), (url.Values{"type": {"Menu,Confirmed", "Caterer",
		"DeadlineFired", "CommandParked", "CommandRetried", "CommandSkipped"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("the processes page follows %v, want %v", got, want)
	}
	n = rs.count()
	d.append(t, "Customer$2", fact{Type: "Menu,Confirmed", Data: map[string]any{"order_id": "2"}})
	rs.await(t, "/v1/processes", n) // reloaded for the event

	// $all by types=, with from= and limit= empty: the newest page, followed live.
	n = rs.count()
	b.open(t, "#/all?types=A,C&from=&limit=", "all")
	shows("C", "A")
	for _, path := range []string{"/v1/all", "/v1/subscribe"} {
		if got, want := typesOf(rs.await(t, path, n)), (url.Values{"types": {"A,C"}}); !reflect.DeepEqual(got, want) {
			t.Errorf("$all by types A,C: %s with %v, want %v", path, got, want)
		}
	}

	// The field takes a type with a comma in double quotes.
	n = rs.count()
	before := b.hash(t)
	b.eval(t, `(i => { i.value = '"Menu,Confirmed", C'; i.dispatchEvent(new Event('change')); })(document.getElementById('types'))`, nil)
	b.shown(t, "all", before)
	if h, want := b.hash(t), "#/all?type=Menu%2CConfirmed&type=C"; h != want {
		t.Errorf("the field's filter went to %s, want %s", h, want)
	}
	var field string
	b.eval(t, `document.getElementById('types').value`, &field)
	if field != `"Menu,Confirmed", C` {
		t.Errorf("the field shows %s", field)
	}
	shows("Menu,Confirmed", "Menu,Confirmed", "C")
	for _, path := range []string{"/v1/all", "/v1/subscribe"} {
		if got, want := typesOf(rs.await(t, path, n)), (url.Values{"type": {"Menu,Confirmed", "C"}}); !reflect.DeepEqual(got, want) {
			t.Errorf("$all by types Menu,Confirmed and C: %s with %v, want %v", path, got, want)
		}
	}
	// Live, the same filter.
	d.append(t, "Other$2", fact{Type: "A"}, fact{Type: "Menu"})
	d.append(t, "Customer$3", fact{Type: "Menu,Confirmed", Data: map[string]any{"order_id": "3"}})
	b.poll(t, `document.querySelectorAll('main tbody tr').length === 4`)
	shows("Menu,Confirmed", "Menu,Confirmed", "Menu,Confirmed", "C")

	// A process page with before= and limit= empty: the newest events.
	n = rs.count()
	b.open(t, "#/processes/Match/2?before=&limit=", "process")
	b.poll(t, `document.getElementById('status') !== null`)
	if q := rs.await(t, "/v1/processes/Match/2", n); len(q) != 0 {
		t.Errorf("the process page asked with %v, want no query", q)
	}

	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, u := range rs.seen {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			t.Errorf("%s: %v", u, err)
		}
		for k, vs := range q {
			if slices.Contains(vs, "") {
				t.Errorf("%s: query parameter %s has no value", u, k)
			}
		}
		if strings.Contains(u.Path, "//") {
			t.Errorf("%s: an unclean path", u)
		}
	}
}
