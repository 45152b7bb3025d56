package browsertest

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestBrowserOlderOnlyWhenThereIsOne: a page of the events after N (read forward) links
// to an older page only when an event older than those it shows is there to read; it
// linked to one whenever its oldest event was not at 0, and from the first event kept
// (retention hides those before it) or the first of a type, that led to an empty page
// saying "The log is empty." or "This stream has no events.". An empty older page says
// that no event is at or before where it starts.
func TestBrowserOlderOnlyWhenThereIsOne(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	for range 5 {
		d.append(t, "Paged$1", fact{Type: "PagedOld"})
	}
	// Versions 0 and 1 are hidden: the stream, and the log, keep those from 2 on.
	d.call(t, "PUT", "/v1/streams/Paged%241/metadata", `{"truncate_before":2}`, http.StatusOK)
	d.append(t, "Other$1", fact{Type: "PagedA"})
	for range 3 {
		d.append(t, "Other$1", fact{Type: "PagedB"})
	}
	all, a, bs := d.positions(t, "?limit=100"), d.positions(t, "?limit=100&types=PagedA"), d.positions(t, "?limit=100&types=PagedB")
	if len(all) != 7 || all[0] == 0 || len(a) != 1 || len(bs) != 3 {
		t.Fatalf("the log keeps %v, PagedA at %v, PagedB at %v: want 7 events from after 0, 1 and 3", all, a, bs)
	}
	nums := func(p ...int) string {
		s := make([]string, len(p))
		for i, n := range p {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, ",")
	}

	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	for _, c := range []struct {
		name, page, fragment, shows string
		older                       string // the older page linked to, "" none
		olderShows, empty           string // what that page shows
	}{
		{name: "stream, from the first version kept", page: "stream", fragment: "#/streams/Paged%241?after=1&limit=2", shows: "3,2"},
		{name: "stream, one kept before", page: "stream", fragment: "#/streams/Paged%241?after=2&limit=1", shows: "3",
			older: "#/streams/Paged%241?limit=1&from=2", olderShows: "2"},
		{name: "$all, from the first event kept", page: "all", fragment: fmt.Sprintf("#/all?after=%d&limit=2", all[0]-1), shows: nums(all[1], all[0])},
		{name: "$all, one before", page: "all", fragment: fmt.Sprintf("#/all?after=%d&limit=2", all[1]), shows: nums(all[3], all[2]),
			older: fmt.Sprintf("#/all?limit=2&from=%d", all[1]), olderShows: nums(all[1], all[0])},
		{name: "$all by type, from the first of the type", page: "all", fragment: fmt.Sprintf("#/all?types=PagedB&after=%d&limit=2", a[0]), shows: nums(bs[1], bs[0])},
		{name: "stream, an empty older page", page: "stream", fragment: "#/streams/Paged%241?from=1&limit=2",
			empty: "No event of this stream is at or before version 1."},
		{name: "$all, an empty older page", page: "all", fragment: fmt.Sprintf("#/all?from=%d&limit=2", all[0]-1),
			empty: fmt.Sprintf("No event is at or before position %d.", all[0]-1)},
		{name: "$all by type, an empty older page", page: "all", fragment: fmt.Sprintf("#/all?types=PagedB&from=%d&limit=2", a[0]),
			empty: fmt.Sprintf("No event of type PagedB is at or before position %d.", a[0])},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer b.check(t)
			b.open(t, c.fragment, c.page)
			if c.empty != "" {
				b.poll(t, numsJS+` === ''`)
				var text string
				b.eval(t, `[...document.querySelectorAll('main p.empty')].map((p) => p.textContent).join(' | ')`, &text)
				if text != c.empty {
					t.Errorf("the empty page says %q, want %q", text, c.empty)
				}
				return
			}
			b.poll(t, numsJS+` === '`+c.shows+`'`)
			var older string
			b.eval(t, `(a => a ? a.getAttribute('href') : '')(document.querySelector('main a[rel=next]'))`, &older)
			if older != c.older {
				t.Fatalf("older » links to %q, want %q", older, c.older)
			}
			if older != "" {
				b.click(t, "main a[rel=next]", c.page)
				b.poll(t, numsJS+` === '`+c.olderShows+`'`)
			}
		})
	}
}
