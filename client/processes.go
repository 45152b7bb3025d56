package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pmd-dev/pmd/internal/jsonfloat"
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
	raw, err := c.answer(ctx, resp)
	if err != nil {
		return Health{}, err
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
	Lag       *uint64  `json:"lag"`    // how far behind the log it is, in log positions; nil when it could not be read (a damaged index)
	Parked    int      `json:"parked"` // commands parked after max_attempts failures
	// DeliveryAttempts and DeliveryFailures count its commands' delivery attempts
	// since the daemon started, and the failed ones.
	DeliveryAttempts uint64 `json:"delivery_attempts"`
	DeliveryFailures uint64 `json:"delivery_failures"`
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
	Erased    bool   `json:"erased"`    // its stream was erased, which ended it (completed)
	Version   int64  `json:"version"`   // of the last event of its stream
	Events    int    `json:"events"`    // handled events linked into its stream
	Commands  int    `json:"commands"`  // commands issued
	Deadlines int    `json:"deadlines"` // pending deadlines
	// Created is the timestamp of the first event of its stream, LastActivity that of
	// the last; nil from a daemon that does not say, and for a process whose stream
	// holds no event (held at its first event: its definition panicked there).
	Created      *time.Time `json:"created"`
	LastActivity *time.Time `json:"last_activity"`
	Parked       int        `json:"parked"` // its parked commands
	// Damaged counts the damaged records of its stream passed over to list it
	// (Process.Damaged): since its newest snapshot, and the command records that
	// snapshot lists, every one of them (Process.Damaged lists those of its page of
	// commands only).
	Damaged int `json:"damaged"`
	// Panic, when not "", says that the definition panicked for it (Process.Panic).
	Panic string `json:"panic"`
}

// ProcessQuery selects and orders the processes FindProcesses lists.
type ProcessQuery struct {
	// Status is open, completed, expired, or parked (those with a parked command);
	// "" selects all.
	Status string
	// OlderThan keeps the processes whose first event is at least this old, IdleFor
	// those whose last event is.
	OlderThan, IdleFor time.Duration
	ByAge              bool   // the oldest first, rather than in id order
	After              string // the Next of the page before
	Limit              int    // at most this many; 0 leaves it to the daemon
}

