package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pmd-dev/pmd/web"
)

// TestBrowserCategory: a category's page shows the events written to its streams,
// newest first, with the stream of each, paged as $all is, and follows them live; a
// stream page and the streams list link to it. Empty, it says whether nothing was
// written yet (an empty log) or nothing is kept (its streams deleted).
func TestBrowserCategory(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	for i := range 3 {
		d.append(t, fmt.Sprintf("Shelf$%d", i), fact{Type: "Stocked", Data: map[string]any{"n": i}})
		d.append(t, "Shelves", fact{Type: "NotOfIt"}) // Shelves is not a stream of Shelf
	}
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	// The streams of the rows shown, top to bottom.
	const streamsJS = `[...document.querySelectorAll('main tbody tr td.origin')].map((td) => td.textContent).join(',')`

	t.Run("from a stream page, paged", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/streams/Shelf%241", "stream")
		b.click(t, "#category a", "category")
		if h := b.hash(t); h != "#/categories/Shelf" {
			t.Fatalf("the category link went to %s", h)
		}
		b.poll(t, streamsJS+` === 'Shelf$2,Shelf$1,Shelf$0'`)
		b.open(t, "#/categories/Shelf?limit=2", "category")
		b.poll(t, streamsJS+` === 'Shelf$2,Shelf$1'`)
		b.click(t, "a[rel=next]", "category")
		b.poll(t, streamsJS+` === 'Shelf$0'`)
		if b.has(t, "a[rel=next]") {
			t.Error("the oldest page links to an older one")
		}
		b.click(t, "#newer", "category")
		b.poll(t, streamsJS+` === 'Shelf$2,Shelf$1' && location.hash === '#/categories/Shelf?limit=2'`)
	})

	t.Run("live", func(t *testing.T) {
		defer b.check(t)
		b.poll(t, badgeJS+` === '● live'`)
		d.append(t, "Shelves", fact{Type: "NotOfIt"})
		d.append(t, "Shelf$9", fact{Type: "Restocked"})
		b.poll(t, streamsJS+` === 'Shelf$9,Shelf$2'`)
		var types string
		b.eval(t, `[...document.querySelectorAll('main tbody tr')].map((tr) => tr.dataset.type).join(',')`, &types)
		if types != "Restocked,Stocked" {
			t.Errorf("types shown %s, want Restocked,Stocked: an event of another category came live", types)
		}
	})

	t.Run("empty, then live", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/categories/Crate", "category")
		b.poll(t, `document.querySelector('main p.empty') !== null && `+badgeJS+` === '● live'`)
		d.append(t, "Crate$1", fact{Type: "Packed"})
		b.poll(t, streamsJS+` === 'Crate$1'`)
	})

	t.Run("all its streams deleted", func(t *testing.T) {
		// The log is not empty: the page does not say that nothing was written.
		defer b.check(t)
		d.append(t, "Bin$1", fact{Type: "Emptied"})
		d.call(t, "DELETE", "/v1/streams/Bin%241", "", http.StatusNoContent)
		b.open(t, "#/categories/Bin", "category")
		b.poll(t, `document.querySelector('main p.empty')?.textContent === 'No event of a stream Bin$… is kept.'`)
	})

	t.Run("from the streams list", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/streams?prefix=Shel", "streams")
		if !b.has(t, `tr[data-stream="Shelves"]`) || b.has(t, `tr[data-stream="Shelves"] a[href^="#/categories/"]`) {
			t.Error("Shelves, a stream of no category, is not listed or links to a category")
		}
		b.click(t, `tr[data-stream="Shelf$0"] `+to("#/categories/Shelf"), "category")
	})

	t.Run("a stream name", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/categories/Shelf%241", "category")
		b.poll(t, `document.querySelector('main .error').textContent.startsWith('bad_request:') && !!document.querySelector('main a[href="#/streams/Shelf%241"]')`)
	})
}

// counting counts the bytes of the answers it passes on.
type counting struct {
	http.ResponseWriter
	n *int64
	sync.Locker
}

func (c counting) Write(p []byte) (int, error) {
	c.Lock()
	*c.n += int64(len(p))
	c.Unlock()
	return c.ResponseWriter.Write(p)
}

func (c counting) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// TestBrowserNewestEventNotRead: the pages that follow the log live from its end ($all
// by type, a category, the process managers, the processes of one) learn where it ends
// without reading its newest event, which can be megabytes, nor asking for the stats: on
// a cluster node those ask every peer how it stands (a second with one down), and fail
// when Raft cannot say. Here the stats fail.
func TestBrowserNewestEventNotRead(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	d.append(t, "Note$1", fact{Type: "Noted"})
	const huge = 4 << 20
	d.append(t, "Blob$1", fact{Type: "BlobStored", Data: map[string]any{"bytes": strings.Repeat("x", huge)}})

	api, err := url.Parse(d.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(api)
	proxy.FlushInterval = -1 // Server-Sent Events pass through as they come
	var mu sync.Mutex
	var sent int64
	var stats int // asked for
	mux := http.NewServeMux()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxy.ServeHTTP(counting{w, &sent, &mu}, r)
	})
	mux.Handle("/v1/", counted)
	mux.Handle("/healthz", counted)
	mux.HandleFunc("/v1/stats", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stats++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":"unavailable","message":"cluster: the configuration cannot be read"}`)
	})
	mux.Handle("/", web.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	b := newBrowser(t, ts.URL)
	t.Cleanup(func() { b.check(t) })

	for _, c := range []struct{ fragment, page string }{
		{"#/all?types=Noted", "all"},
		{"#/categories/Note", "category"},
		{"#/processes", "processes"},
		{"#/processes/CateringMatch", "process-list"},
	} {
		t.Run(c.page, func(t *testing.T) {
			defer b.check(t)
			mu.Lock()
			sent, stats = 0, 0
			mu.Unlock()
			b.open(t, c.fragment, c.page)
			b.poll(t, badgeJS+` === '● live'`)
			mu.Lock()
			n, asked := sent, stats
			mu.Unlock()
			if n >= huge {
				t.Errorf("%s: the API sent %d bytes, the newest event is %d", c.fragment, n, huge)
			}
			if asked != 0 {
				t.Errorf("%s: the stats were asked for %d times, want none", c.fragment, asked)
			}
		})
	}
}
