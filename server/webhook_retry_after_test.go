package server

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestWebhookRetryAfter: a receiver's 429 or 503 with a Retry-After in the future, in
// seconds or as an HTTP date (read against the answer's Date), fails the attempt with a
// *RetryAfterError saying how long it asked for; any other answer, or a Retry-After that
// is malformed or past, fails it as before, leaving the back-off to stand.
func TestWebhookRetryAfter(t *testing.T) {
	// A receiver clock an hour off ours: a date is read against the receiver's Date.
	date := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		want   time.Duration // 0: no *RetryAfterError
	}{
		{"429 seconds", http.StatusTooManyRequests, map[string]string{"Retry-After": "30"}, 30 * time.Second},
		{"503 seconds", http.StatusServiceUnavailable, map[string]string{"Retry-After": " 7 "}, 7 * time.Second},
		{"503 date against Date", http.StatusServiceUnavailable, map[string]string{
			"Date": date.Format(http.TimeFormat), "Retry-After": date.Add(2 * time.Minute).Format(http.TimeFormat)}, 2 * time.Minute},
		{"absurd seconds", http.StatusTooManyRequests, map[string]string{"Retry-After": "99999999999999999999999"}, math.MaxInt64},
		{"zero", http.StatusTooManyRequests, map[string]string{"Retry-After": "0"}, 0},
		{"past date", http.StatusServiceUnavailable, map[string]string{
			"Date": date.Format(http.TimeFormat), "Retry-After": date.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"malformed", http.StatusTooManyRequests, map[string]string{"Retry-After": "soon"}, 0},
		{"negative", http.StatusTooManyRequests, map[string]string{"Retry-After": "-5"}, 0},
		{"none", http.StatusServiceUnavailable, nil, 0},
		{"500 with Retry-After", http.StatusInternalServerError, map[string]string{"Retry-After": "30"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = []string{v}
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte("busy"))
			}))
			defer rcv.Close()
			err := NewEventWebhooks(nil, 0).Deliver(context.Background(), rcv.URL, WebhookEvent{Subscription: "billing"})
			if err == nil {
				t.Fatal("the attempt did not fail")
			}
			var ra *RetryAfterError
			switch {
			case tc.want == 0 && errors.As(err, &ra):
				t.Fatalf("%v: a *RetryAfterError of %s, want none", err, ra.After)
			case tc.want == 0:
				if strings.Contains(err.Error(), "Retry-After") {
					t.Fatalf("%v: names a Retry-After that is not honoured", err)
				}
			case !errors.As(err, &ra) || ra.RetryAfter() != tc.want:
				t.Fatalf("%v: want a *RetryAfterError of %s", err, tc.want)
			case !strings.Contains(err.Error(), http.StatusText(tc.status)+", Retry-After") || !strings.HasSuffix(err.Error(), ": busy"):
				t.Fatalf("%v: want it to say what the receiver answered, its Retry-After and its body", err)
			}
		})
	}
}

// TestSubscriptionFollowsWebhookRetryAfter: a subscription delivering to a webhook that
// answers 503 with Retry-After attempts the event again no sooner than that, but no
// later than its longest back-off (RetryMax) for an absurd one.
func TestSubscriptionFollowsWebhookRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		retryAfter string
		want       time.Duration
	}{
		{"30", 30 * time.Second},
		{"31536000", time.Minute}, // a year
	} {
		t.Run(tc.retryAfter, func(t *testing.T) {
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.retryAfter)
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer rcv.Close()
			store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if _, err := store.Append(context.Background(), "S", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
				t.Fatal(err)
			}
			hooks := NewEventWebhooks(nil, 0)
			clock := pmtest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
			sub, err := pm.NewSubscription(store, "billing", pm.Filter{Types: []string{"E"}}, pm.SubscriptionOptions{
				Clock: clock, RetryMax: time.Minute, Logger: quiet(),
				Deliver: func(ctx context.Context, e pmd.Event) error {
					return hooks.Deliver(ctx, rcv.URL, NewWebhookEvent("billing", e, false))
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sub.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			wait, cancelWait := context.WithTimeout(ctx, 30*time.Second)
			defer cancelWait()
			if err := sub.WaitIdle(wait); err != nil {
				t.Fatal(err)
			}
			st, err := sub.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Failing == nil || !strings.Contains(st.LastErr, "Retry-After") {
				t.Fatalf("status %+v: want the event failing on the 503", st)
			}
			if got := st.RetryAt.Sub(clock.Now()); got != tc.want {
				t.Fatalf("Retry-After %s: retried in %s, want %s", tc.retryAfter, got, tc.want)
			}
		})
	}
}
