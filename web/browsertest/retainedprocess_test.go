package browsertest

import (
	"net/http"
	"strings"
	"testing"
)

// TestBrowserProcessWhoseRecordsRetentionHides: a process whose stream's retention
// hides every record (truncate_before its next version) is shown with no event,
// and its page says that retention hides them. It said "nothing of this process was
// written yet" and "Its stream holds no event yet", which only a process held at its
// first event (with a panic) can be: any other process with no stream is not found.
//
// pmd serve refuses retention settings on a process stream of a manager its
// configuration names, so the retention is set as pm/doc.go says it still can be:
// by a daemon on the same data directory whose configuration does not name the
// manager. Each daemon is stopped when its subtest ends, before the next starts.
func TestBrowserProcessWhoseRecordsRetentionHides(t *testing.T) {
	skipWithoutBrowser(t)
	data := t.TempDir()
	t.Run("the manager writes o1", func(t *testing.T) {
		d := startDaemon(t, "--data", data)
		d.append(t, "Customer$o1", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "o1"}})
		d.await(t, "CateringMatch$o1", "DeadlineScheduled")
	})
	t.Run("a daemon without the manager hides its records", func(t *testing.T) {
		d := startDaemon(t, "--data", data, "--config", "")
		d.call(t, "PUT", "/v1/streams/CateringMatch%24o1/metadata", `{"truncate_before":2}`, http.StatusOK)
	})
	if t.Failed() {
		return
	}
	d := startDaemon(t, "--data", data)

	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	text := b.text
	b.open(t, "#/processes/CateringMatch/o1", "process")
	if got := text(t, `String(document.querySelectorAll('#timeline > li').length) + ' ' + String(document.querySelectorAll('#panic').length)`); got != "0 0" {
		t.Fatalf("the page of o1 shows %q timeline entries and panics, want none of either", got)
	}
	for _, c := range []struct{ id, want string }{
		{"no-events", "No event shown: the stream's retention hides every record of it."},
		{"snapshot", "Its stream shows no record (retention hides them): the state is the one it starts from."},
	} {
		if got := text(t, `(e => e ? e.textContent : '(none)')(document.getElementById('`+c.id+`'))`); got != c.want {
			t.Errorf("#%s of o1, whose records retention hides, says %q, want %q", c.id, got, c.want)
		}
	}
	// The state it starts from: Init's, folded from no event.
	if got := text(t, `document.querySelector('#snapshot + pre.json').textContent`); !strings.Contains(got, `"seen": {}`) {
		t.Errorf("o1, whose records retention hides, shows the state %q, want the one it starts from", got)
	}
}
