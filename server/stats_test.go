package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestStats: GET /v1/stats answers the store's figures, a series of rates from the
// samples taken, the process managers with their delivery window, the subscriptions,
// health, and a cluster only when one is given.
func TestStats(t *testing.T) {
	commits := NewCommits(nil)
	procs := &fakeProcesses{}
	e := newEnv(t, Options{Processes: procs, Subscriptions: &fakeSubscriptions{}, Commits: commits})
	ctx := context.Background()
	for i := range 3 {
		start := time.Now()
		if _, err := e.store.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed"}); err != nil {
			t.Fatal(err)
		}
		commits.Observe(pmd.CommitInfo{Requests: 1, Records: 1, Duration: time.Since(start)})
		// Samples a second apart, as the server's loop takes them.
		e.srv.takeSample(ctx, time.Unix(1000+int64(i), 0))
	}

	var got struct {
		Store struct {
			Events, Streams *uint64
			LastPosition    uint64 `json:"last_position"`
			Segments        int
			DiskBytes       uint64 `json:"disk_bytes"`
		}
		Health struct {
			Status   string
			Problems []string
		}
		Series struct {
			Time             []float64
			RecordsPerSecond []float64  `json:"records_per_second"`
			CommitMeanMillis []*float64 `json:"commit_mean_ms"`
		}
		Processes []struct {
			Name        string
			Open        int
			FailureRate *float64 `json:"failure_rate"`
		}
		Subscriptions []Subscription
		Cluster       *ClusterStatus
	}
	// The store counts its events in the background after the first call.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.do("GET", "/v1/stats", nil).must(t, http.StatusOK)
		if err := json.Unmarshal(r.raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.Store.Events != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got.Store.Events == nil || *got.Store.Events != 3 || got.Store.Streams == nil || *got.Store.Streams != 1 {
		t.Errorf("store counts: events %v, streams %v; want 3 and 1", got.Store.Events, got.Store.Streams)
	}
	if got.Store.LastPosition != 3 || got.Store.Segments != 1 || got.Store.DiskBytes == 0 {
		t.Errorf("store %+v", got.Store)
	}
	if got.Health.Status != "ok" || len(got.Health.Problems) != 0 {
		t.Errorf("health %+v", got.Health)
	}
	// Three samples at 1000, 1001 and 1002, then the request's own: three intervals. (On a
	// slow machine the loop above waited over a second, and its requests' own samples are
	// intervals too, between the third and the last.)
	if n := len(got.Series.Time); n < 3 || got.Series.Time[0] != 1001 || got.Series.Time[1] != 1002 ||
		got.Series.RecordsPerSecond[0] != 1 || time.Since(time.Unix(int64(got.Series.Time[n-1]), 0)) > time.Minute {
		t.Errorf("series %+v", got.Series)
	}
	if m := got.Series.CommitMeanMillis[0]; m == nil || *m <= 0 {
		t.Errorf("commit mean of the first interval: %v", m)
	}
	if len(got.Processes) != 1 || got.Processes[0].Name != "M" {
		t.Errorf("processes %+v", got.Processes)
	}
	if len(got.Subscriptions) == 0 {
		t.Errorf("no subscriptions shown")
	}
	if got.Cluster != nil {
		t.Errorf("a single node shows a cluster: %+v", got.Cluster)
	}
}

