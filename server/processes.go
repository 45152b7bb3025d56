package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/jsonfloat"
)

// ErrNotFound is what a Processes implementation returns (possibly wrapped) for an
// unknown process manager, process or command; the API answers 404 not_found.
var ErrNotFound = errors.New("not found")

// ErrConflict is what a Processes implementation returns (possibly wrapped) when a
// command cannot be retried or skipped as it stands: it is being delivered, waits
// behind an earlier command of its process, or its manager delivers no commands; and
// what a Node's Join returns when the cluster refuses the node as it stands. The API
// answers 409 conflict, with the error's text as the message.
var ErrConflict = errors.New("conflict")

// Processes answers the process-manager routes. The daemon implements it over the
// process managers of its config file.
type Processes interface {
	// Managers lists the process managers, in a stable order, with their counts.
	Managers(ctx context.Context) ([]Manager, error)
	// List lists the processes of the manager called name whose ids sort after after,
	// in id order, at most limit of them.
	List(ctx context.Context, name, after string, limit int) ([]ProcessSummary, error)
	// Process describes one process of the manager called name.
	Process(ctx context.Context, name, id string) (Process, error)
	// Holding lists the process streams that ev is linked into.
	Holding(ctx context.Context, ev pmd.Event) ([]string, error)
	// Parked lists the parked commands of the manager called name that q selects, in
	// the order they were issued (of their positions), and how many it has.
	Parked(ctx context.Context, name string, q ParkedQuery) (ParkedPage, error)
	// Retry queues the parked or failing command of process id for delivery at once;
	// Skip gives it up. Each is recorded in the process's deliveries before it takes
	// effect.
	Retry(ctx context.Context, name, id string, command uuid.UUID) error
	Skip(ctx context.Context, name, id string, command uuid.UUID) error
}

// ParkedQuery selects a page of parked commands.
type ParkedQuery struct {
	// From leaves out the commands at positions below it: the Next of the page before,
	// 0 for the first page.
	From uint64
	// Limit bounds how many the page holds (all of them for Limit ≤ 0); PageBytes, when
	// above 0, bounds it to about that many bytes of JSON (always one command).
	Limit, PageBytes int
	// Hold decodes a command record read undecoded, as ProcessQuery.Hold does, its
	// bytes reserved of the memory budget first (pm.ParkedOptions.Hold takes it).
	Hold func(ev *pmd.Event) (release func(), err error)
}

// ParkedPage is a page of parked commands.
type ParkedPage struct {
	Parked []ParkedCommand
	Total  int     // every parked command of the manager
	Next   *uint64 // the From of the next page; nil when Parked holds the last
}

// ParkedCommand is a command that failed its manager's max_attempts deliveries in a
// row and waits for a retry or a skip.
type ParkedCommand struct {
	ProcessID string         `json:"process_id"`
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	Position  uint64         `json:"position"` // of the command's record: the order of the list
	Receiver  string         `json:"receiver"` // "" for a manager's one receiver
	Attempts  int            `json:"attempts"` // made so far
	Error     string         `json:"error"`    // of the last attempt
}

// MarshalJSON writes c with the floats of its data that have no fraction written 2.0,
// as the API writes events' data (jsonfloat.MarkMap).
func (c ParkedCommand) MarshalJSON() ([]byte, error) {
	type plain ParkedCommand
	c.Data = jsonfloat.MarkMap(c.Data)
	return json.Marshal(plain(c))
}

// Manager is a process manager, the counts of its processes and how it keeps up.
type Manager struct {
	Name      string   `json:"name"`
	Handles   []string `json:"handles"`
	Open      int      `json:"open"`
	Completed int      `json:"completed"`
	Expired   int      `json:"expired"`
	// Lag is how far the manager is behind the log, in log positions; 0 when caught up,
	// nil when it could not be read (a damaged index: /healthz says degraded).
	Lag *uint64 `json:"lag"`
	// Parked counts its parked commands.
	Parked int `json:"parked"`
	// DeliveryAttempts and DeliveryFailures count the delivery attempts of its commands
	// since the daemon started, and the failed ones.
	DeliveryAttempts uint64 `json:"delivery_attempts"`
	DeliveryFailures uint64 `json:"delivery_failures"`
}

