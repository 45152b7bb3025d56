package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/config"
	"github.com/pmd-dev/pmd/internal/redact"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/server"
	"github.com/prometheus/client_golang/prometheus"
)

// subscribed is one subscription of the config file, running.
type subscribed struct {
	cfg config.Subscription
	sub *pm.Subscription
}

// subscriptions runs the subscriptions of the config file and answers the API's
// questions about them.
type subscriptions struct {
	tasks
	subs []subscribed
}

// startSubscriptions starts the subscriptions of cfg (none when cfg is nil), with their
// metrics in reg (nil for none). They run until stop; if one fails, failed is called
// once.
func startSubscriptions(ctx context.Context, store *pmd.Store, cfg *config.Config, reg *prometheus.Registry, logger *slog.Logger, failed func()) (*subscriptions, error) {
	p := &subscriptions{}
	if cfg == nil || len(cfg.Subscriptions) == 0 {
		return p, nil
	}
	var metrics prometheus.Registerer // nil registers nothing; a nil *Registry would not be nil here
	if reg != nil {
		metrics = reg
	}
	hooks := server.NewEventWebhooks(metrics, 0)
	for _, sc := range cfg.Subscriptions {
		opts := sc.Options()
		opts.Logger = logger
		opts.Receiver = redact.URL(sc.Deliver.Webhook) // shown and recorded: its credentials masked
		opts.Deliver = eventHandler(hooks, sc.Name, sc.Deliver.Webhook, sc.Deliver.Timeout, sc.Stream != "")
		sub, err := pm.NewSubscription(store, sc.Name, sc.Filter(), opts)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: subscription %s: %w", cfg.Path, sc.Line, sc.Name, err)
		}
		p.subs = append(p.subs, subscribed{cfg: sc, sub: sub})
	}
	if reg != nil {
		reg.MustRegister(&subscriptionCollector{p: p})
	}
	ctx = p.start(ctx)
	for _, s := range p.subs {
		logger.Info("subscription started", "name", s.cfg.Name, "follows", s.cfg.Describe(), "webhook", redact.URL(s.cfg.Deliver.Webhook))
		p.run(ctx, "subscription", s.cfg.Name, s.sub.Run, logger, failed)
	}
	return p, nil
}

// eventHandler delivers the events of one subscription to its webhook, each attempt
// cut off after timeout (0 for server.DefaultWebhookTimeout), however long that is.
func eventHandler(hooks *server.EventWebhooks, name, url string, timeout time.Duration, withVersion bool) pm.EventHandler {
	return func(ctx context.Context, e pmd.Event) error {
		ctx, cancel := context.WithTimeout(ctx, cmp.Or(timeout, server.DefaultWebhookTimeout))
		defer cancel()
		return hooks.Deliver(ctx, url, server.NewWebhookEvent(name, e, withVersion))
	}
}

func (p *subscriptions) count() int { return len(p.subs) }

// api is p as the server sees it; nil when no subscription runs.
func (p *subscriptions) api() server.Subscriptions {
	if len(p.subs) == 0 {
		return nil
	}
	return p
}

func (p *subscriptions) find(name string) (subscribed, error) {
	for _, s := range p.subs {
		if s.cfg.Name == name {
			return s, nil
		}
	}
	return subscribed{}, notFound("no subscription %q", name)
}

