package browsertest

import (
	"fmt"
	"net/http"
	"os"
	"testing"
)

// TestBrowserSaysWhyAPageIsEmpty: an empty page says why, and not that the store is
// empty when it is not: the newest page of $all whose events were all deleted said
// "The log is empty.", the streams after the last one said "No streams yet.", and a
// stream whose retention hides every event said "This stream has no events." under the
// streams list's last version of it.
func TestBrowserSaysWhyAPageIsEmpty(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	// No process manager: nothing but these streams writes to the log.
	d := startDaemon(t, "--config", "")
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	text := func(selector string) string {
		t.Helper()
		var s string
		b.eval(t, fmt.Sprintf(`(n => n ? n.innerText : '<missing>')(document.querySelector(%q))`, selector), &s)
		return s
	}
	b.open(t, "#/all", "all")
	if got := text("main p.empty"); got != "The log is empty." {
		t.Errorf("$all of an empty store says %q", got)
	}
	b.open(t, "#/streams", "streams")
	if got := text("main p.empty"); got != "No streams yet." {
		t.Errorf("the streams of an empty store say %q", got)
	}

	d.append(t, "Gone$1", fact{Type: "A"})
	d.call(t, "DELETE", "/v1/streams/Gone$1", "", http.StatusNoContent)
	d.append(t, "Faded$1", fact{Type: "A"}, fact{Type: "A"})
	d.call(t, "PUT", "/v1/streams/Faded%241/metadata", `{"truncate_before":2}`, http.StatusOK)
	for _, c := range []struct{ fragment, page, says string }{
		{"#/all?limit=3", "all", "No event to show: the log holds none that is kept (the events of deleted streams, and those retention hides, are not shown)."},
		{"#/streams?after=Gone%241", "streams", "No more streams."},
		{"#/streams?prefix=G&after=Gone%241", "streams", "No more streams start with “G”."},
		{"#/streams/Faded%241", "stream", "No event of this stream is kept: its retention hides every one written so far."},
	} {
		b.open(t, c.fragment, c.page)
		if got := text("main p.empty"); got != c.says {
			t.Errorf("%s says %q, want %q", c.fragment, got, c.says)
		}
	}
}