// normalManager gives m's list an empty value rather than null.
func normalManager(m Manager) Manager {
	if m.Handles == nil {
		m.Handles = []string{}
	}
	return m
}

// ProcessSummary is one process in a list.
type ProcessSummary struct {
	ID string `json:"id"`
	// Status is open, completed or expired.
	Status string `json:"status"`
	// Erased says the process stream was erased, which ended the process (completed).
	Erased    bool  `json:"erased"`
	Version   int64 `json:"version"`   // of the last event of the process stream
	Events    int   `json:"events"`    // handled events linked into the stream
	Commands  int   `json:"commands"`  // commands issued
	Deadlines int   `json:"deadlines"` // pending deadlines
	// Created is the timestamp of the first event of the process stream, LastActivity
	// that of its last; Parked counts its parked commands. A ProcessLister sets them.
	Created      *time.Time `json:"created,omitempty"`
	LastActivity *time.Time `json:"last_activity,omitempty"`
	Parked       int        `json:"parked"`
	// Damaged counts the damaged records of the process stream the manager passed over
	// to list it (Process.Damaged): since its newest snapshot, and the command records
	// that snapshot lists once the store knows of the damage (ProcessSummary.Damaged).
	Damaged int `json:"damaged"`
	// Panic, when not "", says that the definition panicked for the process, which the
	// manager holds until it starts again (Process.Panic).
	Panic string `json:"panic"`
}

// ProcessLister is implemented by a Processes that filters and orders its listings:
// the process-list route then takes status, older_than, idle_for and sort. Without
// it the route lists in id order and refuses them.
type ProcessLister interface {
	// ListProcesses lists the processes of the manager called name that q selects, a
	// page at a time. A q it cannot answer (a next of another order) is ErrInvalid.
	ListProcesses(ctx context.Context, name string, q ListQuery) (ProcessListPage, error)
}

// ListQuery selects, orders and pages a listing of processes.
type ListQuery struct {
	// Status is open, completed or expired, or parked (those with a parked command);
	// "" selects all.
	Status string
	// OlderThan keeps the processes whose first event is at least this old, IdleFor
	// those whose last event is; 0 keeps all.
	OlderThan, IdleFor time.Duration
	// ByAge lists the oldest first, rather than in id order.
	ByAge bool
	After string // the Next of the page before
	Limit int
	// Hold decodes an event that the fold of a process the listing looks at reads
	// undecoded, once its bytes are reserved of the memory budget for the request, as
	// ProcessQuery.Hold does (pm.ListOptions.Hold takes it): each is given back once
	// folded. Its error, the budget's refusal, ends the listing, answered as a page of
	// events at the budget is.
	Hold func(ev *pmd.Event) (release func(), err error)
}

// ProcessListPage is a page of a listing of processes.
type ProcessListPage struct {
	Processes []ProcessSummary
	Next      string // the After of the next page; "" on the last
}

// ErrInvalid is what a Processes implementation returns (possibly wrapped) for a
// request it cannot answer as asked; the API answers 400 bad_request.
var ErrInvalid = errors.New("invalid")

