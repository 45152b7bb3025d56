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
func TestSubscribersShareABudget(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Options{SubscriberBuffer: 4 << 20, SubscribersBuffer: 64 << 10, Registry: reg})
	addr := smallServer(t, e).URL[len("http://"):]
	rawSubscribe(t, addr, "") // stalls: never reads
	reader := openSSE(t, e.ts.URL+"/v1/subscribe", "")
	// 800 KiB in all: far under the stalled subscriber's own 4 MiB, far over the budget.
	const n, size = 100, 8 << 10
	for range n {
		e.append("Live$1", nil, ev("E", map[string]any{"pad": blob(size)})).must(t, http.StatusCreated)
	}
	waitFor(t, "the stalled subscriber is cut", func() bool { return counter(t, reg, "pmd_subscriptions_cut_total") == 1 })
	// The one that reads gets every event, in order.
	for i := 1; i <= n; i++ {
		if id, _ := reader.event(t); id != strconv.Itoa(i) {
			t.Fatalf("reading subscriber got event %s, want %d", id, i)
		}
	}
	if got := counter(t, reg, "pmd_subscriptions_cut_total"); got != 1 {
		t.Fatalf("%v subscribers cut, want only the stalled one", got)
	}
}
