package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestSubscriptionThroughTheCLI: a subscription of the config file POSTs each matching
// event, in log order, its id as the Idempotency-Key; an event the receiver refuses is
// parked (max_attempts: 1) and holds back the next; pmd subscriptions shows it, and pmd
// subscriptions retry delivers it once the receiver is back; the metrics have the
// subscription's figures. pmd subscriptions skip gives a parked event up: it is never
// delivered, and the subscription moves past it to the events it held back.
func TestSubscriptionThroughTheCLI(t *testing.T) {
	var down atomic.Bool
	var mu sync.Mutex
	var got []string   // "<Idempotency-Key> <body id> <type>"
	var tried []string // the Idempotency-Key of every request, delivered or refused
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID           string `json:"id"`
			Type         string `json:"type"`
			Subscription string `json:"subscription"`
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil || body.Subscription != "billing" {
			t.Errorf("body %s: %v", raw, err)
		}
		mu.Lock()
		tried = append(tried, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		got = append(got, r.Header.Get("Idempotency-Key")+" "+body.ID+" "+body.Type)
		mu.Unlock()
	}))
	defer receiver.Close()
	d := startInProcess(t, parseConfig(t, `
subscriptions:
  - name: billing
    types: [ConfirmOrder]
    deliver: {webhook: `+receiver.URL+`/events, max_attempts: 1}
`))
	ctx := context.Background()
	sub := d.subs.subs[0].sub
	var ids []string
	var last uint64
	put := func(typ string) {
		t.Helper()
		res, err := d.store.Append(ctx, "orders", pmd.Any, pmd.EventData{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.IDs[0].String())
		last = res.LastPosition
		if err := sub.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	put("ConfirmOrder")
	put("Other")
	down.Store(true)
	put("ConfirmOrder") // parked
	down.Store(false)
	put("ConfirmOrder") // held back
	addr := "--addr=" + d.addr

	code, out, errOut := runPMD(t, ctx, "subscriptions", addr)
	if code != exitOK || !strings.Contains(out, "billing") || !strings.Contains(out, "types ConfirmOrder") ||
		!strings.Contains(out, "parked") || !strings.Contains(out, "503") {
		t.Fatalf("subscriptions: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runPMD(t, ctx, "subscriptions", addr, "billing")
	// The command it prints goes to the same daemon: the --addr given is repeated.
	if code != exitOK || !strings.Contains(out, ids[2]) || !strings.Contains(out, "pmd subscriptions retry billing "+ids[2]+" --addr "+d.addr+" (or skip") {
		t.Fatalf("subscriptions billing: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runPMD(t, ctx, "subscriptions", "retry", addr, "billing", ids[2])
	if code != exitOK || !strings.Contains(out, "queued again") {
		t.Fatalf("retry: exit %d:\n%s%s", code, out, errOut)
	}
	if err := sub.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want := []string{ids[0] + " " + ids[0] + " ConfirmOrder", ids[2] + " " + ids[2] + " ConfirmOrder", ids[3] + " " + ids[3] + " ConfirmOrder"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("delivered\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mu.Unlock()
	code, _, errOut = runPMD(t, ctx, "subscriptions", "skip", addr, "billing", ids[2])
	if code == exitOK || !strings.Contains(errOut, "not awaiting delivery") {
		t.Fatalf("skip of a delivered event: exit %d: %s", code, errOut)
	}

	c := d.client(t)
	s, err := c.Subscription(ctx, "billing")
	if err != nil || s.Status != "delivering" || s.Lag == nil || *s.Lag != 0 || s.Position != last+1 || len(s.ParkedEvents) != 0 {
		t.Fatalf("billing: %+v, %v", s, err)
	}
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		fmt.Sprintf(`pmd_subscription_position{subscription="billing"} %d`, last+1),
		`pmd_subscription_lag_events{subscription="billing"} 0`,
		`pmd_subscription_parked_events{subscription="billing"} 0`,
		`pmd_subscription_deliveries_total{outcome="failed",subscription="billing"} 1`,
		`pmd_subscription_deliveries_total{outcome="delivered",subscription="billing"} 3`,
		`pmd_subscription_delivery_duration_seconds_count{subscription="billing"} 4`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Skip: a parked event is given up, never delivered, and the one it held back is.
	down.Store(true)
	put("ConfirmOrder") // parked
	parkedAt := last
	down.Store(false)
	put("ConfirmOrder") // held back
	skipped, heldBack := ids[4], ids[5]
	s, err = c.Subscription(ctx, "billing")
	if err != nil || len(s.ParkedEvents) != 1 || s.ParkedEvents[0].ID != skipped || s.Position > parkedAt {
		t.Fatalf("billing with %s parked: %+v, %v", skipped, s, err)
	}
	code, out, errOut = runPMD(t, ctx, "subscriptions", "skip", addr, "billing", skipped)
	if code != exitOK || !strings.Contains(out, "skipped") {
		t.Fatalf("skip: exit %d:\n%s%s", code, out, errOut)
	}
	if err := sub.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	s, err = c.Subscription(ctx, "billing")
	if err != nil || s.Status != "delivering" || s.Lag == nil || *s.Lag != 0 || s.Position != last+1 || len(s.ParkedEvents) != 0 {
		t.Fatalf("billing after the skip: %+v, %v; want position %d, past %d", s, err, last+1, parkedAt)
	}
	mu.Lock()
	defer mu.Unlock()
	want = append(want, heldBack+" "+heldBack+" ConfirmOrder")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("delivered\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	n := 0
	for _, key := range tried {
		if key == skipped {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the skipped event was tried %d times; want once, the attempt that parked it", n)
	}
}
