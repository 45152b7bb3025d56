package browsertest

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestBrowserEventMetadataOfAnyJSON: metadata is any JSON object, and the event page
// shows a correlation_id, a causation_id or a caused event's pm_kind that is not a
// string as its JSON: an integer past 2^53, which the page keeps as written, made the
// page fail with "Cannot convert object to primitive value", and an object showed as
// [object Object].
func TestBrowserEventMetadataOfAnyJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	const big, cause = "0195f0c1-7d2a-7000-8000-0000000000b1", "0195f0c1-7d2a-7000-8000-0000000000b2"
	d.call(t, "POST", "/v1/streams/Meta$1", fmt.Sprintf(`{"events":[
		{"id":%q,"type":"Big","metadata":{"correlation_id":12345678901234567890,"causation_id":18446744073709551615}},
		{"id":%q,"type":"Objects","metadata":{"correlation_id":{"by":"hand"},"causation_id":["a",1]}},
		{"type":"Caused","metadata":{"causation_id":%q,"pm_kind":9007199254740993}}]}`, big, cause, cause), http.StatusCreated)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	text := func(selector string) string {
		t.Helper()
		var s string
		b.eval(t, fmt.Sprintf(`(n => n ? n.innerText : '<missing>')(document.querySelector(%q))`, selector), &s)
		return s
	}
	for _, c := range []struct {
		id, correlation, causation, kind string
	}{
		{big, "12345678901234567890", "18446744073709551615 (not stored)", "<missing>"},
		{cause, `{"by":"hand"}`, `["a",1] (not stored)`, "9007199254740993"},
	} {
		b.open(t, "#/events/"+c.id, "event")
		if got := text("#correlation"); got != c.correlation {
			t.Errorf("event %s: correlation %q, want %q", c.id, got, c.correlation)
		}
		if got := text("#causation"); got != c.causation {
			t.Errorf("event %s: caused by %q, want %q", c.id, got, c.causation)
		}
		if got := text("#caused tbody td:nth-child(2)"); got != c.kind {
			t.Errorf("event %s: the caused event's kind %q, want %q", c.id, got, c.kind)
		}
		if main := text("main"); strings.Contains(main, "object") {
			t.Errorf("event %s: the page shows %q", c.id, main)
		}
	}
}
