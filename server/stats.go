package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/prometheus/client_golang/prometheus"
)

// The stats route, GET /v1/stats, is what the browser's dashboard shows: the store's
// figures, its write rate and commit latency over the last minutes, the process
// managers, the subscriptions, health and, in a cluster, the nodes. It reads nothing
// from disk but one index lookup for health (as /healthz) and one per process manager
// (its lag), so that a dashboard polling it costs the daemon next to nothing whatever
// the store's size.
//
// The rates come from samples of cumulative counters (the log's last position, the
// group commits that Commits records, the managers' delivery attempts) that the server
// takes once in each wall-clock second while it serves: its loop samples half-way
// through every second, and a request samples too when its second has none yet (so the
// newest value is at most a second old). A sample is keyed by its second, not compared
// with the last one's time: a tick a hair early or late (timer jitter) still lands in
// its own second, where "at least statsEvery since the last" dropped every early tick
// and made the series one value per 1.5-2 s. A ring keeps the last statsSamples; when the
// wall clock steps back, the window starts again from the new time (see nextSample).

const (
	statsEvery   = time.Second
	statsSamples = 301 // five minutes of intervals at one sample a second
)

// Commits records the store's group commits: for /metrics (latency and batch sizes,
// as histograms) and for the stats route (totals the server samples for its charts).
// Open the store with pmd.Options{OnCommit: commits.Observe} and give the server the
// same Commits in Options.Commits. It is safe for concurrent use.
type Commits struct {
	duration, writes, records prometheus.Histogram

	mu  sync.Mutex
	tot commitTotals
}

// commitTotals are cumulative figures of the group commits since start; max is the
// longest commit since the last sample took it.
type commitTotals struct {
	commits, writes, records uint64
	nanos                    uint64
	max                      time.Duration
}

// NewCommits returns a Commits whose histograms are registered with reg (nil registers
// none).
func NewCommits(reg prometheus.Registerer) *Commits {
	c := &Commits{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pmd_commit_duration_seconds",
			Help:    "Time of one group commit: the log write and its fsync.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		writes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pmd_commit_batch_writes", Help: "Writes (appends, links, deletes) sharing one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		records: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pmd_commit_batch_records", Help: "Log records written by one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(c.duration, c.writes, c.records)
	}
	return c
}

// Observe records one group commit; it is pmd.Options.OnCommit.
func (c *Commits) Observe(info pmd.CommitInfo) {
	c.duration.Observe(info.Duration.Seconds())
	c.writes.Observe(float64(info.Requests))
	c.records.Observe(float64(info.Records))
	c.mu.Lock()
	c.tot.commits++
	c.tot.writes += uint64(info.Requests)
	c.tot.records += uint64(info.Records)
	c.tot.nanos += uint64(info.Duration)
	c.tot.max = max(c.tot.max, info.Duration)
	c.mu.Unlock()
}

// take returns the totals and starts a new max.
func (c *Commits) take() commitTotals {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tot
	c.tot.max = 0
	return t
}

// CommitObserver returns a hook for pmd.Options.OnCommit that records every group commit
// in reg: how long its log write and fsync took, and how many writes and records it
// carried. NewCommits does the same and also feeds the stats route.
func CommitObserver(reg prometheus.Registerer) func(pmd.CommitInfo) {
	return NewCommits(reg).Observe
}

// ClusterStatus is how a cluster stands, as one of its nodes sees it: what the stats
// route shows as "cluster". A single node has none (Options.Cluster nil).
type ClusterStatus struct {
	NodeID       string        `json:"node_id"`
	LeaderID     string        `json:"leader_id"` // "" while no leader is known
	CommitIndex  uint64        `json:"commit_index"`
	AppliedIndex uint64        `json:"applied_index"`
	Nodes        []ClusterNode `json:"nodes"`
}