// TestStatsWindow: the failure rate is that of the attempts between the oldest and the
// newest sample.
func TestStatsWindow(t *testing.T) {
	at := func(s int64, attempts, failures uint64) sample {
		return sample{at: time.Unix(s, 0), deliveries: map[string][2]uint64{"M": {attempts, failures}}}
	}
	// none is a sample without the manager: taken while the node was not the leader of
	// its cluster, or when the managers could not be listed.
	none := func(s int64) sample { return sample{at: time.Unix(s, 0)} }
	for _, tc := range []struct {
		name string
		hist []sample
		rate *float64
		n    uint64
		secs float64
	}{
		{"no sample", nil, nil, 0, 0},
		{"one sample", []sample{at(1, 5, 1)}, nil, 0, 0},
		{"no attempt", []sample{at(1, 5, 1), at(2, 5, 1)}, nil, 0, 1},
		{"attempts", []sample{at(1, 5, 1), at(2, 7, 1), at(3, 9, 2)}, ptr(0.25), 4, 2},
		{"oldest without the manager", []sample{none(1), at(2, 5, 1), at(3, 9, 2)}, ptr(0.25), 4, 1},
		{"a gap without the manager", []sample{at(1, 0, 0), none(2), at(3, 5, 1), at(4, 9, 2)}, ptr(0.25), 4, 1},
		{"newest without the manager", []sample{at(1, 5, 1), at(2, 9, 2), none(3)}, nil, 0, 0},
		{"none with the manager", []sample{none(1), none(2)}, nil, 0, 0},
		// A new leadership term starts the counters again (docs/cluster.md).
		{"counters restarted", []sample{at(1, 100, 10), at(2, 3, 0), at(3, 7, 1)}, ptr(0.25), 4, 1},
		{"failures restarted", []sample{at(1, 1, 1), at(2, 5, 0), at(3, 9, 1)}, ptr(0.25), 4, 1},
		{"restarted at the newest", []sample{at(1, 100, 10), at(2, 3, 0)}, nil, 0, 0},
	} {
		got := window(Manager{Name: "M"}, tc.hist)
		if got.WindowAttempts != tc.n || got.WindowSeconds != tc.secs || (got.FailureRate == nil) != (tc.rate == nil) || tc.rate != nil && *got.FailureRate != *tc.rate {
			t.Errorf("%s: %d attempts over %vs, rate %v; want %d over %vs, %v", tc.name, got.WindowAttempts, got.WindowSeconds, got.FailureRate, tc.n, tc.secs, tc.rate)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// followerProcesses is how the process managers of a cluster answer on a follower.
type followerProcesses struct{ fakeProcesses }

func (followerProcesses) Managers(context.Context) ([]Manager, error) {
	return nil, &pmd.UnavailableError{Cause: errors.New("the process managers run on the leader")}
}

// TestStatsCluster: a node of a cluster shows it; a follower, where the process
// managers do not run, shows none of them rather than failing.
func TestStatsCluster(t *testing.T) {
	applied := uint64(7)
	e := newEnv(t, Options{Processes: &followerProcesses{}, Cluster: func(context.Context) (ClusterStatus, error) {
		return ClusterStatus{NodeID: "a", LeaderID: "a", CommitIndex: 7, AppliedIndex: 7,
			Nodes: []ClusterNode{{ID: "a", State: "leader", AppliedIndex: &applied, Lag: new(uint64)}, {ID: "b", State: "unreachable"}}}, nil
	}})
	r := e.do("GET", "/v1/stats", nil).must(t, http.StatusOK)
	var got struct {
		Cluster   *ClusterStatus
		Processes []Manager
	}
	if err := json.Unmarshal(r.raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Cluster == nil || len(got.Cluster.Nodes) != 2 || got.Cluster.Nodes[1].AppliedIndex != nil || len(got.Processes) != 0 {
		t.Errorf("cluster %+v, processes %+v", got.Cluster, got.Processes)
	}
}

// TestStatsOneSamplePerSecond: the series holds one value per wall-clock second over the
// last five minutes, however the loop's ticks jitter around their mark and however often
// requests sample in between.
func TestStatsOneSamplePerSecond(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	base := time.Unix(1000, 0)
	// Ten minutes of ticks, each up to 0.4 s early or late, and a request (which also
	// samples) a quarter of a second after every third tick.
	jitter := []time.Duration{-400, 300, -1, 0, 399, -250, 1}
	for k := range 600 {
		tick := base.Add(time.Duration(k)*time.Second + statsEvery/2 + jitter[k%len(jitter)]*time.Millisecond)
		e.srv.takeSample(ctx, tick)
		if k%3 == 0 {
			e.srv.takeSample(ctx, tick.Add(250*time.Millisecond))
		}
	}
	hist := e.srv.history()
	if len(hist) != statsSamples {
		t.Fatalf("%d samples, want %d", len(hist), statsSamples)
	}
	for i := 1; i < len(hist); i++ {
		if a, b := hist[i-1].at.Unix(), hist[i].at.Unix(); b != a+1 {
			t.Fatalf("samples %d and %d in seconds %d and %d: want consecutive seconds", i-1, i, a, b)
		}
	}
	s := series(hist, false)
	if span := s.Time[len(s.Time)-1] - s.Time[0]; len(s.Time) != 300 || span < 298 || span > 300 {
		t.Errorf("series of %d values spanning %.1f s, want 300 spanning five minutes", len(s.Time), span)
	}
}

// TestStatsNextSample: the loop samples half-way through each wall-clock second, so that
// a tick late or early by less than half a second still lands in its own second.
func TestStatsNextSample(t *testing.T) {
	for _, tc := range []struct{ now, want time.Duration }{
		{0, 500 * time.Millisecond},
		{200 * time.Millisecond, 300 * time.Millisecond},
		{500 * time.Millisecond, time.Second},
		{700 * time.Millisecond, 800 * time.Millisecond},
		{999 * time.Millisecond, 501 * time.Millisecond},
	} {
		if got := untilNextSample(time.Unix(1000, 0).Add(tc.now)); got != tc.want {
			t.Errorf("at 1000s + %v: next sample in %v, want %v", tc.now, got, tc.want)
		}
	}
}

// TestStatsClockStepsBack: after the wall clock steps back (an NTP step, a restored VM),
// the series starts afresh at the new time instead of freezing until the clock is back
// where it was: a sample keyed by an earlier second is not a duplicate of a later one.
func TestStatsClockStepsBack(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	base := time.Unix(100000, 0)
	for k := range 10 {
		e.srv.takeSample(ctx, base.Add(time.Hour+time.Duration(k)*time.Second+statsEvery/2))
	}
	for k := range 120 {
		e.srv.takeSample(ctx, base.Add(time.Duration(k)*time.Second+statsEvery/2))
		e.srv.takeSample(ctx, base.Add(time.Duration(k)*time.Second+statsEvery*3/4))
	}
	hist := e.srv.history()
	if len(hist) != 120 {
		t.Fatalf("%d samples after the step back, want the 120 taken since", len(hist))
	}
	for i, smp := range hist {
		if want := base.Unix() + int64(i); smp.at.Unix() != want {
			t.Fatalf("sample %d in second %d, want %d", i, smp.at.Unix(), want)
		}
	}
	for i, r := range series(hist, false).RecordsPerSecond {
		if r != 0 {
			t.Fatalf("interval %d: %v records a second, want 0 (nothing written)", i, r)
		}
	}
}
