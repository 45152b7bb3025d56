package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/jsonfloat"
	"github.com/pmd-dev/pmd/internal/redact"
	"github.com/prometheus/client_golang/prometheus"
)

// WebhookCommand is the JSON body a webhook receives: one issued command.
type WebhookCommand struct {
	// ID is the command's event id: stable across redeliveries, so a receiver drops
	// duplicates by it. It is also sent as the Idempotency-Key header.
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Manager   string         `json:"process_manager"`
	ProcessID string         `json:"process_id"`
	Data      map[string]any `json:"data"`
	// Correlation is the command's correlation_id: events a receiver appends in response
	// carry it as their correlation_id, and ID as their causation_id.
	Correlation string `json:"correlation_id"`
}

// MarshalJSON writes c with the floats of its data that have no fraction written 2.0,
// as the API writes events' data (jsonfloat.MarkMap): written 2, a receiver reading numbers
// as the API's clients do takes them for integers.
func (c WebhookCommand) MarshalJSON() ([]byte, error) {
	type plain WebhookCommand
	c.Data = jsonfloat.MarkMap(c.Data)
	return json.Marshal(plain(c))
}

// WebhookEvent is the JSON body a subscription's webhook receives: one event, as the
// API renders it, and the subscription's name.
type WebhookEvent struct {
	eventJSON
	Subscription string `json:"subscription"`
}

// NewWebhookEvent is the body of the delivery of ev by the subscription called
// subscription; withVersion is true for a subscription of one stream, where ev's version
// is its place in that stream.
func NewWebhookEvent(subscription string, ev pmd.Event, withVersion bool) WebhookEvent {
	return WebhookEvent{eventJSON: toJSON(ev, withVersion), Subscription: subscription}
}

// Webhooks POSTs commands to webhook URLs, one attempt per call: retries, back-off and
// the record of attempts belong to the caller (package pm's dispatcher). It is safe for
// concurrent use.
type Webhooks struct {
	// client has no Timeout: an attempt is bounded by its context, so a per-attempt
	// timeout longer than the default is honoured rather than cut short.
	client   *http.Client
	timeout  time.Duration // bounds an attempt whose context has no deadline
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// DefaultWebhookTimeout is how long one webhook attempt may take when nothing else says:
// the default of a config file's deliver.timeout.
const DefaultWebhookTimeout = 10 * time.Second

// NewWebhooks returns a Webhooks whose attempts, when their context has no deadline,
// time out after timeout (0 means DefaultWebhookTimeout); a context's deadline, earlier
// or later, is what bounds an attempt. It registers its metrics with reg (nil registers
// nothing).
func NewWebhooks(reg prometheus.Registerer, timeout time.Duration) *Webhooks {
	return newWebhooks(reg, timeout, "pmd_deliveries_total", "Command delivery attempts by process manager and outcome (delivered, failed).",
		"pmd_delivery_duration_seconds", "Time of one webhook delivery attempt, by process manager.", "manager")
}

func newWebhooks(reg prometheus.Registerer, timeout time.Duration, total, totalHelp, duration, durationHelp, label string) *Webhooks {
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	// The default transport's dial and TLS handshake timeouts stay; nothing caps a
	// whole attempt but its context.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Every process manager (or subscription) shares these connections, a manager
	// running several attempts to its receiver at once: keep as many idle connections
	// to one receiver as in all, not Go's default of 2 a host, which closed the others
	// after every round of concurrent attempts, for the next round to dial them again.
	transport.MaxIdleConnsPerHost = transport.MaxIdleConns
	w := &Webhooks{
		// No redirect is followed: a 301, 302 or 303 would be followed with a GET
		// without the body, whose 2xx would count the command as delivered; a 307 or
		// 308 would send the body and its Idempotency-Key wherever the receiver says.
		// A redirect is a failed attempt that names its Location (post).
		client: &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		timeout: timeout,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: total, Help: totalHelp},
			[]string{label, "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: duration, Help: durationHelp,
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, []string{label}),
	}
	if reg != nil {
		reg.MustRegister(w.outcomes, w.latency)
	}
	return w
}

// Deliver POSTs c as JSON to url with an Idempotency-Key header. Any answer but 2xx,
// and any transport error, is a failed attempt, returned as an error that says what
// the receiver answered; a redirect is not followed, and its error names the Location;
// a 429 or 503 with a Retry-After in the future is a *RetryAfterError.
// The error names url with its credentials masked (redact.URL): errors are logged,
// shown and recorded.
func (w *Webhooks) Deliver(ctx context.Context, url string, c WebhookCommand) error {
	return w.observe(c.Manager, func() error { return w.post(ctx, url, c.ID, c) })
}

