package client

import (
	"context"
	"time"
)

// Stats is what GET /v1/stats says: the figures a dashboard shows.
type Stats struct {
	Time  time.Time `json:"time"`
	Store struct {
		// Events and Streams are nil for the first moments after the daemon starts,
		// while the store counts them.
		Events         *uint64 `json:"events"`
		Streams        *uint64 `json:"streams"`
		LastPosition   uint64  `json:"last_position"`
		DiskBytes      uint64  `json:"disk_bytes"`
		LogBytes       uint64  `json:"log_bytes"`
		IndexBytes     uint64  `json:"index_bytes"`
		Segments       int     `json:"segments"`
		WriteFailures  uint64  `json:"write_failures"`
		ScavengedBytes uint64  `json:"scavenged_bytes"`
	} `json:"store"`
	Health struct {
		Status   string   `json:"status"` // ok or degraded
		Problems []string `json:"problems"`
	} `json:"health"`
	// Series are the last minutes, one value per interval between the daemon's
	// samples: Time[i] (Unix seconds) ends interval i. Nil values are unknown.
	Series struct {
		Time             []float64  `json:"time"`
		RecordsPerSecond []float64  `json:"records_per_second"`
		WritesPerSecond  []*float64 `json:"writes_per_second"`
		CommitMeanMillis []*float64 `json:"commit_mean_ms"`
		CommitMaxMillis  []*float64 `json:"commit_max_ms"`
	} `json:"series"`
	Processes []struct {
		Manager
		WindowSeconds  float64  `json:"window_seconds"`
		WindowAttempts uint64   `json:"window_attempts"`
		WindowFailures uint64   `json:"window_failures"`
		FailureRate    *float64 `json:"failure_rate"` // nil without an attempt in the window
	} `json:"processes"`
	Subscriptions []Subscription `json:"subscriptions"` // as Subscriptions lists them
	// Cluster is nil on a single node.
	Cluster *struct {
		NodeID       string `json:"node_id"`
		LeaderID     string `json:"leader_id"`
		CommitIndex  uint64 `json:"commit_index"`
		AppliedIndex uint64 `json:"applied_index"`
		Nodes        []struct {
			ID           string  `json:"id"`
			HTTPAddr     string  `json:"http_addr"`
			RaftAddr     string  `json:"raft_addr"`
			State        string  `json:"state"`
			AppliedIndex *uint64 `json:"applied_index"`
			Lag          *uint64 `json:"lag"`
		} `json:"nodes"`
	} `json:"cluster"`
}

// Stats asks the daemon for the figures of its dashboard.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.do(ctx, "GET", "/v1/stats", nil, &s)
	return s, err
}