// FindProcesses lists the processes of the process manager called name that q
// selects, a page at a time: for instance the open ones older than an hour, oldest
// first. An unknown name fails with ErrNotFound.
func (c *Client) FindProcesses(ctx context.Context, name string, q ProcessQuery) (ProcessPage, error) {
	if err := checkLimit(q.Limit); err != nil {
		return ProcessPage{}, err
	}
	if q.OlderThan < 0 {
		return ProcessPage{}, invalid("older_than", "must not be negative, got %s", q.OlderThan)
	}
	if q.IdleFor < 0 {
		return ProcessPage{}, invalid("idle_for", "must not be negative, got %s", q.IdleFor)
	}
	v := url.Values{}
	for k, s := range map[string]string{"status": q.Status, "after": q.After} {
		if s != "" {
			v.Set(k, s)
		}
	}
	for k, d := range map[string]time.Duration{"older_than": q.OlderThan, "idle_for": q.IdleFor} {
		if d > 0 {
			v.Set(k, d.String())
		}
	}
	if q.ByAge {
		v.Set("sort", "age")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/processes/" + segment(name)
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p ProcessPage
	err := c.do(ctx, "GET", path, nil, &p)
	return p, err
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
	err = c.do(ctx, "GET", "/v1/processes/"+segment(name)+q, nil, &p)
	return p, err
}

// Process is one process: its state, its stream with the state after each event, its
// commands with their delivery attempts, and its deadlines.
type Process struct {
	Manager string `json:"manager"`
	ID      string `json:"id"`
	Stream  string `json:"stream"`
	Status  string `json:"status"` // open, completed or expired
	// Erased says its stream was erased, which ended it: it is completed, decides
	// nothing again, and its commands and deadlines are no longer known.
	Erased    bool           `json:"erased"`
	State     any            `json:"state"`
	Events    []ProcessEvent `json:"events"`
	Commands  []Command      `json:"commands"`
	Deadlines []Deadline     `json:"deadlines"`
	// DeliveriesStream records the delivery attempts; following it from
	// DeliveriesVersion+1 sees each new attempt.
	DeliveriesStream  string `json:"deliveries_stream"`
	DeliveriesVersion int64  `json:"deliveries_version"` // -1 for none
	// Older, when not nil, says Events holds the newest events only (a long process,
	// or ProcessOptions.Limit): ReadProcess with Before set to it reads the ones before
	// them. nil when Events starts at the process's first event.
	Older *int64 `json:"older"`
	// CommandsNext, when not nil, says Commands holds a page of the commands only (a
	// process with many, or ProcessOptions.CommandsLimit): ReadProcess with
	// CommandsFrom set to it reads the ones issued after them. nil on the last page, and
	// from a daemon older than it, which shows every command.
	CommandsNext *int64 `json:"commands_next"`
	// Snapshot is the snapshot State was folded from; nil when it was folded from the
	// first event of the stream.
	Snapshot *ProcessSnapshot `json:"snapshot"`
	// Damaged lists, in order, the versions of the damaged records of its stream the
	// daemon passed over until a repair (they are missing from Events, and a command
	// one held from Commands): of the command records, only those of the page of
	// commands (CommandsNext); empty when there is none.
	Damaged []int64 `json:"damaged"`
	// Panic, when not "", says that the definition panicked for the process: the
	// daemon holds it until it starts again, and State is the state before the panic.
	Panic string `json:"panic"`
}

// MarshalJSON writes p as the API does, a float with no fraction in its state, and in
// its events and commands, as 2.0 (see Event.MarshalJSON).
func (p Process) MarshalJSON() ([]byte, error) {
	type plain Process
	if m, ok := jsonfloat.Mark(p.State); ok {
		p.State = m
	}
	return json.Marshal(plain(p))
}

// UnmarshalJSON reads p as the client reads the API (see Event.UnmarshalJSON), its
// state included.
func (p *Process) UnmarshalJSON(b []byte) error {
	type plain Process
	var x plain
	if err := decodeNumbers(b, &x); err != nil {
		return err
	}
	*p = Process(x)
	state, err := number(p.State)
	p.State = state
	return err
}

// ProcessSnapshot is the snapshot of a process its state was folded from: the
// snapshot's state, then the events after Version.
type ProcessSnapshot struct {
	Version   int64     `json:"version"` // the last version of the process stream it covers
	ID        string    `json:"id"`      // the snapshot event's
	Stream    string    `json:"stream"`  // where the snapshot is stored
	Position  uint64    `json:"position"`
	Timestamp time.Time `json:"timestamp"`
}

// ProcessOptions selects the page of a process's events ReadProcess reads. The zero
// value reads the newest ones, as many as the daemon gives by default.
type ProcessOptions struct {
	// Before, when not nil, keeps the events of versions below it: the Older of the
	// page read before.
	Before *int64
	Limit  int // at most this many events; 0 leaves it to the daemon
	// CommandsFrom starts the commands at the one issued at that version of the process
	// stream (the CommandsNext of the page before; 0: the first); CommandsLimit bounds
	// how many are shown, 0 leaving it to the daemon.
	CommandsFrom  int64
	CommandsLimit int
	// AttemptsFrom leaves out the delivery records at versions of the deliveries stream
	// below it (a Command's AttemptsNext; 0: none); AttemptsLimit bounds how many
	// records of each command are shown, 0 leaving it to the daemon. To read the rest of
	// one command's records: CommandsFrom its Version, CommandsLimit 1 and AttemptsFrom
	// its AttemptsNext.
	AttemptsFrom  int64
	AttemptsLimit int
}

// ProcessEvent is an event of a process stream and the process's state after it.
type ProcessEvent struct {
	Event
	State any `json:"state"`
}

// MarshalJSON writes e as the API does, a float with no fraction in its data, metadata
// or state as 2.0 (see Event.MarshalJSON).
func (e ProcessEvent) MarshalJSON() ([]byte, error) {
	state, _ := jsonfloat.Mark(e.State)
	return json.Marshal(struct {
		eventFields
		State any `json:"state"`
	}{e.fields(), state})
}

// UnmarshalJSON reads e as the client reads the API (see Event.UnmarshalJSON), its
// state included. Without it, Event's would be promoted and drop the state.
func (e *ProcessEvent) UnmarshalJSON(b []byte) error {
	var f struct {
		eventFields
		State any `json:"state"`
	}
	if err := decodeNumbers(b, &f); err != nil {
		return err
	}
	e.Event = Event(f.eventFields)
	if err := e.Event.numbers(); err != nil {
		return err
	}
	state, err := number(f.State)
	e.State = state
	return err
}

// Command is a command a process issued, with its delivery attempts.
type Command struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	Position  uint64         `json:"position"`
	Delivered bool           `json:"delivered"`
	// Status is pending (not attempted yet, or queued again by a retry), failing
	// (waiting for its retry time), parked, delivered or skipped.
	Status string `json:"status"`
	// Version is the version of its record in the process stream, the order commands
	// were issued in (0 from a daemon older than it).
	Version  int64     `json:"version"`
	Attempts []Attempt `json:"attempts"`
	// AttemptsNext, when not nil, says Attempts holds the first of its delivery records
	// only: see ProcessOptions.AttemptsFrom.
	AttemptsNext *int64 `json:"attempts_next"`
}