// ClusterNode is one node of a cluster.
type ClusterNode struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	// State is leader, follower, candidate or a word for a node that cannot be
	// reached (unreachable).
	State string `json:"state"`
	// AppliedIndex is the last Raft index the node applied, nil when it did not answer
	// the answering node within a second (State unreachable). Lag is how many entries
	// it is behind the leader's commit index, known on the leader only: nil on a
	// follower, its own row too, and for a node whose AppliedIndex is nil.
	AppliedIndex *uint64 `json:"applied_index"`
	Lag          *uint64 `json:"lag"`
}

// sample is one reading of the cumulative counters.
type sample struct {
	at       time.Time
	position uint64
	commits  commitTotals
	// attempts and failures of each manager's deliveries, cumulative.
	deliveries map[string][2]uint64
}

// sampler keeps the last statsSamples samples in a ring.
type sampler struct {
	mu   sync.Mutex
	ring [statsSamples]sample
	// n counts the samples taken since the window started (the server's start, or the
	// wall clock's last step back); the newest is ring[(n-1)%statsSamples].
	n int
}

// newest returns the last sample, ok false before the first.
func (sp *sampler) newest() (sample, bool) {
	if sp.n == 0 {
		return sample{}, false
	}
	return sp.ring[(sp.n-1)%statsSamples], true
}

// sampleAction is what takeSample does with a reading of now, given the newest sample.
type sampleAction int

const (
	sampleSkip    sampleAction = iota // now's second has a sample already
	sampleAppend                      // now is in a later second (or there is no sample)
	sampleRestart                     // now is in an earlier second: the wall clock stepped back
)

// nextSample says what to do with a reading at now when the newest sample, if ok, is
// last. An earlier second than the newest sample's means the wall clock stepped back
// (an NTP step, a restored VM): skipping it, as a duplicate, froze the series until the
// clock was back where it had been, and appending it would make the charts' intervals
// run backwards, so the window starts afresh. (Callers read the clock right before
// takeSample, so a reading does not go stale behind another caller's.)
func nextSample(now time.Time, last sample, ok bool) sampleAction {
	if !ok {
		return sampleAppend
	}
	n, l := now.Truncate(statsEvery), last.at.Truncate(statsEvery)
	switch {
	case n.Equal(l):
		return sampleSkip
	case n.After(l):
		return sampleAppend
	default:
		return sampleRestart
	}
}

// takeSample reads the counters unless the newest sample is of now's second.
func (s *Server) takeSample(ctx context.Context, now time.Time) {
	s.samples.mu.Lock()
	last, ok := s.samples.newest()
	taken := s.samples.n
	s.samples.mu.Unlock()
	if nextSample(now, last, ok) == sampleSkip {
		return
	}
	smp := sample{at: now}
	if s.opts.Processes != nil {
		if managers, err := s.opts.Processes.Managers(ctx); err == nil {
			smp.deliveries = make(map[string][2]uint64, len(managers))
			for _, m := range managers {
				smp.deliveries[m.Name] = [2]uint64{m.DeliveryAttempts, m.DeliveryFailures}
			}
		}
	}
	s.samples.mu.Lock()
	defer s.samples.mu.Unlock()
	last, ok = s.samples.newest()
	switch nextSample(smp.at, last, ok) {
	case sampleSkip:
		return // another sample of this second got in first
	case sampleRestart:
		if s.samples.n != taken {
			return // another sample, of a later second, got in first
		}
		s.samples.n = 0
	}
	// The counters are read only by the sample that goes in: Commits.take starts a new
	// max, which a sample that lost the race to another of its second would drop.
	smp.position = s.store.LastPosition()
	if s.opts.Commits != nil {
		smp.commits = s.opts.Commits.take()
	}
	s.samples.ring[s.samples.n%statsSamples] = smp
	s.samples.n++
}

// untilNextSample returns how long from now to the middle of the next wall-clock second,
// when the loop samples next.
func untilNextSample(now time.Time) time.Duration {
	into := now.Sub(now.Truncate(statsEvery))
	if into < statsEvery/2 {
		return statsEvery/2 - into
	}
	return statsEvery + statsEvery/2 - into
}

