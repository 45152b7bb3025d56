package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/config"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
	"github.com/pmd-dev/pmd/server"
)

// flakyReceiver is a webhook that answers 500 while down, and keeps the
// Idempotency-Key of every request and of the events it took.
type flakyReceiver struct {
	mu    sync.Mutex
	down  bool
	tried []string
	took  []string
}

func (r *flakyReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := req.Header.Get("Idempotency-Key")
	r.tried = append(r.tried, key)
	if r.down {
		http.Error(w, "receiver broken", http.StatusInternalServerError)
		return
	}
	r.took = append(r.took, key)
}

func (r *flakyReceiver) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *flakyReceiver) calls() (tried, took []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tried), slices.Clone(r.took)
}

// TestSubscriptionFailingEventOverHTTP: a subscription of the config file whose
// receiver answers 500 fails on an event (fewer than max_attempts times: it is not
// parked); GET /v1/subscriptions/{name} names it (id, position, attempts, error, retry
// time) and the next event waits behind it. Once the receiver is fixed, a retry through
// the API delivers it at once (its retry time never comes: the subscription's clock
// stands still), then the event behind it; a skip gives it up, and only the event behind it is
// delivered. Either way the subscription names no failing event after.
func TestSubscriptionFailingEventOverHTTP(t *testing.T) {
	for _, op := range []string{"retry", "skip"} {
		t.Run(op, func(t *testing.T) {
			rcv := &flakyReceiver{down: true}
			hook := httptest.NewServer(rcv)
			t.Cleanup(hook.Close)
			store, sub, c := startWithClock(t, parseConfig(t, `
subscriptions:
  - name: billing
    types: [ConfirmOrder]
    deliver: {webhook: `+hook.URL+`/events, max_attempts: 10}
`), pmtest.NewClock(time.Now()))
			ctx := context.Background()
			put := func() pmd.WriteResult {
				t.Helper()
				res, err := store.Append(ctx, "orders", pmd.Any, pmd.EventData{Type: "ConfirmOrder"})
				if err != nil {
					t.Fatal(err)
				}
				if err := sub.WaitIdle(ctx); err != nil {
					t.Fatal(err)
				}
				return res
			}
			failing, behind := put(), put()
			id, next := failing.IDs[0].String(), behind.IDs[0].String()

			d, err := c.Subscription(ctx, "billing")
			if err != nil {
				t.Fatal(err)
			}
			f := d.FailingEvent
			if d.Status != "failing" || f == nil || f.ID != id || f.Type != "ConfirmOrder" || f.Stream != "orders" ||
				f.Position != failing.LastPosition || f.Attempts != 1 || !strings.Contains(f.Error, "500") ||
				f.RetryAt == nil || d.RetryAt == nil || !f.RetryAt.Equal(*d.RetryAt) || len(d.ParkedEvents) != 0 ||
				d.Position != failing.LastPosition || d.Lag == nil || *d.Lag == 0 {
				t.Fatalf("billing: %+v, failing %+v; want %s failing at %d after 1 attempt, a 500, a retry time", d, f, id, failing.LastPosition)
			}
			// pmd subscriptions billing prints it, and how to release it.
			var out strings.Builder
			printSubscription(&out, d, "")
			for _, want := range []string{
				"failing event (not parked):", id, "ConfirmOrder", "orders", "500",
				"next attempt at " + formatTime(*f.RetryAt),
				"pmd subscriptions retry billing " + id,
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("pmd subscriptions billing printed\n%s\nwithout %q", out.String(), want)
				}
			}
			if err := c.SkipEvent(ctx, "billing", next); !errors.Is(err, client.ErrConflict) {
				t.Fatalf("skip of the event waiting behind: %v, want a conflict", err)
			}

			rcv.setDown(false)
			want := []string{next}
			if op == "retry" {
				err = c.RetryEvent(ctx, "billing", id)
				want = []string{id, next}
			} else {
				err = c.SkipEvent(ctx, "billing", id)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			tried, took := rcv.calls()
			if !slices.Equal(took, want) || tried[0] != id || slices.Index(tried[1:], id) >= 0 != (op == "retry") {
				t.Fatalf("the receiver took %v (tried %v), want %v", took, tried, want)
			}
			d, err = c.Subscription(ctx, "billing")
			if err != nil || d.Status != "delivering" || d.FailingEvent != nil || d.RetryAt != nil || d.Position != behind.LastPosition+1 || d.Lag == nil || *d.Lag != 0 {
				t.Fatalf("billing after the %s: %+v, %v", op, d, err)
			}
			if err := c.RetryEvent(ctx, "billing", id); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("a retry after the %s: %v, want not found", op, err)
			}
		})
	}
}