// Process is one process: its state, its stream, the commands it issued and their
// deliveries, and its deadlines.
type Process struct {
	Manager string `json:"manager"`
	ID      string `json:"id"`
	Stream  string `json:"stream"`
	// Status is open, completed or expired.
	Status string `json:"status"`
	// Erased says the process stream was erased: that ended the process, which is
	// completed, decides nothing again and no longer knows its commands and deadlines.
	Erased bool        `json:"erased"`
	State  any         `json:"state"`
	Events []pmd.Event `json:"-"` // the process stream, rendered by the server
	// States[i] is the state after Events[i], shown as events[i].state; it must be as
	// long as Events.
	States    []any      `json:"-"`
	Commands  []Command  `json:"commands"`
	Deadlines []Deadline `json:"deadlines"`
	// DeliveriesStream is the stream the delivery attempts are recorded in; a
	// subscription to it from DeliveriesVersion+1 sees each new attempt. Empty for a
	// process whose commands are not delivered: one an earlier version stored under an
	// id that leaves no room for the name of its deliveries stream.
	DeliveriesStream string `json:"deliveries_stream"`
	// DeliveriesVersion is the version of the last attempt shown, -1 for none.
	DeliveriesVersion int64 `json:"deliveries_version"`
	// Snapshot is the snapshot State was folded from; nil when it was folded from the
	// first event of the stream.
	Snapshot *Snapshot `json:"snapshot"`
	// Older, when set, is the "before" of the page of older events: Events holds the
	// newest events only. nil when Events starts at the first event.
	Older *int64 `json:"older"`
	// CommandsNext, when set, is the "commands_from" of the page of the commands issued
	// after those of Commands. nil when Commands holds the last (and always without a
	// ProcessPager).
	CommandsNext *int64 `json:"commands_next"`
	// Damaged lists, in order, the versions of the damaged records of the process
	// stream that the view passed over (the store lists them in its problems until a
	// repair): they are missing from Events, and what a damaged record of the
	// manager's own said is unknown until then (a damaged command is missing from
	// Commands; a deadline whose firing record is damaged still shows as pending). The
	// manager stops at such a record until the repair. Empty when there is none; nil
	// is written as [].
	Damaged []int64 `json:"damaged"`
	// Panic, when not "", says that the definition panicked for the process: the
	// manager holds it (decides and issues nothing for it) until it starts again, and
	// State is the state before the panic.
	Panic string `json:"panic"`
}

// Snapshot says which snapshot of a process its state was folded from: the snapshot's
// state, then the events after Version.
type Snapshot struct {
	Version   int64     `json:"version"` // the last version of the process stream it covers
	ID        string    `json:"id"`
	Stream    string    `json:"stream"`
	Position  uint64    `json:"position"`
	Timestamp time.Time `json:"timestamp"`
}

// ProcessPager is implemented by a Processes that pages the timelines of long
// processes. The process route then answers with the newest events only (?limit=, the
// default limit otherwise, and Options.PageBytes) and pages to the past with
// ?before=<version>, rather than load every event of the stream.
type ProcessPager interface {
	// ProcessPage is Process with only the events and the commands q selects: the
	// events of versions below q.Before (all when it is negative), at most q.Limit of
	// them, the newest, and of those only the newest that fit in q.PageBytes of JSON with
	// the states after them (always one); the commands issued at versions from
	// q.CommandsFrom on, at most q.CommandsLimit, with CommandsNext set when there are
	// more, each with its delivery records from q.AttemptsFrom on, at most
	// q.AttemptsLimit, with AttemptsNext set when it has more, and all of them taking
	// about q.PageBytes/2 at most (always one). The route cuts the answer to
	// Options.PageBytes in the end, and passes it so that the page is not read whole
	// first.
	ProcessPage(ctx context.Context, name, id string, q ProcessQuery) (Process, error)
}