// sampleLoop samples half-way through every wall-clock second until ctx is done.
func (s *Server) sampleLoop(ctx context.Context) {
	// The store starts counting its events and streams for the first dashboard, and the
	// window of the rates starts when the server does.
	s.store.Stats()
	s.takeSample(ctx, time.Now())
	t := time.NewTimer(untilNextSample(time.Now()))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.takeSample(ctx, time.Now())
			t.Reset(untilNextSample(time.Now()))
		case <-ctx.Done():
			return
		}
	}
}

// history returns the samples, oldest first.
func (s *Server) history() []sample {
	s.samples.mu.Lock()
	defer s.samples.mu.Unlock()
	n := min(s.samples.n, statsSamples)
	out := make([]sample, 0, n)
	for i := s.samples.n - n; i < s.samples.n; i++ {
		out = append(out, s.samples.ring[i%statsSamples])
	}
	return out
}

// statsJSON is the answer of GET /v1/stats.
type statsJSON struct {
	Time          time.Time      `json:"time"`
	Store         storeStatsJSON `json:"store"`
	Health        healthJSON     `json:"health"`
	Series        seriesJSON     `json:"series"`
	Processes     []managerStats `json:"processes"`
	Subscriptions []Subscription `json:"subscriptions"`
	Cluster       *ClusterStatus `json:"cluster"`
}

type storeStatsJSON struct {
	// Events and Streams are null until the store has counted them (see pmd.Stats).
	Events         *uint64 `json:"events"`
	Streams        *uint64 `json:"streams"`
	LastPosition   uint64  `json:"last_position"`
	DiskBytes      uint64  `json:"disk_bytes"`
	LogBytes       uint64  `json:"log_bytes"`
	IndexBytes     uint64  `json:"index_bytes"`
	Segments       int     `json:"segments"`
	WriteFailures  uint64  `json:"write_failures"`
	ScavengedBytes uint64  `json:"scavenged_bytes"`
}

type healthJSON struct {
	Status   string   `json:"status"` // ok or degraded
	Problems []string `json:"problems"`
}

// seriesJSON holds the charts' data, one value per interval between two samples,
// oldest first, in the column layout charting libraries take: Time[i] is the end of
// interval i (Unix seconds). A value is null where it is not known: commit figures
// without Options.Commits, or for an interval without a commit.
type seriesJSON struct {
	Time             []float64  `json:"time"`
	RecordsPerSecond []float64  `json:"records_per_second"`
	WritesPerSecond  []*float64 `json:"writes_per_second"`
	CommitMeanMillis []*float64 `json:"commit_mean_ms"`
	CommitMaxMillis  []*float64 `json:"commit_max_ms"`
}

// managerStats is a process manager on the dashboard: its counts, and its deliveries
// over the samples' window.
type managerStats struct {
	Manager
	// WindowAttempts and WindowFailures count the delivery attempts of the last
	// WindowSeconds and the failed ones; FailureRate is their ratio, null without an
	// attempt.
	WindowSeconds  float64  `json:"window_seconds"`
	WindowAttempts uint64   `json:"window_attempts"`
	WindowFailures uint64   `json:"window_failures"`
	FailureRate    *float64 `json:"failure_rate"`
}

