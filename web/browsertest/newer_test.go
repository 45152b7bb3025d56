package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestBrowserPagesNewer: an older page of a stream or of $all links to the page of the
// events just newer than it, and that one to the next, up to the newest page, which is
// followed live; so an older page opened from a shared address can be paged forward,
// one page at a time, by event type too, and past a damaged record.
func TestBrowserPagesNewer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	for range 7 {
		d.append(t, "Newer$1", fact{Type: "NewerA"})
		d.append(t, "Other$1", fact{Type: "NewerB"})
	}
	// The positions of the NewerA events, oldest first.
	res, err := http.Get(d.base + "/v1/all?types=NewerA&limit=100")
	if err != nil {
		t.Fatal(err)
	}
	var all struct{ Events []struct{ Position int } }
	err = json.NewDecoder(res.Body).Decode(&all)
	res.Body.Close()
	if err != nil || len(all.Events) != 7 {
		t.Fatalf("the NewerA events: %v %+v", err, all)
	}
	a := make([]int, 7)
	for i, ev := range all.Events {
		a[i] = ev.Position
	}
	nums := func(positions ...int) string {
		s := make([]string, len(positions))
		for i, p := range positions {
			s[i] = strconv.Itoa(p)
		}
		return strings.Join(s, ",")
	}
	// The record after a[2] is damaged, as a read forward from it says.
	damaged := a[2] + 1
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		q := r.URL.Query()
		if r.URL.Path != "/v1/all" || q.Get("direction") != "forward" || q.Get("from") != strconv.Itoa(damaged) {
			return false
		}
		answer(w, http.StatusInternalServerError, map[string]any{"error": "corrupt",
			"message":  fmt.Sprintf("damaged record at position %d (version 0 of stream \"Other$1\"): checksum mismatch", damaged),
			"position": damaged, "version": 0})
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	shows := func(want string) {
		t.Helper()
		b.poll(t, numsJS+` === '`+want+`'`)
	}

	t.Run("stream", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/streams/Newer%241?limit=2", "stream")
		shows("6,5")
		if b.has(t, "#newer") {
			t.Error("the newest page links to a newer one")
		}
		b.click(t, "a[rel=next]", "stream")
		shows("4,3")
		b.click(t, "a[rel=next]", "stream")
		shows("2,1")
		b.click(t, "#newer", "stream")
		shows("4,3")
		// The events after 4 are the newest: that page is the newest page, live.
		b.click(t, "#newer", "stream")
		shows("6,5")
		b.poll(t, `location.hash === '#/streams/Newer%241?limit=2' && !document.getElementById('newer') && `+badgeJS+` === '● live'`)

		// An older page opened from its address.
		b.open(t, "#/streams/Newer%241?from=1&limit=2", "stream")
		shows("1,0")
		b.click(t, "#newer", "stream")
		shows("3,2")
		b.click(t, "a[rel=next]", "stream")
		shows("1,0")
	})

	t.Run("$all by type, past a damaged record", func(t *testing.T) {
		defer b.check(t)
		b.open(t, fmt.Sprintf("#/all?types=NewerA&from=%d&limit=2", a[2]), "all")
		shows(nums(a[2], a[1]))
		b.click(t, "#newer", "all")
		b.poll(t, `document.querySelector('main .error').textContent.startsWith('corrupt: damaged record at position `+strconv.Itoa(damaged)+`')`)
		b.click(t, "#past-damage", "all")
		shows(nums(a[4], a[3]))
		b.click(t, "#newer", "all")
		shows(nums(a[6], a[5]))
		b.poll(t, `location.hash === '#/all?types=NewerA&limit=2' && `+badgeJS+` === '● live'`)
	})
}

// has reports whether the page has an element that matches selector.
func (b *browser) has(t *testing.T, selector string) bool {
	t.Helper()
	var ok bool
	b.eval(t, fmt.Sprintf(`!!document.querySelector(%q)`, selector), &ok)
	return ok
}
