package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Health is what GET /healthz says.
type Health struct {
	// Status is "ok", or "degraded" when the store found damaged records or cannot
	// write; Problems says what.
	Status       string   `json:"status"`
	Problems     []string `json:"problems,omitempty"`
	LastPosition uint64   `json:"last_position"` // the position of the last record in the log
}

// Health asks the daemon how it is. A degraded store still answers, with its problems:
// only a daemon that is not serving (shutting down, unreachable) is an error.
func (c *Client) Health(ctx context.Context) (Health, error) {
	req, err := c.request(ctx, "GET", "/healthz", nil)
	if err != nil {
		return Health{}, err
	}
	resp, err := c.send(req)
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Health{}, &ConnectionError{URL: c.base, Err: err}
	}
	var h Health
	switch {
	case resp.StatusCode == http.StatusOK:
		return h, decode(raw, &h)
	case resp.StatusCode == http.StatusServiceUnavailable && decode(raw, &h) == nil && h.Status == "degraded":
		// A degraded store answers 503 so that load balancers notice, but it serves.
		return h, nil
	default:
		return Health{}, apiError(resp, raw)
	}
}

// Manager is a process manager of the daemon with the counts of its processes.
type Manager struct {
	Name      string   `json:"name"`
	Handles   []string `json:"handles"` // the event types it handles
	Open      int      `json:"open"`
	Completed int      `json:"completed"`
	Expired   int      `json:"expired"`
}

// Managers lists the daemon's process managers.
func (c *Client) Managers(ctx context.Context) ([]Manager, error) {
	var out struct {
		Processes []Manager `json:"processes"`
	}
	err := c.do(ctx, "GET", "/v1/processes", nil, &out)
	return out.Processes, err
}

// ProcessSummary is one process in a listing.
type ProcessSummary struct {
	ID        string `json:"id"`
	Status    string `json:"status"`    // open, completed or expired
	Version   int64  `json:"version"`   // of the last event of its stream
	Events    int    `json:"events"`    // handled events linked into its stream
	Commands  int    `json:"commands"`  // commands issued
	Deadlines int    `json:"deadlines"` // pending deadlines
}

// ProcessPage is one page of a process manager's processes.
type ProcessPage struct {
	Processes []ProcessSummary `json:"processes"`
	// Next is the After of the following page, nil on the last page.
	Next *string `json:"next"`
}

// Processes lists the processes of the process manager called name, in id order. An
// unknown name fails with ErrNotFound. opts.Prefix is not supported here.
func (c *Client) Processes(ctx context.Context, name string, opts ListOptions) (ProcessPage, error) {
	q, err := opts.query(false)
	if err != nil {
		return ProcessPage{}, err
	}
	var p ProcessPage
	err = c.do(ctx, "GET", "/v1/processes/"+url.PathEscape(name)+q, nil, &p)
	return p, err
}

// Process is one process: its state, its stream with the state after each event, its
// commands with their delivery attempts, and its deadlines.
type Process struct {
	Manager   string         `json:"manager"`
	ID        string         `json:"id"`
	Stream    string         `json:"stream"`
	Status    string         `json:"status"` // open, completed or expired
	State     any            `json:"state"`
	Events    []ProcessEvent `json:"events"`
	Commands  []Command      `json:"commands"`
	Deadlines []Deadline     `json:"deadlines"`
	// DeliveriesStream records the delivery attempts; following it from
	// DeliveriesVersion+1 sees each new attempt.
	DeliveriesStream  string `json:"deliveries_stream"`
	DeliveriesVersion int64  `json:"deliveries_version"` // -1 for none
}

// ProcessEvent is an event of a process stream and the process's state after it.
type ProcessEvent struct {
	Event
	State any `json:"state"`
}

// Command is a command a process issued, with its delivery attempts.
type Command struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	Position  uint64         `json:"position"`
	Delivered bool           `json:"delivered"`
	Attempts  []Attempt      `json:"attempts"`
}

// Attempt is one delivery attempt of a command.
type Attempt struct {
	Attempt int        `json:"attempt"` // 1 for the first
	At      time.Time  `json:"at"`
	Error   string     `json:"error,omitempty"`    // empty for a successful attempt
	RetryAt *time.Time `json:"retry_at,omitempty"` // when a failed attempt is retried
}

// Deadline is a deadline a process set.
type Deadline struct {
	Due   time.Time `json:"due"`
	Issue string    `json:"issue"` // the command type it issues
	Fired bool      `json:"fired"`
}

// Process reads one process of the process manager called name. An unknown manager or
// process fails with ErrNotFound.
func (c *Client) Process(ctx context.Context, name, id string) (Process, error) {
	var p Process
	if err := c.do(ctx, "GET", "/v1/processes/"+url.PathEscape(name)+"/"+url.PathEscape(id), nil, &p); err != nil {
		return Process{}, err
	}
	for i := range p.Events {
		if err := p.Events[i].numbers(); err != nil {
			return Process{}, err
		}
		state, err := number(p.Events[i].State)
		if err != nil {
			return Process{}, err
		}
		p.Events[i].State = state
	}
	for i := range p.Commands {
		if _, err := number(p.Commands[i].Data); err != nil {
			return Process{}, err
		}
	}
	state, err := number(p.State)
	p.State = state
	return p, err
}
