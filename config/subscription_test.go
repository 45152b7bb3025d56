package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSubscriptions(t *testing.T) {
	cfg, err := Parse("pmd.yaml", []byte(`subscriptions:
  - name: billing
    types: [ConfirmOrder]
    deliver: {webhook: http://127.0.0.1:9001/events, max_attempts: 10}
  - name: orders
    category: Order
    deliver: {webhook: https://example.com/orders, timeout: 5s}
  - name: picked
    stream: Picked
    deliver: {webhook: http://127.0.0.1:9002/}
  - name: watch
    category: orders.subscription
    deliver: {webhook: http://127.0.0.1:9003/}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Subscription{
		{Name: "billing", Types: []string{"ConfirmOrder"}, Deliver: Deliver{Webhook: "http://127.0.0.1:9001/events", MaxAttempts: 10}, Line: 2},
		{Name: "orders", Category: "Order", Deliver: Deliver{Webhook: "https://example.com/orders", Timeout: 5e9}, Line: 5},
		{Name: "picked", Stream: "Picked", Deliver: Deliver{Webhook: "http://127.0.0.1:9002/"}, Line: 8},
		// Another's position records, which follows no one's in turn: no circle.
		{Name: "watch", Category: "orders.subscription", Deliver: Deliver{Webhook: "http://127.0.0.1:9003/"}, Line: 11},
	}
	if !reflect.DeepEqual(cfg.Subscriptions, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", cfg.Subscriptions, want)
	}
	if f := cfg.Subscriptions[0].Filter(); !reflect.DeepEqual(f.Types, []string{"ConfirmOrder"}) || f.Stream != "" {
		t.Errorf("filter %+v", f)
	}
	if o := cfg.Subscriptions[0].Options(); o.MaxAttempts != 10 || o.Receiver != "http://127.0.0.1:9001/events" {
		t.Errorf("options %+v", o)
	}
}

func TestSubscriptionErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no filter", "subscriptions:\n  - name: a\n    deliver: {webhook: http://x/}\n",
			`pmd.yaml:2:5: subscription "a": give exactly one of types, stream and category (it has 0)`},
		{"two filters", "subscriptions:\n  - name: a\n    types: [A]\n    stream: S\n    deliver: {webhook: http://x/}\n",
			`pmd.yaml:2:5: subscription "a": give exactly one of types, stream and category (it has 2)`},
		{"no deliver", "subscriptions:\n  - name: a\n    types: [A]\n",
			`pmd.yaml:2:5: subscription "a": deliver is missing`},
		{"bad webhook", "subscriptions:\n  - name: a\n    types: [A]\n    deliver: {webhook: ftp://x/}\n",
			`pmd.yaml:4:24: subscription "a": deliver: webhook "ftp://x/" is not an http or https URL`},
		{"bad name", "subscriptions:\n  - name: a.b\n    types: [A]\n    deliver: {webhook: http://x/}\n",
			`pmd.yaml:2:11: subscription "a.b": name "a.b" contains '.'`},
		{"twice", "subscriptions:\n  - {name: a, types: [A], deliver: {webhook: http://x/}}\n  - {name: a, types: [B], deliver: {webhook: http://x/}}\n",
			`pmd.yaml:3:5: subscription "a" is defined twice (first at line 2)`},
		{"a manager's name", "processes:\n  - {name: M, correlate_by: id, handles: [A], issue: {type: C}}\nsubscriptions:\n  - {name: M, types: [C], deliver: {webhook: http://x/}}\n",
			`pmd.yaml:4:5: subscription "M" has the name of the process manager at line 2`},
		{"the store's stream", "subscriptions:\n  - {name: a, stream: $all, deliver: {webhook: http://x/}}\n",
			`pmd.yaml:2:23: subscription "a": stream "$all" is the store's own; to follow the global log, give types`},
		{"a category with $", "subscriptions:\n  - {name: a, category: Order$1, deliver: {webhook: http://x/}}\n",
			`pmd.yaml:2:25: subscription "a": category "Order$1" holds a $: a category is the part of a stream name before its first $`},
		{"max_attempts 0", "subscriptions:\n  - {name: a, types: [A], deliver: {webhook: http://x/, max_attempts: 0}}\n",
			`pmd.yaml:2:71: subscription "a": deliver: max_attempts must be at least 1`},
		{"no types", "subscriptions:\n  - name: b\n    types: []\n    deliver: {webhook: http://x/}\n",
			`pmd.yaml:3:12: subscription "b": types is empty: the subscription would never deliver an event`},
		{"not a list", "subscriptions: {name: a}\n",
			`pmd.yaml:1:16: subscriptions must be a list of subscriptions, got a mapping`},
		{"unknown key", "subscriptions:\n  - {name: a, types: [A], from: start, deliver: {webhook: http://x/}}\n",
			`pmd.yaml:2:27: subscription "a": unknown key "from"`},
		// Following its own records: each delivery moves the position, whose record is
		// the next event to deliver, once a second for ever.
		{"its own stream", "subscriptions:\n  - {name: a, stream: a.subscription, deliver: {webhook: http://x/}}\n",
			`pmd.yaml:2:23: subscription "a": stream "a.subscription" is the subscription's own`},
		{"its own stream's category", "subscriptions:\n  - {name: a, category: a.subscription, deliver: {webhook: http://x/}}\n",
			`pmd.yaml:2:25: subscription "a": category "a.subscription" holds the subscription's own stream`},
		{"its position records", "subscriptions:\n  - {name: a, types: [A, SubscriptionPosition], deliver: {webhook: http://x/}}\n",
			`pmd.yaml:2:26: subscription "a": types[1] "SubscriptionPosition" is the type of the subscription's own position records`},
		// Following each other's: each position one writes is delivered to the other.
		{"each other's streams", "subscriptions:\n  - {name: a, stream: b.subscription, deliver: {webhook: http://x/}}\n  - {name: b, category: a.subscription, deliver: {webhook: http://x/}}\n",
			`pmd.yaml:2:5: subscription "a" follows the position records of "b", which follows those of "a": each position one writes would be delivered to the next, for ever`},
		{"a circle of three", "subscriptions:\n  - {name: x, types: [A], deliver: {webhook: http://x/}}\n  - {name: a, stream: b.subscription, deliver: {webhook: http://x/}}\n" +
			"  - {name: b, stream: c.subscription, deliver: {webhook: http://x/}}\n  - {name: c, stream: a.subscription, deliver: {webhook: http://x/}}\n",
			`pmd.yaml:3:5: subscription "a" follows the position records of "b", which follows those of "c", which follows those of "a"`},
		{"a chain into a circle", "subscriptions:\n  - {name: x, stream: a.subscription, deliver: {webhook: http://x/}}\n  - {name: a, stream: b.subscription, deliver: {webhook: http://x/}}\n" +
			"  - {name: b, stream: a.subscription, deliver: {webhook: http://x/}}\n",
			`pmd.yaml:3:5: subscription "a" follows the position records of "b", which follows those of "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("pmd.yaml", []byte(tt.yaml))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %v, want one error", err)
			}
			if !strings.HasPrefix(errs[0].Error(), tt.want) {
				t.Fatalf("got  %s\nwant %s…", errs[0], tt.want)
			}
		})
	}
}

// TestSubscriptionOptionsMaskTheWebhook: the receiver of Options is shown and recorded
// (log lines, AttemptInfo, parked records), so a webhook's password and query values
// are masked in it, as everywhere else; the URL stays as written in Deliver.Webhook,
// which only delivery dials.
func TestSubscriptionOptionsMaskTheWebhook(t *testing.T) {
	for _, tt := range []struct{ webhook, receiver string }{
		{"http://127.0.0.1:9001/events", "http://127.0.0.1:9001/events"},
		{"https://user:s3cret@example.com/hook?key=t0ken&v=2", "https://user:xxxxx@example.com/hook?key=xxxxx&v=xxxxx"},
		{"https://t0ken@example.com/hook", "https://xxxxx@example.com/hook"},
	} {
		cfg, err := Parse("pmd.yaml", []byte("subscriptions:\n  - {name: a, types: [A], deliver: {webhook: '"+tt.webhook+"'}}\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.webhook, err)
		}
		sub := cfg.Subscriptions[0]
		if got := sub.Options().Receiver; got != tt.receiver {
			t.Errorf("webhook %s: receiver %q, want %q", tt.webhook, got, tt.receiver)
		}
		if sub.Deliver.Webhook != tt.webhook {
			t.Errorf("webhook %s: Deliver.Webhook became %q", tt.webhook, sub.Deliver.Webhook)
		}
	}
}
