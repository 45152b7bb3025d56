package browsertest

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestBrowserHiddenDashboardAsksForNothing: the dashboard of a hidden tab stops asking
// for the stats, says so with the badge, and asks again at once when shown. It asked
// every two seconds for as long as the tab stayed open in the background, and the stats
// of a cluster node ask every other node how it stands.
func TestBrowserHiddenDashboardAsksForNothing(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	var mu sync.Mutex
	stats := 0
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v1/stats" {
			mu.Lock()
			stats++
			mu.Unlock()
		}
		return false
	})
	asked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return stats
	}
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })

	b.open(t, "#/", "dashboard")
	var first string
	b.eval(t, `document.getElementById('main').dataset.updated`, &first)
	b.poll(t, `document.getElementById('main').dataset.updated !== '`+first+`'`) // it polls

	b.eval(t, hideJS, nil)
	b.poll(t, badgeJS+` === '○ paused while the tab is hidden'`)
	before := asked()
	// Asking for nothing can only be seen over a while: three of its polling periods.
	time.Sleep(6 * time.Second)
	if n := asked() - before; n > 0 {
		t.Errorf("the hidden dashboard asked for the stats %d times in 6s", n)
	}

	var last string
	b.eval(t, `document.getElementById('main').dataset.updated`, &last)
	b.eval(t, showJS, nil)
	b.poll(t, `document.getElementById('main').dataset.updated !== '`+last+`' && `+badgeJS+` === ''`)
}
