package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/logevery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics: requests, events appended, linked and
// read, subscriptions, the log's last position and the process counts. The store's own
// group commits (fsync latency, batch sizes) are recorded by Commits (stats.go).
type metrics struct {
	reg           *prometheus.Registry
	gather        prometheus.Gatherer // reg, and Options.MoreMetrics when set
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	appends       prometheus.Counter
	appendBytes   prometheus.Counter
	appendBatch   prometheus.Histogram
	links         prometheus.Counter
	reads         prometheus.Counter
	subscriptions prometheus.Gauge
	// subscriptionsCut counts subscribers cut for letting live events pile up.
	subscriptionsCut prometheus.Counter
	// budgetRefused counts requests refused for want of the memory budget.
	budgetRefused prometheus.Counter
	// scrapeErrs logs the collectors' errors; its log is Options.Logger.
	scrapeErrs scrapeErrorLog
}

// problems are what /healthz lists (Server.problems), for pmd_health_problems.
func newMetrics(reg *prometheus.Registry, more prometheus.Gatherer, store *pmd.Store, procs Processes, memory *memoryBudget, problems func() []string) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	var gather prometheus.Gatherer = reg
	if more != nil {
		gather = prometheus.Gatherers{reg, more}
	}
	m := &metrics{
		reg:    reg,
		gather: gather,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pmd_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pmd_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route; for appends and links it includes the shared fsync.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pmd_events_appended_total", Help: "Events appended through the HTTP API.",
		}),
		appendBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pmd_append_bytes_total", Help: "Bytes of append request bodies accepted.",
		}),
		appendBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pmd_append_events_per_request", Help: "Events per append request.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		links: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pmd_events_linked_total", Help: "Events linked through the HTTP API.",
		}),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pmd_events_read_total", Help: "Events sent in read responses and subscriptions.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pmd_subscriptions", Help: "Open SSE subscriptions.",
		}),
		subscriptionsCut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pmd_subscriptions_cut_total", Help: "SSE subscribers cut for letting more live events pile up than the subscriber buffer holds.",
		}),
		budgetRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pmd_memory_budget_refused_total", Help: "Requests refused as unavailable because request bodies, the values parsed from them and pages being sent held the whole memory budget.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.appends, m.appendBytes, m.appendBatch, m.links, m.reads, m.subscriptions, m.subscriptionsCut, m.budgetRefused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pmd_memory_budget_held_bytes", Help: "Bytes of the memory budget that request bodies, the values parsed from them and pages being sent hold now.",
		}, func() float64 { return float64(memory.Held()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pmd_log_last_position", Help: "Position of the last record in the log.",
		}, func() float64 { return float64(store.LastPosition()) }),
		// Some degraded states have no series of their own (a damaged index, writes
		// stopped until a restart, a cluster node removed or halted): this one alert
		// covers them all.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pmd_health_problems",
			Help: "Problems /healthz lists now (damaged records, failing or stopped writes, a damaged index, a cluster node removed or halted); 0 while healthy. A cluster node without a leader shows in pmd_raft_state.",
		}, func() float64 { return float64(len(problems())) }))
	if procs != nil {
		reg.MustRegister(processCollector{procs})
	}
	reg.MustRegister(storeCollector{store})
	return m
}

// storeCollector reports the store's health and index figures at scrape time.
type storeCollector struct{ store *pmd.Store }

