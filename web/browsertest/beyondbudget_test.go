package browsertest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBrowserEventRelativesBeyondTheBudget: an event whose cause and caused events the
// daemon's memory budget had no room for (causation null with causation_omitted, caused
// empty with caused_truncated) shows its cause as stored, linked, and says its caused
// events could not be listed. The page showed the cause as "<id> (not stored)", and
// "the first 0: more events name this one" over "No stored event names this one".
func TestBrowserEventRelativesBeyondTheBudget(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	const cause, event = "0195f0c1-7d2a-7000-8000-0000000000c1", "0195f0c1-7d2a-7000-8000-0000000000c2"
	d.call(t, "POST", "/v1/streams/Budget$1", fmt.Sprintf(`{"events":[
		{"id":%q,"type":"Cause"},
		{"id":%q,"type":"Event","metadata":{"causation_id":%q}},
		{"type":"Caused","metadata":{"causation_id":%q}}]}`, cause, event, cause, event), http.StatusCreated)
	// The budget is hard to fill from here: the daemon's answer is made one it had no
	// room in (server.TestEventRelativesBeyondTheBudget shows the daemon answers so).
	base := frontEditing(t, d, func(body map[string]any) {
		if body["causation"] == nil || len(body["caused"].([]any)) != 1 {
			t.Errorf("GET /v1/events/%s: the daemon's answer lacks the cause or the caused event: %v", event, body)
		}
		body["causation"], body["causation_omitted"] = nil, true
		body["caused"], body["caused_truncated"] = []any{}, true
	}, "/v1/events/"+event)
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	text := func(selector string) string {
		t.Helper()
		var s string
		b.eval(t, fmt.Sprintf(`(n => n ? n.innerText : '<missing>')(document.querySelector(%q))`, selector), &s)
		return s
	}

	b.open(t, "#/events/"+event, "event")
	if got := text("#causation"); strings.Contains(got, "not stored") || !strings.Contains(got, "memory budget had no room") {
		t.Errorf("caused by %q, want the cause stored and left out for the memory budget", got)
	}
	if got := text("#causation a.event"); got != cause {
		t.Errorf("the cause links %q, want %s", got, cause)
	}
	if got := text("#caused-truncated"); got != "<missing>" {
		t.Errorf("the caused events are headed %q: none is listed", got)
	}
	if got := text("#caused"); strings.Contains(got, "No stored event") || !strings.Contains(got, "none could be listed within the server's memory budget") {
		t.Errorf("caused %q, want none listed within the memory budget", got)
	}
	// The link reads the cause on its own page.
	b.click(t, "#causation a.event", "event")
	if got := text("#event-id"); got != cause {
		t.Errorf("the cause's link opened event %q, want %s", got, cause)
	}
}
