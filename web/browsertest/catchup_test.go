package browsertest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// TestBrowserProcessesReadAgainWhileBehind: the pages of process managers and of a
// manager's processes read themselves again while the manager is behind the log. They
// read again on the facts they follow, which come as they are written, before the
// manager has handled them: a read that found the manager behind was the last until
// another fact came, so 4,000 facts in one append left the page at 263 open processes
// and a lag of 3,862 for good, the manager long caught up. The daemon's answers are held
// at what they were before a fact, with a lag, for the read that fact causes: a manager
// behind cannot be arranged at the moment the page reads. The page of a manager's
// processes read its list and the manager's lag together: the list could be answered
// as it was before the fact and the lag after it, 0, and the page kept the old list for
// good (4 runs of 4 on a loaded machine); it reads the lag first, then the list.
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
		last    = map[string][]byte{} // the answers last passed through, by route
		held    = make(chan string, 16)
	)
	hold := func(on bool) {
		mu.Lock()
		defer mu.Unlock()
		holding = on
	}
	base := frontEditing(t, d, func(body map[string]any) {
		route := "list" // GET /v1/processes/CateringMatch
		if list, _ := body["processes"].([]any); len(list) > 0 {
			if _, ok := list[0].(map[string]any)["handles"]; ok {
				route = "managers" // GET /v1/processes
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if !holding {
			b, err := json.Marshal(body)
			if err != nil {
				t.Error(err)
			}
			last[route] = b
			return
		}
		clear(body)
		if err := json.Unmarshal(last[route], &body); err != nil {
			t.Error(err)
		}
		if route == "managers" {
			for _, m := range body["processes"].([]any) {
				m.(map[string]any)["lag"] = 5
			}
		}
		select {
		case held <- route:
		default:
		}
	}, "/v1/processes", "/v1/processes/CateringMatch")
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	awaitHeld := func(route string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case got := <-held:
				if got == route {
					return
				}
			case <-deadline:
				t.Fatalf("the page did not read %s again after a fact", route)
			}
		}
	}

	b.open(t, "#/processes", "processes")
	b.poll(t, `document.querySelector('tr[data-manager="CateringMatch"] td.open').textContent === '1'`)
	hold(true)
	confirm("o2")
	b.poll(t, `document.querySelector('tr[data-manager="CateringMatch"] td.lag').textContent === '5'`)
	hold(false)
	b.poll(t, `(r => r.querySelector('td.open').textContent === '2' && r.querySelector('td.lag').textContent === '0')(document.querySelector('tr[data-manager="CateringMatch"]'))`)

	b.open(t, "#/processes/CateringMatch", "process-list")
	b.poll(t, `document.querySelectorAll('tr[data-process]').length === 2`)
	hold(true)
	confirm("o3")
	awaitHeld("list")
	hold(false)
	b.poll(t, `document.querySelectorAll('tr[data-process]').length === 3`)
}