var storeDescs = map[string]*prometheus.Desc{
	"damaged":   prometheus.NewDesc("pmd_damaged_records", "Damaged log records found at start or by the scrub; /healthz says degraded while there are any.", nil, nil),
	"failures":  prometheus.NewDesc("pmd_write_failures_total", "Writes refused as unavailable because the log could not write (disk full, I/O error).", nil, nil),
	"failing":   prometheus.NewDesc("pmd_writes_failing", "1 while the last write failed and the log has not yet recovered.", nil, nil),
	"durable":   prometheus.NewDesc("pmd_index_durable_position", "The index is on disk up to this log position; a crash replays the log after it.", nil, nil),
	"disk":      prometheus.NewDesc("pmd_index_disk_bytes", "Bytes of the index's files on disk.", nil, nil),
	"cache":     prometheus.NewDesc("pmd_index_cache_bytes", "Bytes of index blocks cached in memory.", nil, nil),
	"cachemax":  prometheus.NewDesc("pmd_index_cache_limit_bytes", "The bound on pmd_index_cache_bytes: pmd serve --cache.", nil, nil),
	"hits":      prometheus.NewDesc("pmd_index_cache_hits_total", "Index block cache hits.", nil, nil),
	"misses":    prometheus.NewDesc("pmd_index_cache_misses_total", "Index block cache misses.", nil, nil),
	"memtable":  prometheus.NewDesc("pmd_index_memtable_bytes", "Bytes in the index's memtables; its newest entries are in its overlays (pmd_index_overlay_bytes).", nil, nil),
	"ovEntries": prometheus.NewDesc("pmd_index_overlay_entries", "Index entries in the overlay taking batches, in memory and not yet on disk.", nil, nil),
	"ovFrozen":  prometheus.NewDesc("pmd_index_overlays_frozen", "Full index overlays waiting for their hand-off to disk (at most 4); staying above 0 means the hand-offs fail.", nil, nil),
	"ovBytes":   prometheus.NewDesc("pmd_index_overlay_bytes", "An estimate of the memory of the index's overlays, its newest entries.", nil, nil),
	"handoffs":  prometheus.NewDesc("pmd_index_handoff_failures_total", "Hand-offs of an index overlay to disk that failed (disk full, I/O error); each is logged and tried again.", nil, nil),
	"l0":        prometheus.NewDesc("pmd_index_l0_files", "Index files in level 0; a growing number means compactions are behind.", nil, nil),
	"scavenges": prometheus.NewDesc("pmd_scavenges_total", "Scavenges finished since the daemon started.", nil, nil),
	"scavenged": prometheus.NewDesc("pmd_scavenged_bytes_total", "Disk bytes scavenges freed since the daemon started.", nil, nil),
}

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range storeDescs {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.store.Stats()
	failing := 0.0
	if st.WritesFailing {
		failing = 1
	}
	for key, v := range map[string]float64{
		"damaged": float64(st.DamagedRecords), "failing": failing, "durable": float64(st.IndexDurable),
		"disk": float64(st.IndexDiskBytes), "cache": float64(st.IndexCacheBytes), "cachemax": float64(st.IndexCacheLimit), "memtable": float64(st.IndexMemTableBytes),
		"l0": float64(st.IndexL0Files), "ovEntries": float64(st.IndexOverlayEntries), "ovFrozen": float64(st.IndexOverlaysFrozen),
		"ovBytes": float64(st.IndexOverlayBytes),
	} {
		ch <- prometheus.MustNewConstMetric(storeDescs[key], prometheus.GaugeValue, v)
	}
	for key, v := range map[string]float64{
		"failures": float64(st.WriteFailures), "hits": float64(st.IndexCacheHits), "misses": float64(st.IndexCacheMisses),
		"scavenges": float64(st.Scavenges), "scavenged": float64(st.ScavengedBytes), "handoffs": float64(st.IndexHandOffFailures),
	} {
		ch <- prometheus.MustNewConstMetric(storeDescs[key], prometheus.CounterValue, v)
	}
}

// handler serves the metrics. A collector that fails (a lag read from a damaged index)
// loses its own series only: the rest are served, pmd_damaged_records among them, and
// the failure is logged at most once a minute.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.gather, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ErrorLog: &m.scrapeErrs})
}

// scrapeErrorLog logs the errors of collecting metrics, at most once a minute: a
// damaged index fails every scrape, every few seconds, until it is repaired.
type scrapeErrorLog struct {
	mu   sync.Mutex
	log  *slog.Logger // nil: slog.Default()
	now  func() time.Time
	line logevery.Line
}

// sendFailed is how promhttp begins the line for a failed write of the answer: the
// client went away or stopped reading, which is its doing, not a failed collection.
const sendFailed = "error encoding and sending metric family"

func isSendFailure(first any) bool {
	s, ok := first.(string)
	return ok && strings.HasPrefix(s, sendFailed)
}

// Println implements promhttp.Logger.
func (l *scrapeErrorLog) Println(v ...any) {
	log := l.log
	if log == nil {
		log = slog.Default()
	}
	if len(v) > 0 && isSendFailure(v[0]) {
		// At DEBUG, as other routes' answers not sent in full, and without taking the
		// once-a-minute line from a collection that fails.
		log.Debug("metrics: answer not sent in full", "err", fmt.Sprint(v...))
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	suppressed, ok := l.line.Log(now())
	if !ok {
		return
	}
	log.Warn("metrics: collecting failed; the other series are served", "err", fmt.Sprint(v...), "suppressed", suppressed)
}

func (m *metrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) appended(events int, bytes int64) {
	m.appends.Add(float64(events))
	m.appendBatch.Observe(float64(events))
	if bytes > 0 {
		m.appendBytes.Add(float64(bytes))
	}
}

func (m *metrics) linked(events int) { m.links.Add(float64(events)) }

func (m *metrics) read(events int) { m.reads.Add(float64(events)) }

// processCollector reports the process counts of the process managers at scrape time.
type processCollector struct{ procs Processes }

var processesDesc = prometheus.NewDesc("pmd_processes", "Processes by process manager and status.",
	[]string{"manager", "status"}, nil)

func (c processCollector) Describe(ch chan<- *prometheus.Desc) { ch <- processesDesc }

func (c processCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	managers, err := c.procs.Managers(ctx)
	if errors.Is(err, pmd.ErrUnavailable) {
		// A follower of a cluster runs no process managers: it has none to count, and an
		// invalid metric would fail its whole /metrics (the stats route does the same).
		return
	}
	if err != nil {
		return // left out of this scrape rather than failing the others (see handler)
	}
	for _, m := range managers {
		ch <- prometheus.MustNewConstMetric(processesDesc, prometheus.GaugeValue, float64(m.Open), m.Name, "open")
		ch <- prometheus.MustNewConstMetric(processesDesc, prometheus.GaugeValue, float64(m.Completed), m.Name, "completed")
		ch <- prometheus.MustNewConstMetric(processesDesc, prometheus.GaugeValue, float64(m.Expired), m.Name, "expired")
	}
}