// MarshalJSON writes c as the API does, a float with no fraction in its data as 2.0
// (see Event.MarshalJSON).
func (c Command) MarshalJSON() ([]byte, error) {
	type plain Command
	c.Data = jsonfloat.MarkMap(c.Data)
	return json.Marshal(plain(c))
}

// UnmarshalJSON reads c as the client reads the API (see Event.UnmarshalJSON).
func (c *Command) UnmarshalJSON(b []byte) error {
	type plain Command
	var x plain
	if err := decodeNumbers(b, &x); err != nil {
		return err
	}
	*c = Command(x)
	_, err := number(c.Data) // in place
	return err
}

// Attempt is one record of a command's delivery: an attempt, or what happened to the
// command after one.
type Attempt struct {
	// Attempt is the number of the attempt, 1 for the first; for parked, retried and
	// skipped, the attempts made so far.
	Attempt int        `json:"attempt"`
	Outcome string     `json:"outcome"` // delivered, failed, parked, retried or skipped
	At      time.Time  `json:"at"`
	Error   string     `json:"error,omitempty"`    // of a failed attempt, and of the parking
	RetryAt *time.Time `json:"retry_at,omitempty"` // when a failed attempt is retried
}

// Deadline is a pending deadline of a process: one that fired or was cancelled is a
// record of the process stream (Events). It had a Fired field, always false, until
// 2026-11-30.
type Deadline struct {
	Due   time.Time `json:"due"`
	Issue string    `json:"issue"` // the command type it issues
}

// Process reads one process of the process manager called name, with the newest page
// of its events (Older says whether there are more: see ReadProcess) and the first page
// of its commands, each with its first delivery records (CommandsNext and each
// command's AttemptsNext say whether there are more: see ReadProcess). An unknown
// manager or process fails with ErrNotFound.
func (c *Client) Process(ctx context.Context, name, id string) (Process, error) {
	return c.ReadProcess(ctx, name, id, ProcessOptions{})
}