// ProcessQuery selects the page of a process that the process route shows: its events
// and its commands.
type ProcessQuery struct {
	Before    int64 // -1 for the newest events
	Limit     int   // events
	PageBytes int
	// CommandsFrom is the version of the process stream the commands start at: the
	// CommandsNext of the page before, 0 for the first.
	CommandsFrom  int64
	CommandsLimit int
	// AttemptsFrom is the version of the deliveries stream the delivery records shown
	// start at: a command's AttemptsNext, 0 for the first.
	AttemptsFrom  int64
	AttemptsLimit int
	// Hold decodes an event of the process stream that the page reads undecoded
	// (pmd.ReadOptions.Encoded, pmd.Event.Encoded) once the bytes its decoded data takes
	// are reserved of the memory budget for the request, returning the func that gives
	// them back once the page lets go of the event; those of the events and commands the
	// page shows are held until the answer is written (pm.PageOptions.Hold takes it).
	// Its error, the budget's refusal, ends the page: the route answers it as a page of
	// events at the budget is answered.
	Hold func(ev *pmd.Event) (release func(), err error)
	// HoldState reserves what a state the page keeps to show takes of the memory budget
	// for the request (the process's state, version its last, or the state after the
	// event of the page at version), returning the func that gives it back once the
	// page lets go of the state; those shown are held until the answer is written
	// (pm.PageOptions.HoldState takes it). Its error, the budget's refusal, ends the
	// page as Hold's does.
	HoldState func(version int64, state any) (release func(), err error)
}

// Command is a command a process issued, with its delivery attempts.
type Command struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	Position  uint64         `json:"position"`
	Delivered bool           `json:"delivered"`
	// Status is where the command stands: pending (not attempted yet, or queued again
	// by a retry), failing (waiting for its retry time), parked, delivered or skipped.
	Status string `json:"status"`
	// Version is the version of its record in the process stream: commands are in
	// version order, the order they were issued. 0 without a ProcessPager.
	Version  int64     `json:"version"`
	Attempts []Attempt `json:"attempts"`
	// AttemptsNext, when set, is the "attempts_from" of the page of its delivery records
	// after those of Attempts; nil when Attempts holds the last.
	AttemptsNext *int64 `json:"attempts_next"`
}

// MarshalJSON writes c with the floats of its data that have no fraction written 2.0,
// as the API writes events' data (jsonfloat.MarkMap).
func (c Command) MarshalJSON() ([]byte, error) {
	type plain Command
	c.Data = jsonfloat.MarkMap(c.Data)
	return json.Marshal(plain(c))
}

