package browsertest

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBrowserErrorPageIsReadAgain: a page whose first read failed with a 503 (the
// leader changing, the store stopped) shows the error, says it is read again, and
// comes back by itself once the daemon answers; one refused with a 4xx (an address
// the API refuses) or a damaged record (corrupt) says the error only, as reading it
// again would not change it. The error page stayed until read again by hand.
func TestBrowserErrorPageIsReadAgain(t *testing.T) {
	skipWithoutBrowser(t)
	const damagedID = "0190c1d2-0000-7000-8000-00000000d0d0"
	d := startDaemon(t)
	d.append(t, "Order$e1", fact{Type: "OrderPlaced"})
	var fail atomic.Bool // reads of the stream are answered 503
	var failed atomic.Int32
	b := newBrowser(t, front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v1/events/"+damagedID {
			answer(w, http.StatusInternalServerError, map[string]any{"error": "corrupt", "message": "damaged record at position 3: checksum mismatch", "position": 3})
			return true
		}
		if !fail.Load() || r.URL.Path != "/v1/streams/Order$e1" {
			return false
		}
		failed.Add(1)
		answer(w, http.StatusServiceUnavailable, map[string]any{"error": "unavailable", "message": "no leader"})
		return true
	}))
	t.Cleanup(func() { b.check(t) })

	fail.Store(true)
	b.open(t, "#/streams/Order%24e1", "error")
	b.poll(t, `document.querySelector('main .error').textContent === 'unavailable: no leader' && !!document.getElementById('read-again')`)
	b.poll(t, `document.getElementById('read-again').textContent.startsWith('Read again in 2s')`) // asked again once, later the next time
	if n := failed.Load(); n < 2 {
		t.Errorf("the stream was read %d times, want it read again", n)
	}
	fail.Store(false)
	b.poll(t, `document.getElementById('main').dataset.page === 'stream' && `+numsJS+` === '0'`)

	// A 400, and a damaged record (500 corrupt, until pmd repair), are not read again.
	for _, c := range []struct{ fragment, says string }{
		{"#/all?from=x", "bad_request: "},
		{"#/events/" + damagedID, "corrupt: damaged record at position 3"},
	} {
		b.open(t, c.fragment, "error")
		if got := b.text(t, `document.querySelector('main .error').textContent + (document.getElementById('read-again') ? ' (read again)' : '')`); !strings.HasPrefix(got, c.says) || strings.HasSuffix(got, " (read again)") {
			t.Errorf("%s shows %q, want %q and no reading again", c.fragment, got, c.says)
		}
	}
}
