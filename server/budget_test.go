package server

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSubscribersShareABudget: slow subscribers together hold at most SubscribersBuffer
// bytes of live events (beyond a frame each): a stalled one is cut once the server-wide
// budget runs out, though its own buffer has room, while one that reads keeps going.
//
// The reader keeps up: each event is appended once it has the one before. A reader
// whose writer has not yet taken its last frame when the budget is full would be the
// one to pass it, and be cut, as the budget means; a burst of appends on a starved
// machine did that, and then both were cut.
func TestSubscribersShareABudget(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Options{SubscriberBuffer: 4 << 20, SubscribersBuffer: 64 << 10, Registry: reg})
	addr := smallServer(t, e).URL[len("http://"):]
	rawSubscribe(t, addr, "") // stalls: never reads
	reader := openSSE(t, e.ts.URL+"/v1/subscribe", "")
	// 800 KiB in all: far under the stalled subscriber's own 4 MiB, far over the budget.
	const n, size = 100, 8 << 10
	for i := 1; i <= n; i++ {
		e.append("Live$1", nil, ev("E", map[string]any{"pad": blob(size)})).must(t, http.StatusCreated)
		// The one that reads gets every event, in order. Its writer took event i from
		// its queue before sending it, so event i+1 meets an empty queue, which takes
		// a frame whatever the budget.
		if id, _ := reader.event(t); id != strconv.Itoa(i) {
			t.Fatalf("reading subscriber got event %s, want %d (%v subscribers cut)", id, i, counter(t, reg, "pmd_subscriptions_cut_total"))
		}
	}
	// The stalled one holds what its socket does not, up to the budget: it is cut once
	// the goroutine that reads the store for it has come to the event that passes it.
	waitFor(t, "the stalled subscriber is cut", func() bool { return counter(t, reg, "pmd_subscriptions_cut_total") >= 1 })
	if got := counter(t, reg, "pmd_subscriptions_cut_total"); got != 1 {
		t.Fatalf("%v subscribers cut, want only the stalled one", got)
	}
}