// startWithClock runs the subscriptions of cfg, as pmd serve does, but with their
// retries on clock, and serves the API; it returns the store, the first subscription
// and a client of the API.
func startWithClock(t *testing.T, cfg *config.Config, clock pm.Clock) (*pmd.Store, *pm.Subscription, *client.Client) {
	t.Helper()
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	hooks := server.NewEventWebhooks(nil, 0)
	p := &subscriptions{}
	for _, sc := range cfg.Subscriptions {
		opts := sc.Options()
		opts.Logger, opts.Clock = quiet(), clock
		opts.Deliver = eventHandler(hooks, sc.Name, sc.Deliver.Webhook, sc.Deliver.Timeout, sc.Stream != "")
		sub, err := pm.NewSubscription(store, sc.Name, sc.Filter(), opts)
		if err != nil {
			t.Fatal(err)
		}
		p.subs = append(p.subs, subscribed{cfg: sc, sub: sub})
	}
	ctx := p.start(context.Background())
	for _, s := range p.subs {
		p.run(ctx, "subscription", s.cfg.Name, s.sub.Run, quiet(), func() { t.Error("a subscription failed") })
	}
	ts := httptest.NewServer(server.New(store, server.Options{Subscriptions: p.api(), Logger: quiet()}))
	t.Cleanup(func() {
		ts.Close()
		if err := errors.Join(p.stop(), store.Close()); err != nil {
			t.Error(err)
		}
	})
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return store, p.subs[0].sub, c
}

// TestPrintSubscriptionFailingEvent: pmd subscriptions NAME prints the event a failing
// subscription holds back on (id, type, stream, position, attempts, error, and when it is
// attempted again, or that an attempt runs), with the retry or skip that releases it, and
// the parked events after it.
func TestPrintSubscriptionFailingEvent(t *testing.T) {
	// The API's times are UTC; one in another zone shows that the time printed is in the
	// local zone, as every time pmd prints is (formatTime).
	at := time.Date(2026, 11, 29, 10, 0, 5, 0, time.FixedZone("", 5*3600))
	failing := client.ParkedEvent{ID: "0190c1d2-0000-7000-8000-000000000002", Type: "ConfirmOrder", Stream: "orders", Position: 8, Attempts: 3, Error: "answered 503"}
	parked := client.ParkedEvent{ID: "0190c1d2-0000-7000-8000-000000000001", Type: "ConfirmOrder", Stream: "orders", Position: 6, Attempts: 10, Error: "answered 500"}
	for _, tc := range []struct {
		name       string
		d          client.SubscriptionDetail
		want, dont []string
	}{
		{"waiting for its retry", client.SubscriptionDetail{
			Subscription: client.Subscription{Name: "billing", Status: "failing", RetryAt: &at, LastError: "answered 503", LastErrorAt: &at},
			FailingEvent: &client.FailingEvent{ParkedEvent: failing, RetryAt: &at},
		}, []string{
			"failing event (not parked):", failing.ID, "ConfirmOrder", "orders", "8", "3", "answered 503",
			"position 0, lag -, failing, next attempt at " + formatTime(at), "last error at " + formatTime(at) + ": answered 503",
			"next attempt at " + formatTime(at), "no parked events",
			"pmd subscriptions retry billing " + failing.ID,
		}, []string{"being attempted again"}},
		{"attempted again, with a parked event", client.SubscriptionDetail{
			Subscription: client.Subscription{Name: "billing", Status: "failing", Parked: 1},
			FailingEvent: &client.FailingEvent{ParkedEvent: failing},
			ParkedEvents: []client.ParkedEvent{parked},
		}, []string{
			"failing event (not parked):", failing.ID, "being attempted again", "answered 503",
			parked.ID, "answered 500", "pmd subscriptions retry billing " + failing.ID,
		}, []string{"next attempt at", "no parked events"}},
		{"parked only", client.SubscriptionDetail{
			Subscription: client.Subscription{Name: "billing", Status: "parked", Parked: 1},
			ParkedEvents: []client.ParkedEvent{parked},
		}, []string{parked.ID, "pmd subscriptions retry billing " + parked.ID}, []string{"failing event"}},
		{"delivering", client.SubscriptionDetail{
			Subscription: client.Subscription{Name: "billing", Status: "delivering"},
		}, []string{"no parked events"}, []string{"failing event", "pmd subscriptions retry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			printSubscription(&out, tc.d, "")
			for _, want := range tc.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("printed\n%s\nwithout %q", out.String(), want)
				}
			}
			for _, dont := range tc.dont {
				if strings.Contains(out.String(), dont) {
					t.Errorf("printed\n%s\nwith %q", out.String(), dont)
				}
			}
		})
	}
}
