package client

import (
	"context"
	"fmt"
	"time"
)

// Subscription is a subscription with a server-side position, and where it stands.
type Subscription struct {
	Name string `json:"name"`
	// Filter is what it delivers: exactly one of its fields is set.
	Filter  SubscriptionFilter `json:"filter"`
	Webhook string             `json:"webhook"`
	// Position: every matching event below it was delivered or skipped. A log
	// position, or a version of the stream for a stream filter.
	Position uint64 `json:"position"`
	// Lag is from Position to the newest matching event, both included; 0 when caught
	// up; nil when it could not be read (a damaged index, which Health reports).
	Lag    *uint64 `json:"lag"`
	Parked int     `json:"parked"`
	// Status is delivering, failing (the next event failed: FailingEvent in the
	// detail; it waits for RetryAt, nil while it is attempted again) or parked.
	Status      string     `json:"status"`
	LastError   string     `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
	RetryAt     *time.Time `json:"retry_at"`
	// Stream is the subscription's own stream: its position and every failure,
	// parking, retry and skip.
	Stream string `json:"stream"`
}

// SubscriptionFilter is a subscription's filter.
type SubscriptionFilter struct {
	Types    []string `json:"types,omitempty"`
	Stream   string   `json:"stream,omitempty"`
	Category string   `json:"category,omitempty"`
}

// SubscriptionDetail is one subscription with its failing and parked events.
type SubscriptionDetail struct {
	Subscription
	// FailingEvent is the event that failed its last attempt, not parked; nil unless
	// Status is failing. RetryEvent and SkipEvent release it as they do a parked one.
	FailingEvent *FailingEvent `json:"failing_event"`
	ParkedEvents []ParkedEvent `json:"parked_events"` // in log order
}

// FailingEvent is the event a subscription is failing to deliver: the fields of a
// parked one, and when it is attempted again (nil while an attempt of it runs).
type FailingEvent struct {
	ParkedEvent
	RetryAt *time.Time `json:"retry_at"`
}

// ParkedEvent is an event that failed its subscription's max_attempts deliveries in a
// row and holds it back until RetryEvent or SkipEvent.
type ParkedEvent struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Stream   string `json:"stream"`
	Position uint64 `json:"position"` // as the subscription counts
	Attempts int    `json:"attempts"`
	Error    string `json:"error"`
}

// Subscriptions lists the daemon's subscriptions.
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	var out struct {
		Subscriptions []Subscription `json:"subscriptions"`
	}
	if err := c.do(ctx, "GET", "/v1/subscriptions", nil, &out); err != nil {
		return nil, err
	}
	return out.Subscriptions, nil
}

// Subscription reads the subscription called name. An unknown one fails with
// ErrNotFound.
func (c *Client) Subscription(ctx context.Context, name string) (SubscriptionDetail, error) {
	var out SubscriptionDetail
	path := "/v1/subscriptions/" + segment(name)
	if err := c.do(ctx, "GET", path, nil, &out); err != nil {
		return SubscriptionDetail{}, err
	}
	if out.Name != name {
		return SubscriptionDetail{}, fmt.Errorf("client: the daemon's answer to GET %s is not subscription %q: it names %q", path, name, out.Name)
	}
	return out, nil
}

// RetryEvent queues the parked or failing event of the subscription called name for
// delivery at once. It needs an admin token. An event being delivered, or waiting
// behind an earlier one, fails with ErrConflict; one not awaiting delivery, or an
// unknown subscription, with ErrNotFound.
func (c *Client) RetryEvent(ctx context.Context, name, event string) error {
	return c.do(ctx, "POST", eventPath(name, event)+"/retry", nil, nil)
}

// SkipEvent gives up the parked or failing event of the subscription called name: it
// is never delivered, and the subscription moves past it. Its errors are RetryEvent's.
func (c *Client) SkipEvent(ctx context.Context, name, event string) error {
	return c.do(ctx, "POST", eventPath(name, event)+"/skip", nil, nil)
}

func eventPath(name, event string) string {
	return "/v1/subscriptions/" + segment(name) + "/events/" + segment(event)
}