// stats answers GET /v1/stats.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	// A store /healthz finds closed answers here as there: 503 unavailable.
	health, err := s.health()
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := time.Now()
	s.takeSample(ctx, now)
	st := s.store.Stats()
	out := statsJSON{
		Time: now.UTC(),
		Store: storeStatsJSON{
			LastPosition: st.LastPosition, DiskBytes: st.LogDiskBytes + st.IndexDiskBytes,
			LogBytes: st.LogDiskBytes, IndexBytes: st.IndexDiskBytes, Segments: st.LogSegments,
			WriteFailures: st.WriteFailures, ScavengedBytes: st.ScavengedBytes,
		},
		Health:        health,
		Processes:     []managerStats{},
		Subscriptions: []Subscription{},
	}
	if st.Counted {
		out.Store.Events, out.Store.Streams = &st.Events, &st.Streams
	}
	hist := s.history()
	out.Series = series(hist, s.opts.Commits != nil)
	// The process managers and subscriptions of a cluster run on its leader: a
	// follower, which cannot say how they stand, shows none.
	if s.opts.Processes != nil {
		managers, err := s.opts.Processes.Managers(ctx)
		if err != nil && !errors.Is(err, pmd.ErrUnavailable) {
			return err
		}
		for _, m := range managers {
			out.Processes = append(out.Processes, window(m, hist))
		}
	}
	if s.opts.Subscriptions != nil {
		subs, err := s.opts.Subscriptions.List(ctx)
		if err != nil && !errors.Is(err, pmd.ErrUnavailable) {
			return err
		}
		for _, sub := range subs {
			out.Subscriptions = append(out.Subscriptions, sub.normal())
		}
	}
	if s.opts.Cluster != nil {
		c, err := s.opts.Cluster(ctx)
		if err != nil {
			return err
		}
		if c.Nodes == nil {
			c.Nodes = []ClusterNode{}
		}
		out.Cluster = &c
	}
	return writeJSON(w, http.StatusOK, out)
}

// series turns samples into rates, one per interval between two samples.
func series(hist []sample, commits bool) seriesJSON {
	n := max(len(hist)-1, 0)
	out := seriesJSON{
		Time: make([]float64, n), RecordsPerSecond: make([]float64, n),
		WritesPerSecond: make([]*float64, n), CommitMeanMillis: make([]*float64, n), CommitMaxMillis: make([]*float64, n),
	}
	for i := range n {
		a, b := hist[i], hist[i+1]
		secs := b.at.Sub(a.at).Seconds()
		out.Time[i] = float64(b.at.UnixMilli()) / 1000
		out.RecordsPerSecond[i] = float64(b.position-a.position) / secs
		if !commits {
			continue
		}
		writes := float64(b.commits.writes-a.commits.writes) / secs
		out.WritesPerSecond[i] = &writes
		if c := b.commits.commits - a.commits.commits; c > 0 {
			mean := float64(b.commits.nanos-a.commits.nanos) / float64(c) / 1e6
			most := float64(b.commits.max) / 1e6
			out.CommitMeanMillis[i], out.CommitMaxMillis[i] = &mean, &most
		}
	}
	return out
}

// window adds to m its deliveries over the samples' window: from the oldest sample of
// the newest run that holds m's counters, none of them going down. A sample without them
// (taken before this node led its cluster, or when the managers could not be listed)
// or a counter that went down (a new leadership term counts from 0 again, docs/cluster.md)
// starts the window afresh after it, as a step back of the clock does (nextSample).
func window(m Manager, hist []sample) managerStats {
	out := managerStats{Manager: normalManager(m)}
	if len(hist) < 2 {
		return out
	}
	last := hist[len(hist)-1]
	b, ok := last.deliveries[m.Name]
	if !ok {
		return out
	}
	first, a := len(hist)-1, b
	for i := len(hist) - 2; i >= 0; i-- {
		d, ok := hist[i].deliveries[m.Name]
		if !ok || d[0] > a[0] || d[1] > a[1] {
			break
		}
		first, a = i, d
	}
	if first == len(hist)-1 {
		return out
	}
	out.WindowSeconds = last.at.Sub(hist[first].at).Seconds()
	out.WindowAttempts, out.WindowFailures = b[0]-a[0], b[1]-a[1]
	if out.WindowAttempts > 0 {
		rate := float64(out.WindowFailures) / float64(out.WindowAttempts)
		out.FailureRate = &rate
	}
	return out
}