// ReadProcess reads one process as Process does, with the page of its events opts
// selects: following Older from page to page reads the whole timeline of a long
// process, newest first.
func (c *Client) ReadProcess(ctx context.Context, name, id string, opts ProcessOptions) (Process, error) {
	q := url.Values{}
	if opts.Before != nil {
		if *opts.Before < 0 {
			return Process{}, invalid("before", "must be a version, not negative, got %d", *opts.Before)
		}
		q.Set("before", strconv.FormatInt(*opts.Before, 10))
	}
	if err := checkLimit(opts.Limit); err != nil {
		return Process{}, err
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	for _, p := range []struct {
		param string
		n     int64
	}{{"commands_from", opts.CommandsFrom}, {"attempts_from", opts.AttemptsFrom}} {
		if p.n < 0 {
			return Process{}, invalid(p.param, "must be a version, not negative, got %d", p.n)
		}
		if p.n > 0 {
			q.Set(p.param, strconv.FormatInt(p.n, 10))
		}
	}
	for _, p := range []struct {
		param string
		n     int
	}{{"commands_limit", opts.CommandsLimit}, {"attempts_limit", opts.AttemptsLimit}} {
		if p.n < 0 {
			return Process{}, invalid(p.param, "must not be negative, got %d", p.n)
		}
		if p.n > 0 {
			q.Set(p.param, strconv.Itoa(p.n))
		}
	}
	path := "/v1/processes/" + segment(name) + "/" + segment(id)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p Process
	if err := c.do(ctx, "GET", path, nil, &p); err != nil {
		return Process{}, err
	}
	if p.Manager != name || p.ID != id || p.Stream == "" {
		return Process{}, fmt.Errorf("client: the daemon's answer to GET %s is not process %q of %s: it names manager %q, id %q and stream %q",
			path, id, name, p.Manager, p.ID, p.Stream)
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

// ParkedCommand is a command that failed its manager's max_attempts deliveries in a
// row and waits for Retry or Skip.
type ParkedCommand struct {
	ProcessID string         `json:"process_id"`
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	Position  uint64         `json:"position"` // of its record: the list's order (0 from a daemon older than it)
	Receiver  string         `json:"receiver"` // the webhook it goes to
	Attempts  int            `json:"attempts"` // made so far
	Error     string         `json:"error"`    // of the last attempt
}

// MarshalJSON writes c as the API does, a float with no fraction in its data as 2.0
// (see Event.MarshalJSON).
func (c ParkedCommand) MarshalJSON() ([]byte, error) {
	type plain ParkedCommand
	c.Data = jsonfloat.MarkMap(c.Data)
	return json.Marshal(plain(c))
}

// UnmarshalJSON reads c as the client reads the API (see Event.UnmarshalJSON).
func (c *ParkedCommand) UnmarshalJSON(b []byte) error {
	type plain ParkedCommand
	var x plain
	if err := decodeNumbers(b, &x); err != nil {
		return err
	}
	*c = ParkedCommand(x)
	_, err := number(c.Data) // in place
	return err
}

// ParkedList is a page of the parked commands of a process manager.
type ParkedList struct {
	Parked []ParkedCommand `json:"parked"` // oldest first
	Total  int             `json:"total"`  // every parked command of the manager
	// Next, when not nil, is the ParkedOptions.From of the next page; nil on the last,
	// and from a daemon older than it.
	Next *uint64 `json:"next"`
}

// ParkedOptions selects a page of parked commands (ReadParked).
type ParkedOptions struct {
	From  uint64 // the Next of the page before; 0 for the first page
	Limit int    // at most this many; 0 leaves it to the daemon
}

// Parked lists the parked commands of the process manager called name, oldest first:
// the first page, at most limit of them (0: the daemon's default) within the daemon's
// bound in bytes, and how many there are; ReadParked reads the next pages. Retrying or
// skipping them brings the next ones into the first page. An unknown name fails with
// ErrNotFound.
func (c *Client) Parked(ctx context.Context, name string, limit int) (ParkedList, error) {
	return c.ReadParked(ctx, name, ParkedOptions{Limit: limit})
}

// ReadParked lists the page of parked commands opts selects, as Parked does: following
// Next from page to page lists each command parked throughout once.
func (c *Client) ReadParked(ctx context.Context, name string, opts ParkedOptions) (ParkedList, error) {
	q, err := ListOptions{Limit: opts.Limit}.query(false)
	if err != nil {
		return ParkedList{}, err
	}
	if opts.From > 0 {
		sep := "?"
		if q != "" {
			sep = "&"
		}
		q += sep + "from=" + strconv.FormatUint(opts.From, 10)
	}
	var out ParkedList
	if err := c.do(ctx, "GET", "/v1/processes/"+segment(name)+"/parked"+q, nil, &out); err != nil {
		return ParkedList{}, err
	}
	for i := range out.Parked {
		if _, err := number(out.Parked[i].Data); err != nil {
			return ParkedList{}, err
		}
	}
	return out, nil
}

// Retry queues the parked or failing command of process id of the manager called name
// for delivery at once. It needs a token of scope admin. An unknown manager, process
// or command, or one that was delivered or skipped, fails with ErrNotFound; one that is
// being delivered or waits behind an earlier command fails with ErrConflict.
func (c *Client) Retry(ctx context.Context, name, id, command string) error {
	return c.do(ctx, "POST", commandPath(name, id, command)+"/retry", nil, nil)
}

// Skip gives up the parked or failing command of process id of the manager called
// name: it is never attempted again. Its errors are Retry's.
func (c *Client) Skip(ctx context.Context, name, id, command string) error {
	return c.do(ctx, "POST", commandPath(name, id, command)+"/skip", nil, nil)
}

func commandPath(name, id, command string) string {
	return "/v1/processes/" + segment(name) + "/" + segment(id) + "/commands/" + segment(command)
}
