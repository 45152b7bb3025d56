package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

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
}

// Webhooks POSTs commands to webhook URLs, one attempt per call: retries, back-off and
// the record of attempts belong to the caller (the process managers' dispatcher).
// It is safe for concurrent use.
type Webhooks struct {
	client   *http.Client
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewWebhooks returns a Webhooks whose attempts time out after timeout (0 means 10s),
// registering its metrics with reg (nil registers nothing).
func NewWebhooks(reg prometheus.Registerer, timeout time.Duration) *Webhooks {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	w := &Webhooks{
		client: &http.Client{Timeout: timeout},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pmd_deliveries_total", Help: "Command delivery attempts by process manager and outcome (delivered, failed).",
		}, []string{"manager", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pmd_delivery_duration_seconds", Help: "Time of one webhook delivery attempt, by process manager.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"manager"}),
	}
	if reg != nil {
		reg.MustRegister(w.outcomes, w.latency)
	}
	return w
}

// Deliver POSTs c as JSON to url with an Idempotency-Key header. Any answer but 2xx,
// and any transport error, is a failed attempt, returned as an error that says what
// the receiver answered.
func (w *Webhooks) Deliver(ctx context.Context, url string, c WebhookCommand) error {
	start := time.Now()
	err := w.post(ctx, url, c)
	w.latency.WithLabelValues(c.Manager).Observe(time.Since(start).Seconds())
	outcome := "delivered"
	if err != nil {
		outcome = "failed"
	}
	w.outcomes.WithLabelValues(c.Manager, outcome).Inc()
	return err
}

func (w *Webhooks) post(ctx context.Context, url string, c WebhookCommand) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("webhook %s: encode command %s: %w", url, c.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", c.ID)
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	defer resp.Body.Close()
	// Read a little of the answer: enough to say why it failed, and to let the
	// connection be reused.
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(excerpt))
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("webhook %s answered %s%s", url, resp.Status, msg)
	}
	return nil
}
