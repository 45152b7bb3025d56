package browsertest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestBrowserProcessHeldAtItsFirstEvent: a process whose definition panicked at its
// first event has no stream (nothing of it was written); the daemon shows it all the
// same, listed with version -1 and no created time, and as one process with no event,
// the state it starts from, and the panic. Its page says so: the state is the one it
// starts from (not "folded from the first event"), and the timeline holds no event. The
// page read a "version" the process route does not send, so it always said "Folded
// from the first event of the stream" and showed an empty timeline under its heading.
func TestBrowserProcessHeldAtItsFirstEvent(t *testing.T) {
	skipWithoutBrowser(t)
	const panicked = "pm: CateringMatch$held: Apply panicked at version 0: boom"
	d := startDaemon(t)
	d.append(t, "Customer$o1", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "o1"}})
	d.await(t, "CateringMatch$o1", "DeadlineScheduled")
	get := func(path string) (int, map[string]any) {
		res, err := http.Get(d.base + path)
		if err != nil {
			t.Error(err)
			return 0, nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("GET %s: %s: %v", path, b, err)
		}
		return res.StatusCode, body
	}
	// The daemon's answers with a process "held" held at its first event, as pm shows
	// one (TestAProcessHeldAtItsFirstEventIsShown): a daemon's manager from the config
	// file cannot be made to panic. The process route's answer is o1's with its stream's
	// records taken out, so that it has every field the daemon sends, and no other, and
	// each field that says where the process's streams end set as pm sets it for a
	// process with no record: o1's would say it has some.
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/v1/processes/CateringMatch":
			status, body := get(r.URL.RequestURI())
			if list, ok := body["processes"].([]any); ok {
				held := map[string]any{"id": "held", "status": "open", "erased": false, "version": -1, "events": 0,
					"commands": 0, "deadlines": 0, "parked": 0, "damaged": 0, "panic": panicked}
				body["processes"] = append([]any{held}, list...) // "held" sorts before "o1"
			}
			answer(w, status, body)
			return true
		case "/v1/processes/CateringMatch/held":
			status, body := get("/v1/processes/CateringMatch/o1?" + r.URL.RawQuery)
			body["id"], body["stream"], body["deliveries_stream"] = "held", "CateringMatch$held", "CateringMatch.deliveries$held"
			body["events"], body["commands"], body["deadlines"] = []any{}, []any{}, []any{}
			body["state"] = map[string]any{"id": "held", "seen": map[string]any{}, "events": 0, "completed": false, "expired": false}
			body["panic"] = panicked
			body["deliveries_version"], body["snapshot"], body["older"], body["damaged"] = -1, nil, nil, []any{}
			if _, ok := body["version"]; ok { // the route sends none: a held process's would be -1
				body["version"] = -1
			}
			answer(w, status, body)
			return true
		}
		return false
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	text := b.text

	b.open(t, "#/processes/CateringMatch", "process-list")
	b.poll(t, `document.querySelectorAll('tr[data-process]').length === 2`)
	row := `document.querySelector('tr[data-process="held"]')`
	if got := text(t, row+`.querySelector('.mark.held').title`); got != panicked {
		t.Errorf("the process list marks the held process with %q, want the panic", got)
	}
	if got := text(t, row+`.dataset.stuck + ' ' + `+row+`.querySelector('td.age').textContent`); got != "false " {
		t.Errorf("the held process, with no first event, is listed stuck and aged %q, want neither", got)
	}

	b.click(t, `a[href="#/processes/CateringMatch/held"]`, "process")
	if got := text(t, `document.getElementById('panic').textContent`); !strings.Contains(got, panicked) {
		t.Errorf("the page of the held process says %q of the panic, want the panic", got)
	}
	if got := text(t, `document.getElementById('snapshot').textContent`); got != "Its stream holds no event yet: the state is the one it starts from (Init's, or the zero state if Init panicked)." {
		t.Errorf("the page of the held process says %q of its state, want that it is the one it starts from", got)
	}
	if got := text(t, `document.querySelector('#snapshot + pre.json').textContent`); !strings.Contains(got, `"seen": {}`) {
		t.Errorf("the page of the held process shows the state %q, want the one it starts from", got)
	}
	if got := text(t, `String(document.querySelectorAll('#timeline > li').length) + ' ' + (e => e ? e.textContent : '')(document.getElementById('no-events'))`); got != "0 No event: nothing of this process was written yet." {
		t.Errorf("the timeline of the held process shows %q, want no entry and a line saying why", got)
	}
	if got := text(t, `document.getElementById('deadlines').textContent`); got != "None." {
		t.Errorf("the held process's pending deadlines: %q, want None.", got)
	}

	// A process with events says neither.
	b.open(t, "#/processes/CateringMatch/o1", "process")
	if got := text(t, `document.getElementById('snapshot').textContent + ' ' + String(document.querySelectorAll('#no-events').length)`); got != "Folded from the first event of the stream. 0" {
		t.Errorf("the page of o1 says %q of its state", got)
	}
}