// Attempt is one record of a command's delivery: an attempt, or what happened to the
// command after one (parked, retried, skipped).
type Attempt struct {
	// Attempt is the number of the attempt, 1 for the first; for parked, retried and
	// skipped, the attempts made so far.
	Attempt int `json:"attempt"`
	// Outcome is delivered, failed, parked, retried or skipped.
	Outcome string    `json:"outcome"`
	At      time.Time `json:"at"`
	// Error is the handler's error, of a failed attempt and of the parking it caused.
	Error string `json:"error,omitempty"`
	// RetryAt is when a failed attempt is tried again; nil otherwise.
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

// Deadline is a pending deadline of a process: one that fired or was cancelled is a
// record of the process stream (Events). Deadlines had a "fired" field, always false,
// until 2026-11-30.
type Deadline struct {
	Due   time.Time `json:"due"`
	Issue string    `json:"issue"` // the command type it issues
}

func (s *Server) processes(w http.ResponseWriter, r *http.Request) error {
	managers := []Manager{}
	if s.opts.Processes != nil {
		var err error
		if managers, err = s.opts.Processes.Managers(r.Context()); err != nil {
			return err
		}
		for i := range managers {
			managers[i] = normalManager(managers[i])
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"processes": managers})
}

type processListResponse struct {
	Processes []ProcessSummary `json:"processes"`
	Next      *string          `json:"next"`
}

// processList lists the processes of one manager: in id order, or with a
// ProcessLister filtered by status, age and idleness and sorted by age.
func (s *Server) processList(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if s.opts.Processes == nil {
		return errNotFound("no process manager %q: the daemon runs none", name)
	}
	q, err := s.listQuery(r)
	if err != nil {
		return err
	}
	var page ProcessListPage
	if lister, ok := s.opts.Processes.(ProcessLister); ok {
		// The folds' events are decoded once their bytes are reserved, as those of a
		// process's page are; they name no stream (holdFor): the lister names its own.
		var refused error
		q.Hold = s.holdFor(r.Context(), "", &refused)
		page, err = lister.ListProcesses(r.Context(), name, q)
		if refused != nil && err != nil {
			return refused
		}
	} else if q.Status != "" || q.OlderThan > 0 || q.IdleFor > 0 || q.ByAge {
		return errBadRequest("this daemon lists processes in id order only: leave out status, older_than, idle_for and sort")
	} else {
		page.Processes, err = s.opts.Processes.List(r.Context(), name, q.After, q.Limit+1)
		if len(page.Processes) > q.Limit {
			page.Processes = page.Processes[:q.Limit]
			page.Next = page.Processes[q.Limit-1].ID
		}
	}
	if err != nil {
		return processError(err)
	}
	out := processListResponse{Processes: page.Processes}
	if out.Processes == nil {
		out.Processes = []ProcessSummary{}
	}
	if page.Next != "" {
		out.Next = &page.Next
	}
	return writeJSON(w, http.StatusOK, out)
}

// listQuery reads the query of the process-list route.
func (s *Server) listQuery(r *http.Request) (ListQuery, error) {
	v := r.URL.Query()
	limit, err := s.parseLimit(v.Get("limit"))
	if err != nil {
		return ListQuery{}, err
	}
	if limit == 0 {
		limit = s.opts.DefaultLimit
	}
	q := ListQuery{Status: v.Get("status"), After: v.Get("after"), Limit: limit}
	switch q.Status {
	case "", "open", "completed", "expired", "parked":
	default:
		return ListQuery{}, errBadRequest("status must be open, completed, expired or parked, got %q", q.Status)
	}
	switch sort := v.Get("sort"); sort {
	case "", "id":
	case "age":
		q.ByAge = true
	default:
		return ListQuery{}, errBadRequest("sort must be id or age, got %q", sort)
	}
	for _, d := range []struct {
		param string
		dst   *time.Duration
	}{{"older_than", &q.OlderThan}, {"idle_for", &q.IdleFor}} {
		if raw := v.Get(d.param); raw != "" {
			if *d.dst, err = time.ParseDuration(raw); err != nil || *d.dst < 0 {
				return ListQuery{}, errBadRequest("%s must be a duration such as 90s, 30m or 48h, got %q", d.param, raw)
			}
		}
	}
	return q, nil
}

type processJSON struct {
	Process
	Events []processEventJSON `json:"events"`
}

// processEventJSON is an event of a process stream and the process's state after it.
type processEventJSON struct {
	eventJSON
	State any `json:"state"`
}

// process answers GET /v1/processes/{name}/{id}: the fields of Process, and "events",
// the process stream in version order, each event with "state", the process's state
// after it. A client following the timeline live subscribes to "stream" from the
// version after the last event's and to "deliveries_stream" from
// "deliveries_version"+1. With a ProcessPager, "events" are the newest ones (at most
// ?limit=) below ?before=, and "older" is the before of the previous page.
func (s *Server) process(w http.ResponseWriter, r *http.Request) error {
	name, id := r.PathValue("name"), r.PathValue("id")
	if err := checkProcessID(name, id); err != nil {
		return err
	}
	if s.opts.Processes == nil {
		return errNotFound("no process manager %q: the daemon runs none", name)
	}
	p, err := s.processPage(r, name, id)
	if errors.Is(err, ErrNotFound) {
		return errNotFound("%v", err)
	}
	if err != nil {
		return err
	}
	if len(p.States) != len(p.Events) {
		return fmt.Errorf("server: process %s: %d states for %d events", p.Stream, len(p.States), len(p.Events))
	}
	out := processJSON{Process: p, Events: make([]processEventJSON, len(p.Events))}
	// The states are written as event data is, a float with no fraction as 2.0; the
	// commands' data too (Command.MarshalJSON).
	out.State = floatsKept(p.State)
	for i, ev := range p.Events {
		out.Events[i] = processEventJSON{eventJSON: toJSON(ev, true), State: floatsKept(p.States[i])}
	}
	if out.Commands == nil {
		out.Commands = []Command{}
	}
	if out.Deadlines == nil {
		out.Deadlines = []Deadline{}
	}
	if out.Damaged == nil {
		out.Damaged = []int64{}
	}
	if _, ok := s.opts.Processes.(ProcessPager); ok {
		if err := boundCommands(&out, s.opts.PageBytes/2); err != nil {
			return err
		}
		if err := s.boundPage(&out, p.Events); err != nil {
			return err
		}
	}
	return s.writeHeld(r.Context(), w, http.StatusOK, out)
}

// boundPage leaves the oldest events of a process page to the older page while the page
// is over Options.PageBytes of JSON, keeping one event however large, as every paged
// read does (collect). events are the page's events, for their versions. The pager was
// asked for a page of PageBytes already: this makes it exact, the rest of the answer
// (state, commands) counted.
func (s *Server) boundPage(out *processJSON, events []pmd.Event) error {
	all := out.Events
	out.Events = nil
	rest, err := json.Marshal(out)
	if err != nil {
		return err
	}
	out.Events = all
	size := len(rest) - len(`null`) + len(`[]`)
	sizes := make([]int, len(all))
	for i := range all {
		b, err := json.Marshal(&all[i])
		if err != nil {
			return err
		}
		sizes[i] = len(b) + 1 // and its comma
		size += sizes[i]
	}
	drop := 0
	for size > s.opts.PageBytes && drop < len(all)-1 {
		size -= sizes[drop]
		drop++
	}
	if drop > 0 {
		older := int64(events[drop].Version)
		out.Older, out.Events = &older, all[drop:]
	}
	return nil
}

// boundCommands leaves the last commands of a process page to the next page while
// they take more than size bytes of JSON, keeping one however large, and sets
// CommandsNext to the first of them: the pager was asked for commands of about that
// size already; this makes it exact, and leaves the rest of PageBytes to the events.
func boundCommands(out *processJSON, size int) error {
	n, err := fitting(out.Commands, 0, size)
	if err != nil || n == len(out.Commands) {
		return err
	}
	next := out.Commands[n].Version
	out.Commands, out.CommandsNext = out.Commands[:n], &next
	return nil
}

// fitting is how many of items, one at least, fit in size bytes of JSON beside used
// bytes of the rest of the answer, each with its comma.
func fitting[T any](items []T, used, size int) (int, error) {
	for i := range items {
		n, err := heldSize(&items[i])
		if err != nil {
			return 0, err
		}
		if used += n + 1; used > size && i > 0 {
			return i, nil
		}
	}
	return len(items), nil
}

// processPage asks for the page of the process route's query, or for the whole process
// when the Processes cannot page.
func (s *Server) processPage(r *http.Request, name, id string) (Process, error) {
	pager, ok := s.opts.Processes.(ProcessPager)
	if !ok {
		return s.opts.Processes.Process(r.Context(), name, id)
	}
	q := r.URL.Query()
	pq := ProcessQuery{Before: -1, PageBytes: s.opts.PageBytes}
	for _, l := range []struct {
		param string
		dst   *int
	}{{"limit", &pq.Limit}, {"commands_limit", &pq.CommandsLimit}, {"attempts_limit", &pq.AttemptsLimit}} {
		n, err := s.parseLimit(q.Get(l.param))
		if err != nil {
			return Process{}, errBadRequest("%s must be an integer ≥ 1, got %q", l.param, q.Get(l.param))
		}
		if n == 0 {
			n = s.opts.DefaultLimit
		}
		*l.dst = n
	}
	for _, v := range []struct {
		param, what string
		dst         *int64
	}{{"before", "version", &pq.Before}, {"commands_from", "version of the process stream", &pq.CommandsFrom},
		{"attempts_from", "version of the deliveries stream", &pq.AttemptsFrom}} {
		raw := q.Get(v.param)
		if raw == "" {
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return Process{}, errBadRequest("%s must be a %s, an integer ≥ 0, got %q", v.param, v.what, raw)
		}
		*v.dst = n
	}
	// The events of the page are decoded once their bytes are reserved (decodeHeld),
	// waiting for them as a page of events does; the budget's refusal is the answer, as
	// the route of any page answers it, whatever the pager wrapped it in.
	var refused error
	pq.Hold = s.holdFor(r.Context(), name+"$"+id, &refused)
	pq.HoldState = s.holdState(r.Context(), name+"$"+id, &refused)
	p, err := pager.ProcessPage(r.Context(), name, id, pq)
	if refused != nil && err != nil {
		return Process{}, refused
	}
	return p, err
}

// holdFor is the Hold of a process's page or of parked commands: it decodes an event of
// stream ("" for events read by id) once its bytes are reserved for ctx's request
// (decodeHeld), waiting for them as a page of events does, and keeps the budget's
// refusal in refused, which the route answers whatever the Processes wrapped it in. A
// record that is no link is named by its own stream: a process's page reads its
// deliveries stream too.
func (s *Server) holdFor(ctx context.Context, stream string, refused *error) func(*pmd.Event) (func(), error) {
	return func(ev *pmd.Event) (func(), error) {
		read := stream
		if read != "" && !ev.Link {
			read = ev.Stream
		}
		held, _, err := decodeHeld(ctx, ev, read, true)
		if err != nil {
			if errors.Is(err, s.memory.full) {
				*refused = err
			}
			return nil, err
		}
		return func() { reservationOf(ctx).give(held) }, nil
	}
}

// holdState is the HoldState of a process's page: it reserves what a state takes
// (stateBytes) for ctx's request, waiting for it as a page of events does, and keeps
// the budget's refusal in refused, as holdFor does. A state larger than the whole
// budget is refused as such an event is, naming the process stream and version.
func (s *Server) holdState(ctx context.Context, stream string, refused *error) func(int64, any) (func(), error) {
	return func(version int64, state any) (func(), error) {
		n := stateBytes(state)
		res := reservationOf(ctx)
		if err := res.take(ctx, n); err != nil {
			if res != nil && err == s.memory.full && n > s.memory.limit {
				err = beyondBudgetOf(res, fmt.Sprintf("the state of process stream %s after version %d takes up to %d bytes", quoteCut(stream), version, n), err)
			}
			if errors.Is(err, s.memory.full) {
				*refused = err
			}
			return nil, err
		}
		return func() { res.give(n) }, nil
	}
}

type parkedResponse struct {
	Parked []ParkedCommand `json:"parked"`
	// Total counts every parked command of the manager, on the page or not.
	Total int `json:"total"`
	// Next is the ?from= of the next page, null on the last.
	Next *uint64 `json:"next"`
}

// parked answers GET /v1/processes/{name}/parked: the parked commands of a manager,
// oldest first, from the position ?from= on, at most ?limit= of them and PageBytes of
// JSON (always one), how many there are, and next, where the next page starts.
func (s *Server) parked(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if s.opts.Processes == nil {
		return errNotFound("no process manager %q: the daemon runs none", name)
	}
	q := r.URL.Query()
	limit, err := s.parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = s.opts.DefaultLimit
	}
	pq := ParkedQuery{Limit: limit, PageBytes: s.opts.PageBytes}
	if raw := q.Get("from"); raw != "" {
		if pq.From, err = strconv.ParseUint(raw, 10, 64); err != nil {
			return errBadRequest("from must be a position, an integer ≥ 0, got %q", raw)
		}
	}
	var refused error
	pq.Hold = s.holdFor(r.Context(), "", &refused)
	page, err := s.opts.Processes.Parked(r.Context(), name, pq)
	if refused != nil && err != nil {
		return refused
	}
	if err != nil {
		return processError(err)
	}
	out := parkedResponse(page)
	if len(out.Parked) > limit {
		next := out.Parked[limit].Position
		out.Parked, out.Next = out.Parked[:limit], &next
	}
	if err := boundParked(&out, s.opts.PageBytes); err != nil {
		return err
	}
	if out.Parked == nil {
		out.Parked = []ParkedCommand{}
	}
	return s.writeHeld(r.Context(), w, http.StatusOK, out)
}

