package browsertest

import (
	"net/http"
	"testing"
)

// TestBrowserLiveStreamDropsWhatRetentionNoLongerKeeps: the newest page of a stream
// that keeps its newest 3 versions (max_count) drops the row of the oldest as an event
// comes live, as a reload would show, and its older link with it when nothing older is
// kept. Every live row was kept: the page showed versions the store had dropped.
func TestBrowserLiveStreamDropsWhatRetentionNoLongerKeeps(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	for range 3 {
		d.append(t, "Kept$2", fact{Type: "Noted"})
	}
	d.call(t, "PUT", "/v1/streams/Kept%242/metadata", `{"max_count":3}`, http.StatusOK)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })

	for _, c := range []struct {
		fragment, before, after string // the versions shown before the event and after it
		older                   string // the older link after it, "" none
	}{
		{"#/streams/Kept%242", "2,1,0", "3,2,1", ""},
		{"#/streams/Kept%242?limit=2", "3,2", "4,3", "#/streams/Kept%242?limit=2&from=2"},
		{"#/streams/Kept%242?limit=3", "4,3,2", "5,4,3", ""},
	} {
		b.open(t, c.fragment, "stream")
		b.poll(t, numsJS+` === '`+c.before+`' && document.getElementById('live').textContent === '● live'`)
		d.append(t, "Kept$2", fact{Type: "Noted"})
		b.poll(t, numsJS+` === '`+c.after+`'`)
		if got := nextLink(t, b); got != c.older {
			t.Errorf("%s: the older link after a live event is %q, want %q", c.fragment, got, c.older)
		}
	}
}