// List implements server.Subscriptions.
func (p *subscriptions) List(ctx context.Context) ([]server.Subscription, error) {
	out := make([]server.Subscription, len(p.subs))
	for i, s := range p.subs {
		st, err := s.sub.Status(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = summary(s, st)
	}
	return out, nil
}

// Subscription implements server.Subscriptions.
func (p *subscriptions) Subscription(ctx context.Context, name string) (server.SubscriptionDetail, error) {
	s, err := p.find(name)
	if err != nil {
		return server.SubscriptionDetail{}, err
	}
	st, err := s.sub.Status(ctx)
	if err != nil {
		return server.SubscriptionDetail{}, err
	}
	out := server.SubscriptionDetail{Subscription: summary(s, st), ParkedEvents: []server.ParkedEvent{}}
	for _, pe := range st.Parked {
		out.ParkedEvents = append(out.ParkedEvents, stuckEvent(&pe.Event, pe.At, pe.Attempts, pe.Err))
	}
	if f := st.Failing; f != nil {
		out.FailingEvent = &server.FailingEvent{ParkedEvent: stuckEvent(&f.Event, f.At, f.Attempts, f.Err)}
		if !f.RetryAt.IsZero() {
			out.FailingEvent.RetryAt = &f.RetryAt
		}
	}
	return out, nil
}

// stuckEvent is a parked or failing event as the API shows it.
func stuckEvent(e *pmd.Event, at uint64, attempts int, err string) server.ParkedEvent {
	// An error recorded by an earlier version may name the webhook unmasked.
	return server.ParkedEvent{ID: e.ID.String(), Type: e.Type, Stream: e.Stream, Position: at, Attempts: attempts, Error: redact.URLsIn(err)}
}

// summary is a subscription as the API lists it.
func summary(s subscribed, st pm.SubscriptionStatus) server.Subscription {
	out := server.Subscription{
		Name:    s.cfg.Name,
		Filter:  server.SubscriptionFilter{Types: slices.Clone(s.cfg.Types), Stream: s.cfg.Stream, Category: s.cfg.Category},
		Webhook: redact.URL(s.cfg.Deliver.Webhook), Position: st.Position, Parked: len(st.Parked),
		Status: "delivering", LastError: redact.URLsIn(st.LastErr), Stream: pm.SubscriptionStream(s.cfg.Name),
	}
	if st.LagErr == nil {
		out.Lag = &st.Lag
	}
	switch {
	case len(st.Parked) > 0:
		out.Status = "parked"
	case st.Failing != nil:
		out.Status = "failing"
		if !st.RetryAt.IsZero() {
			out.RetryAt = &st.RetryAt
		}
	}
	if !st.LastErrAt.IsZero() {
		out.LastErrorAt = &st.LastErrAt
	}
	return out
}

// Retry implements server.Subscriptions.
func (p *subscriptions) Retry(ctx context.Context, name string, event uuid.UUID) error {
	return p.operate(ctx, name, event, (*pm.Subscription).Retry)
}

// Skip implements server.Subscriptions.
func (p *subscriptions) Skip(ctx context.Context, name string, event uuid.UUID) error {
	return p.operate(ctx, name, event, (*pm.Subscription).Skip)
}

func (p *subscriptions) operate(ctx context.Context, name string, event uuid.UUID, op func(*pm.Subscription, context.Context, uuid.UUID) error) error {
	s, err := p.find(name)
	if err != nil {
		return err
	}
	err = op(s.sub, ctx, event)
	switch {
	case errors.Is(err, pm.ErrEventNotAwaiting):
		return &apiError{err, server.ErrNotFound}
	case errors.Is(err, pm.ErrEventNotStuck), errors.Is(err, pm.ErrNotRunning):
		return &apiError{err, server.ErrConflict}
	}
	return err
}

// subscriptionCollector exports the subscriptions' Status as Prometheus metrics, read
// when scraped. Their delivery attempts and latency are the Webhooks' metrics.
type subscriptionCollector struct{ p *subscriptions }

var (
	subPositionDesc = prometheus.NewDesc("pmd_subscription_position",
		"Where a subscription stands: every matching event below this log position (stream version, for a stream) was delivered or skipped.",
		[]string{"subscription"}, nil)
	subLagDesc = prometheus.NewDesc("pmd_subscription_lag_events",
		"How far a subscription is behind: from its position to the newest matching event, in log positions (versions, for a stream); 0 when caught up.",
		[]string{"subscription"}, nil)
	subParkedDesc = prometheus.NewDesc("pmd_subscription_parked_events",
		"Events parked after failing max_attempts times in a row; a parked event holds its subscription back until retried or skipped.",
		[]string{"subscription"}, nil)
)

func (c *subscriptionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- subPositionDesc
	ch <- subLagDesc
	ch <- subParkedDesc
}

func (c *subscriptionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.p.subs {
		st, err := s.sub.Status(context.Background())
		if err != nil {
			continue // a closed store: nothing to say of this subscription in this scrape
		}
		ch <- prometheus.MustNewConstMetric(subPositionDesc, prometheus.GaugeValue, float64(st.Position), s.cfg.Name)
		if st.LagErr == nil {
			// Left out when the lag lookup failed (a damaged index, which
			// pmd_damaged_records and /healthz report), not made an error that would
			// fail all of /metrics.
			ch <- prometheus.MustNewConstMetric(subLagDesc, prometheus.GaugeValue, float64(st.Lag), s.cfg.Name)
		}
		ch <- prometheus.MustNewConstMetric(subParkedDesc, prometheus.GaugeValue, float64(len(st.Parked)), s.cfg.Name)
	}
}
