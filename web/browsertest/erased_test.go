package browsertest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBrowserErasedProcess: a process whose stream was erased (which ended it) says so
// next to its status, in the process list and on its page, and its timeline shows the
// erased records (a command, deadlines, the completion) as erased, not as plain records
// of a command's type; the facts it handled, linked from streams that were not erased,
// stay facts, and a process that was not erased has no mark. The erased process shows no
// state, now or after any event; the other one does.
func TestBrowserErasedProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	// o1 completes (ConfirmOrder, its deadline cancelled); o2 waits with a deadline; o3
	// too, and is not erased.
	d.append(t, "Customer$o1", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "o1"}})
	d.append(t, "Caterer$o1", fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "o1"}})
	d.await(t, "CateringMatch$o1", "ProcessCompleted")
	for _, order := range []string{"o2", "o3"} {
		d.append(t, "Customer$"+order, fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.await(t, "CateringMatch$"+order, "DeadlineScheduled")
	}
	for _, order := range []string{"o1", "o2"} {
		d.call(t, "POST", "/v1/streams/CateringMatch%24"+order+"/erase", "", http.StatusNoContent)
		d.awaitErased(t, "CateringMatch", order)
	}

	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	text := b.text
	const said = "the process stream was erased"

	b.open(t, "#/processes/CateringMatch", "process-list")
	b.poll(t, `document.querySelectorAll('tr[data-process]').length === 3`)
	for _, tc := range []struct {
		id, status string
		erased     bool
	}{
		{"o1", "completed · erased", true},
		{"o2", "completed · erased", true},
		{"o3", "open", false},
	} {
		row := `document.querySelector('tr[data-process="` + tc.id + `"]')`
		if got := text(t, row+`.children[1].textContent`); got != tc.status {
			t.Errorf("the process list shows the status of %s as %q, want %q", tc.id, got, tc.status)
		}
		title := text(t, `(m => m ? m.title : '')(`+row+`.querySelector('.mark.erased'))`)
		if tc.erased && !strings.Contains(title, said) {
			t.Errorf("the erased mark of %s in the process list has the title %q, want one saying %q", tc.id, title, said)
		}
		if !tc.erased && title != "" {
			t.Errorf("process %s, not erased, is marked erased in the process list (%q)", tc.id, title)
		}
	}

	b.open(t, "#/processes/CateringMatch/o1", "process")
	b.poll(t, `document.querySelectorAll('#timeline > li').length === 6`)
	if got := text(t, `document.getElementById('status').textContent`); got != "completed · erased" {
		t.Errorf("the page of o1 shows the status %q, want %q", got, "completed · erased")
	}
	if title := text(t, `(m => m ? m.title : '')(document.querySelector('#status .mark.erased'))`); !strings.Contains(title, said) {
		t.Errorf("the erased mark of o1 has the title %q, want one saying %q", title, said)
	}
	// Each entry: its type, its kind, whether it is marked erased.
	var entries []struct {
		Type, Kind string
		Marked     bool
		Data       string
	}
	b.eval(t, `[...document.querySelectorAll('#timeline > li')].map((li) => ({
		type: li.dataset.type, kind: li.dataset.kind,
		marked: !!li.querySelector('.entry-head .mark.erased'),
		data: li.querySelector('details[data-part="data"]').textContent }))`, &entries)
	kinds := map[string]string{
		"CustomerConfirmedMenu": "fact", "CatererConfirmedMenu": "fact",
		"DeadlineScheduled": "erased", "ConfirmOrder": "erased", "DeadlineCancelled": "erased", "ProcessCompleted": "erased",
	}
	for _, e := range entries {
		want, ok := kinds[e.Type]
		if !ok {
			t.Errorf("the timeline of o1 shows an entry of type %q", e.Type)
			continue
		}
		if e.Kind != want || e.Marked != (want == "erased") {
			t.Errorf("the timeline of o1 shows %s as kind %q, marked erased %v; want kind %q, marked %v", e.Type, e.Kind, e.Marked, want, want == "erased")
		}
		if want == "erased" && !strings.Contains(e.Data, "erased") {
			t.Errorf("the data of the erased %s reads %q, not that it was erased", e.Type, e.Data)
		}
	}

	if got := text(t, `(e => e ? e.textContent : '')(document.getElementById('state'))`); !strings.Contains(got, said) {
		t.Errorf("the state of o1 reads %q, want one saying %q", got, said)
	}
	if n := text(t, `String(document.querySelectorAll('#timeline details.state, #snapshot').length)`); n != "0" {
		t.Errorf("the page of o1, erased, shows %s states or state sources, want none", n)
	}

	b.open(t, "#/processes/CateringMatch/o3", "process")
	b.poll(t, `document.querySelectorAll('#timeline > li').length === 2`)
	if got := text(t, `document.getElementById('status').textContent`); got != "open" {
		t.Errorf("the page of o3, not erased, shows the status %q, want %q", got, "open")
	}
	if n := text(t, `String(document.querySelectorAll('#timeline details.state').length)`); n != "2" || text(t, `(e => e ? e.textContent : '')(document.getElementById('state'))`) != "" {
		t.Errorf("the page of o3, not erased, shows %s states after its 2 events, or says it has none", n)
	}
}

// awaitErased waits until the daemon says process id of manager is erased. It asks
// every 20ms until a deadline: nothing is sent when the process reads its erasure.
func (d *daemon) awaitErased(t *testing.T, manager, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var p struct {
			Status string
			Erased bool
		}
		res, err := http.Get(d.base + "/v1/processes/" + manager + "/" + id)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if p.Erased {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("process %s of %s is not erased within 10s: %+v", id, manager, p)
		case <-tick.C:
		}
	}
}
