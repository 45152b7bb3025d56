package browsertest

import (
	"encoding/json"
	"sync"
	"testing"
)

// TestBrowserProcessesReadAgainWhileBehind: the page of process managers reads itself
// again while a manager is behind the log (the page of a manager's processes does as
// well; its reads again are not checked here). It read again on the facts it follows,
// which come as they are written, before the manager has handled them: a read that
// found the manager behind was the last until another fact came, so 4,000 facts in one
// append left the page at 263 open processes and a lag of 3,862 for good, the manager
// long caught up. The daemon's answer is held at what it was before a fact, with a lag,
// for the read that fact causes: a manager behind cannot be arranged at the moment the
// page reads.
func TestBrowserProcessesReadAgainWhileBehind(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	confirm := func(order string) {
		t.Helper()
		d.append(t, "Customer$"+order, fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.await(t, "CateringMatch$"+order, "DeadlineScheduled")
	}
	confirm("o1")

	var (
		mu      sync.Mutex
		holding bool
		last    []byte // the answer last passed through
	)
	hold := func(on bool) {
		mu.Lock()
		defer mu.Unlock()
		holding = on
	}
	base := frontEditing(t, d, func(body map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		if !holding {
			b, err := json.Marshal(body)
			if err != nil {
				t.Error(err)
			}
			last = b
			return
		}
		clear(body)
		if err := json.Unmarshal(last, &body); err != nil {
			t.Error(err)
		}
		for _, m := range body["processes"].([]any) {
			m.(map[string]any)["lag"] = 5
		}
	}, "/v1/processes")
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })

	b.open(t, "#/processes", "processes")
	b.poll(t, `document.querySelector('tr[data-manager="CateringMatch"] td.open').textContent === '1'`)
	hold(true)
	confirm("o2")
	b.poll(t, `document.querySelector('tr[data-manager="CateringMatch"] td.lag').textContent === '5'`)
	hold(false)
	b.poll(t, `(r => r.querySelector('td.open').textContent === '2' && r.querySelector('td.lag').textContent === '0')(document.querySelector('tr[data-manager="CateringMatch"]'))`)
}