// observe makes one attempt, counting it by outcome and timing it under label.
func (w *Webhooks) observe(label string, attempt func() error) error {
	start := time.Now()
	err := attempt()
	w.latency.WithLabelValues(label).Observe(time.Since(start).Seconds())
	outcome := "delivered"
	if err != nil {
		outcome = "failed"
	}
	w.outcomes.WithLabelValues(label, outcome).Inc()
	return err
}

// EventWebhooks POSTs subscriptions' events to webhook URLs, one attempt per call, as
// Webhooks does commands. It is safe for concurrent use.
type EventWebhooks struct{ w *Webhooks }

// NewEventWebhooks returns an EventWebhooks whose attempts time out as NewWebhooks
// says, registering its metrics with reg (nil registers nothing).
func NewEventWebhooks(reg prometheus.Registerer, timeout time.Duration) *EventWebhooks {
	return &EventWebhooks{newWebhooks(reg, timeout, "pmd_subscription_deliveries_total", "Event delivery attempts by subscription and outcome (delivered, failed).",
		"pmd_subscription_delivery_duration_seconds", "Time of one webhook delivery attempt, by subscription.", "subscription")}
}

// Deliver POSTs e as JSON to url, its id as the Idempotency-Key; failures are
// Webhooks.Deliver's.
func (h *EventWebhooks) Deliver(ctx context.Context, url string, e WebhookEvent) error {
	return h.w.observe(e.Subscription, func() error { return h.w.post(ctx, url, e.ID, e) })
}

// drainBytes is how much of a receiver's answer, past the excerpt an error quotes, an
// attempt reads to keep its connection: a longer answer closes it.
const drainBytes = 64 << 10

func (w *Webhooks) post(ctx context.Context, rawURL, id string, v any) error {
	// The raw URL is dialled; errors name it masked, their url.Errors' URL included.
	shown := redact.URL(rawURL)
	masked := func(err error) error {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			ue.URL = shown
		}
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("webhook %s: encode %s: %w", shown, id, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", shown, masked(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("webhook %s timed out: %w", shown, masked(err))
		}
		return fmt.Errorf("webhook %s: %w", shown, masked(err))
	}
	defer resp.Body.Close()
	// Read a little of the answer, enough to say why it failed; then the rest of one
	// up to drainBytes, so that the connection carries the next attempt: an answer
	// closed unread closes it, and every attempt would dial (and, over TLS, shake
	// hands) again.
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	if resp.StatusCode/100 == 3 {
		to := "no Location"
		if loc, err := resp.Location(); err == nil {
			to = "a redirect to " + redact.URL(loc.String())
		}
		return fmt.Errorf("webhook %s answered %s, %s: pmd follows no redirect: set the webhook to the URL that takes the POST", shown, redact.Controls(resp.Status), to)
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(redact.Controls(string(excerpt)))
		if msg != "" {
			msg = ": " + msg
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			if after, ok := retryAfter(resp.Header, time.Now()); ok {
				return &RetryAfterError{After: after,
					Err: fmt.Errorf("webhook %s answered %s, Retry-After %s%s", shown, redact.Controls(resp.Status), after, msg)}
			}
		}
		return fmt.Errorf("webhook %s answered %s%s", shown, redact.Controls(resp.Status), msg)
	}
	return nil
}

// RetryAfterError is a failed attempt whose receiver answered 429 Too Many Requests or
// 503 Service Unavailable with a Retry-After: it asked not to be sent anything before
// After. Package pm's delivery finds its RetryAfter method and waits at least After
// before the next attempt, though no longer than its longest back-off (a minute for pmd
// serve), so that a receiver cannot stall its deliveries for ever. The attempt counts as
// failed, towards max_attempts, as any other.
type RetryAfterError struct {
	After time.Duration // > 0
	Err   error         // the attempt's error, saying what the receiver answered
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter is After.
func (e *RetryAfterError) RetryAfter() time.Duration { return e.After }

// retryAfter reads the Retry-After of an answer (RFC 9110 10.2.3): delay-seconds, or an
// HTTP date, taken relative to the answer's Date when it has one (the receiver's clock
// against itself, not against ours), else to now. ok is false when there is none, it
// is malformed, or it is not in the future: the back-off stands. An absurd delay is
// clamped to the longest Duration; the caller caps it.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil || secs > uint64(math.MaxInt64/time.Second) {
			return math.MaxInt64, true // out of range: digits, so only too large
		}
		return time.Duration(secs) * time.Second, secs > 0
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}
	after := at.Sub(now)
	return after, after > 0
}
