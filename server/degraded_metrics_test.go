package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lagFailing is a process manager whose lag lookup failed (a damaged index): its
// counts are known, its lag is not.
type lagFailing struct{ fakeProcesses }

func (lagFailing) Managers(context.Context) ([]Manager, error) {
	return []Manager{{Name: "M", Handles: []string{"A"}, Open: 2, Lag: nil}}, nil
}

// failingCollector is a collector one of whose series fails, as a subscription's lag
// does when the index is damaged.
type failingCollector struct{}

var failingDesc = prometheus.NewDesc("pmd_test_failing", "A series that cannot be collected.", nil, nil)

func (failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- failingDesc }
func (failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(failingDesc, errors.New("crc32c checksum mismatch"))
}

// TestMetricsDegraded: a series that cannot be collected, or a process manager whose
// lag cannot be read, leaves the rest of /metrics, /v1/stats and /v1/processes
// answering; the store's damage is what they are there to report.
func TestMetricsDegraded(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(failingCollector{})
	e := newEnv(t, Options{Registry: reg, Processes: &lagFailing{}, Subscriptions: &lagUnknownSubscriptions{}})

	r := e.do("GET", "/metrics", nil).must(t, http.StatusOK)
	for _, want := range []string{"\npmd_damaged_records ", "\npmd_log_last_position ", "\npmd_processes{"} {
		if !strings.Contains(string(r.raw), want) {
			t.Errorf("/metrics lacks %q:\n%s", strings.TrimSpace(want), r.raw)
		}
	}
	if strings.Contains(string(r.raw), "pmd_test_failing ") {
		t.Errorf("/metrics has the failing series:\n%s", r.raw)
	}

	for _, tt := range []struct{ path, list string }{{"/v1/stats", "processes"}, {"/v1/processes", "processes"}} {
		r := e.do("GET", tt.path, nil).must(t, http.StatusOK)
		var got map[string]json.RawMessage
		if err := json.Unmarshal(r.raw, &got); err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		var managers []map[string]any
		if err := json.Unmarshal(got[tt.list], &managers); err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		if len(managers) != 1 {
			t.Fatalf("%s: %d managers, want 1: %s", tt.path, len(managers), r.raw)
		}
		if lag, ok := managers[0]["lag"]; !ok || lag != nil {
			t.Errorf("%s: lag %v (present %t), want null", tt.path, lag, ok)
		}
		if managers[0]["open"] != 2.0 {
			t.Errorf("%s: open %v, want 2", tt.path, managers[0]["open"])
		}
	}
	// A subscription whose lag could not be read is listed, its lag null.
	for _, path := range []string{"/v1/stats", "/v1/subscriptions"} {
		var got struct{ Subscriptions []map[string]any }
		if err := json.Unmarshal(e.do("GET", path, nil).must(t, http.StatusOK).raw, &got); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(got.Subscriptions) != 1 || got.Subscriptions[0]["lag"] != nil || got.Subscriptions[0]["position"] != 7.0 {
			t.Errorf("%s: subscriptions %v, want one at position 7 with lag null", path, got.Subscriptions)
		}
	}
}

// lagUnknownSubscriptions has one subscription whose lag could not be read.
type lagUnknownSubscriptions struct{ fakeSubscriptions }

func (*lagUnknownSubscriptions) List(context.Context) ([]Subscription, error) {
	return []Subscription{{Name: "billing", Filter: SubscriptionFilter{Types: []string{"ConfirmOrder"}},
		Webhook: "http://127.0.0.1:9001/events", Position: 7, Status: "delivering", Stream: "billing.subscription"}}, nil
}

// TestScrapeErrorLog: a collection that keeps failing is logged once a minute, not at
// every scrape.
func TestScrapeErrorLog(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := scrapeErrorLog{log: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }}
	for _, step := range []struct {
		after  time.Duration
		logged bool
	}{
		{0, true},
		{10 * time.Second, false},
		{49 * time.Second, false},
		{time.Second, true}, // a minute after the last line
		{-time.Hour, true},  // the clock stepped back
		{time.Second, false},
	} {
		now = now.Add(step.after)
		buf.Reset()
		l.Println("error collecting metric:", "crc32c checksum mismatch")
		if got := buf.Len() > 0; got != step.logged {
			t.Fatalf("at %v: logged %t, want %t", now.Unix(), got, step.logged)
		}
	}
}
