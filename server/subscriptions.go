package server

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// Subscriptions answers the subscription routes: the subscriptions with a server-side
// position that the daemon runs from its config file. Their errors are those of
// Processes: ErrNotFound for an unknown subscription or event, ErrConflict for an
// event that cannot be retried or skipped as it stands.
type Subscriptions interface {
	// List lists the subscriptions, in a stable order.
	List(ctx context.Context) ([]Subscription, error)
	// Subscription describes the subscription called name, with its failing and
	// parked events.
	Subscription(ctx context.Context, name string) (SubscriptionDetail, error)
	// Retry queues the parked or failing event of the subscription called name for
	// delivery at once; Skip gives it up, and the subscription moves past it. Each is
	// recorded in the subscription's stream before it takes effect.
	Retry(ctx context.Context, name string, event uuid.UUID) error
	Skip(ctx context.Context, name string, event uuid.UUID) error
}

// Subscription is a subscription and where it stands.
type Subscription struct {
	Name string `json:"name"`
	// Filter is what the subscription delivers: the events of some types, of one
	// stream or of one category.
	Filter SubscriptionFilter `json:"filter"`
	// Webhook is the URL the events are POSTed to.
	Webhook string `json:"webhook"`
	// Position is where the subscription stands: every matching event below it has
	// been delivered or skipped. A log position, or a version of the stream for a
	// stream filter.
	Position uint64 `json:"position"`
	// Lag is how far it is behind: from Position to the newest matching event, both
	// included, in log positions (versions for a stream filter); 0 when caught up; nil
	// (null) when it could not be read (a damaged index, which /healthz reports).
	Lag *uint64 `json:"lag"`
	// Parked counts the parked events: they failed max_attempts deliveries in a row
	// and hold the subscription back until retried or skipped.
	Parked int `json:"parked"`
	// Status is delivering (nothing failing: caught up or catching up), failing (the
	// next event failed, fewer than max_attempts times in a row, and waits for RetryAt
	// or is being attempted again) or parked.
	Status string `json:"status"`
	// LastError is the error of the last failed attempt, and LastErrorAt when it
	// failed; "" and nil when none failed since the daemon started (a failing or
	// parked event's error, and when it failed, are loaded from the subscription's
	// stream at start).
	LastError   string     `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
	// RetryAt is when a failing event is tried again; nil unless Status is failing,
	// and while its next attempt runs.
	RetryAt *time.Time `json:"retry_at"`
	// Stream is the subscription's own stream: its position and every failure,
	// parking, retry and skip are recorded there.
	Stream string `json:"stream"`
}

// SubscriptionFilter is a subscription's filter: exactly one of its fields is set.
type SubscriptionFilter struct {
	Types    []string `json:"types,omitempty"`
	Stream   string   `json:"stream,omitempty"`
	Category string   `json:"category,omitempty"`
}

// SubscriptionDetail is one subscription with its failing and parked events.
type SubscriptionDetail struct {
	Subscription
	// FailingEvent is the event that failed its last attempt and is not parked: it
	// holds the subscription back until an attempt delivers it, or a retry or a skip;
	// nil unless Status is failing.
	FailingEvent *FailingEvent `json:"failing_event"`
	// ParkedEvents are the parked events, in log order: one at most, since a parked
	// event holds the subscription back (nothing after it is attempted).
	ParkedEvents []ParkedEvent `json:"parked_events"`
}

// FailingEvent is the event a subscription is failing to deliver: the fields of a
// parked event (Attempts made so far, Error of the last), and when it is tried again.
type FailingEvent struct {
	ParkedEvent
	// RetryAt is when it is attempted again; nil while an attempt of it runs (a retry
	// or a skip is then refused, ErrConflict).
	RetryAt *time.Time `json:"retry_at"`
}

// ParkedEvent is an event that failed a subscription's max_attempts deliveries in a
// row and waits for a retry or a skip.
type ParkedEvent struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Stream   string `json:"stream"`
	Position uint64 `json:"position"`
	Attempts int    `json:"attempts"` // made so far
	Error    string `json:"error"`    // of the last attempt
}

type subscriptionsResponse struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// subscriptions answers GET /v1/subscriptions.
func (s *Server) subscriptions(w http.ResponseWriter, r *http.Request) error {
	out := subscriptionsResponse{Subscriptions: []Subscription{}}
	if s.opts.Subscriptions != nil {
		list, err := s.opts.Subscriptions.List(r.Context())
		if err != nil {
			return err
		}
		for _, sub := range list {
			out.Subscriptions = append(out.Subscriptions, sub.normal())
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// subscription answers GET /v1/subscriptions/{name}.
func (s *Server) subscription(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if s.opts.Subscriptions == nil {
		return errNotFound("no subscription %q: the daemon runs none", name)
	}
	d, err := s.opts.Subscriptions.Subscription(r.Context(), name)
	if err != nil {
		return processError(err)
	}
	d.Subscription = d.Subscription.normal()
	if d.ParkedEvents == nil {
		d.ParkedEvents = []ParkedEvent{}
	}
	return writeJSON(w, http.StatusOK, d)
}

// normal gives the lists of sub empty values rather than null.
func (sub Subscription) normal() Subscription {
	if sub.Filter.Types == nil && sub.Filter.Stream == "" && sub.Filter.Category == "" {
		sub.Filter.Types = []string{}
	}
	return sub
}

// retryEvent answers POST /v1/subscriptions/{name}/events/{event}/retry.
func (s *Server) retryEvent(w http.ResponseWriter, r *http.Request) error {
	return s.operateEvent(w, r, Subscriptions.Retry)
}

// skipEvent answers POST /v1/subscriptions/{name}/events/{event}/skip.
func (s *Server) skipEvent(w http.ResponseWriter, r *http.Request) error {
	return s.operateEvent(w, r, Subscriptions.Skip)
}

// operateEvent applies a retry or a skip to the event of the path, answering 204 once
// it is recorded.
func (s *Server) operateEvent(w http.ResponseWriter, r *http.Request, op func(Subscriptions, context.Context, string, uuid.UUID) error) error {
	if err := noBody(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	event, err := parseID("event", r.PathValue("event"))
	if err != nil {
		return err
	}
	if s.opts.Subscriptions == nil {
		return errNotFound("no subscription %q: the daemon runs none", name)
	}
	if err := op(s.opts.Subscriptions, r.Context(), name, event); err != nil {
		return processError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