// boundParked leaves the last parked commands of a page to the next page while the page
// is over size bytes of JSON, keeping one however large, and sets Next to the first of
// them: the Processes was asked for a page of that size already; this makes it exact.
func boundParked(out *parkedResponse, size int) error {
	n, err := fitting(out.Parked, len(`{"parked":[],"total":,"next":}`)+40, size)
	if err != nil || n == len(out.Parked) {
		return err
	}
	next := out.Parked[n].Position
	out.Parked, out.Next = out.Parked[:n], &next
	return nil
}

// retryCommand answers POST /v1/processes/{name}/{id}/commands/{command}/retry.
func (s *Server) retryCommand(w http.ResponseWriter, r *http.Request) error {
	return s.operate(w, r, Processes.Retry)
}

// skipCommand answers POST /v1/processes/{name}/{id}/commands/{command}/skip.
func (s *Server) skipCommand(w http.ResponseWriter, r *http.Request) error {
	return s.operate(w, r, Processes.Skip)
}

// operate applies a retry or a skip to the command of the path, answering 204 once
// it is recorded.
func (s *Server) operate(w http.ResponseWriter, r *http.Request, op func(Processes, context.Context, string, string, uuid.UUID) error) error {
	if err := noBody(r); err != nil {
		return err
	}
	name, id := r.PathValue("name"), r.PathValue("id")
	if err := checkProcessID(name, id); err != nil {
		return err
	}
	command, err := parseID("command", r.PathValue("command"))
	if err != nil {
		return err
	}
	if s.opts.Processes == nil {
		return errNotFound("no process manager %q: the daemon runs none", name)
	}
	if err := op(s.opts.Processes, r.Context(), name, id, command); err != nil {
		return processError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// maxProcessID is the longest id a process can have: its stream, "<name>$<id>", is a
// stream name, at most 256 bytes.
const maxProcessID = 256

// checkProcessID refuses the process id of a path that no process can have before the
// Processes is asked, whose messages quote the id whole: one that is not valid UTF-8
// is a bad request, as such a stream name is; one longer than any stream name is no
// process's, answered with its length and first bytes only (quoted), so that a long
// path is not echoed into the answer and the log.
func checkProcessID(name, id string) error {
	if !utf8.ValidString(id) {
		return errBadArgument("id", fmt.Sprintf("%s is not valid UTF-8", quoteCut(id)))
	}
	if len(id) > maxProcessID {
		return errNotFound("no process of %s has the id %s: it is %d bytes long, and a process's id is at most %d",
			quoteCut(name), quoteCut(id), len(id), maxProcessID)
	}
	return nil
}

// echoBytes is how much of a name from a request a message quotes.
const echoBytes = 64

// quoteCut is s quoted, cut to its first echoBytes bytes (whole runes) and "…" when
// longer: what a message shows of a name from a request that may be any length.
func quoteCut(s string) string {
	if len(s) <= echoBytes {
		return strconv.Quote(s)
	}
	n := echoBytes
	for n > echoBytes-utf8.UTFMax && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "…"
}

// processError maps the sentinels of a Processes implementation to the API's errors.
func processError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return errNotFound("%v", err)
	case errors.Is(err, ErrConflict):
		return &apiError{http.StatusConflict, codeConflict, err.Error()}
	case errors.Is(err, ErrInvalid):
		return errBadRequest("%v", err)
	default:
		return err
	}
}
