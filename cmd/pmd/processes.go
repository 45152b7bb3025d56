package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/config"
	"github.com/pmd-dev/pmd/internal/redact"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/server"
	"github.com/prometheus/client_golang/prometheus"
)

// managed is one process manager of the config file, running.
type managed struct {
	cfg config.Process
	def pm.Definition[config.State]
	m   *pm.Manager
	// attempts and failures count its delivery attempts since start, for the API.
	attempts, failures *atomic.Uint64
}

// processes runs the process managers of the config file and answers the API's
// questions about them.
type processes struct {
	tasks
	store    *pmd.Store
	managers []managed
	exprs    *config.ExpressionLog // the expressions of the managers that failed to evaluate
}

// startProcesses starts the process managers of cfg (none when cfg is nil). They run
// until stop. If one of them fails, failed is called once: the daemon then shuts down
// rather than serve without it.
func startProcesses(ctx context.Context, store *pmd.Store, cfg *config.Config, reg *prometheus.Registry, logger *slog.Logger, failed func()) (*processes, error) {
	p := &processes{store: store, exprs: &config.ExpressionLog{Logger: logger}}
	if cfg == nil || len(cfg.Processes) == 0 {
		return p, nil
	}
	hooks := server.NewWebhooks(reg, 0)
	for _, pc := range cfg.Processes {
		def := pc.DefinitionReporting(p.exprs.Report)
		opts := pc.Options()
		opts.Logger = logger
		attempts, failures := new(atomic.Uint64), new(atomic.Uint64)
		opts.OnAttempt = countAttempts(opts.OnAttempt, attempts, failures)
		if pc.Deliver != nil {
			// The receiver is shown and recorded: its credentials masked.
			shown := redact.URL(pc.Deliver.Webhook)
			opts.Deliver = webhookHandler(hooks, pc.Name, pc.Deliver.Webhook, pc.Deliver.Timeout)
			opts.Receiver = func(pm.Command) string { return shown }
		}
		m, err := pm.New(store, def, opts)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: process manager %s: %w", cfg.Path, pc.Line, pc.Name, err)
		}
		p.managers = append(p.managers, managed{cfg: pc, def: def, m: m, attempts: attempts, failures: failures})
	}
	if reg != nil {
		reg.MustRegister(&managerCollector{p: p})
	}
	ctx = p.start(ctx)
	for _, mg := range p.managers {
		logger.Info("process manager started", "name", mg.cfg.Name, "handles", mg.cfg.Handles)
		p.run(ctx, "process manager", mg.cfg.Name, mg.m.Run, logger, failed)
	}
	return p, nil
}

// countAttempts returns an Options.OnAttempt that counts each attempt, and each failed
// one, then calls next (when set).
func countAttempts(next func(pm.AttemptInfo), attempts, failures *atomic.Uint64) func(pm.AttemptInfo) {
	return func(a pm.AttemptInfo) {
		attempts.Add(1)
		if a.Err != nil {
			failures.Add(1)
		}
		if next != nil {
			next(a)
		}
	}
}

// webhookHandler delivers the commands of one process manager to its webhook, each
// attempt cut off after timeout (0 for server.DefaultWebhookTimeout), however long that is.
func webhookHandler(hooks *server.Webhooks, manager, url string, timeout time.Duration) pm.Handler {
	return func(ctx context.Context, c pm.Command) error {
		ctx, cancel := context.WithTimeout(ctx, cmp.Or(timeout, server.DefaultWebhookTimeout))
		defer cancel()
		return hooks.Deliver(ctx, url, server.WebhookCommand{
			ID: c.ID.String(), Type: c.Type, Manager: manager, ProcessID: c.ProcessID, Data: c.Data,
			Correlation: c.Correlation,
		})
	}
}

func (p *processes) count() int { return len(p.managers) }

// api is p as the server sees it; nil when no process manager runs.
func (p *processes) api() server.Processes {
	if len(p.managers) == 0 {
		return nil
	}
	return p
}

// Managers implements server.Processes. Each manager's lag costs one index read.
func (p *processes) Managers(ctx context.Context) ([]server.Manager, error) {
	out := make([]server.Manager, len(p.managers))
	for i, mg := range p.managers {
		c := mg.m.Counts()
		out[i] = server.Manager{Name: mg.cfg.Name, Handles: slices.Clone(mg.cfg.Handles),
			Open: c.Open, Completed: c.Completed, Expired: c.Expired,
			DeliveryAttempts: mg.attempts.Load(), DeliveryFailures: mg.failures.Load()}
		st, err := mg.m.Stats(ctx)
		if err != nil {
			return nil, err
		}
		out[i].Parked = st.Parked
		if st.LagErr == nil {
			// Else the lag lookup failed (a damaged index, which /healthz reports): the
			// manager is still listed, its lag null, rather than the answer failing.
			out[i].Lag = &st.Lag
		}
	}
	return out, nil
}

func (p *processes) find(name string) (managed, bool) {
	for _, mg := range p.managers {
		if mg.cfg.Name == name {
			return mg, true
		}
	}
	return managed{}, false
}

// List implements server.Processes.
func (p *processes) List(ctx context.Context, name, after string, limit int) ([]server.ProcessSummary, error) {
	mg, ok := p.find(name)
	if !ok {
		return nil, notFound("no process manager %q", name)
	}
	list, err := mg.m.Processes(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	return summaries(list), nil
}

// ListProcesses implements server.ProcessLister (pm.Manager.List says what it costs).
func (p *processes) ListProcesses(ctx context.Context, name string, q server.ListQuery) (server.ProcessListPage, error) {
	mg, ok := p.find(name)
	if !ok {
		return server.ProcessListPage{}, notFound("no process manager %q", name)
	}
	page, err := mg.m.List(ctx, pm.ListOptions{Status: pm.Status(q.Status), OlderThan: q.OlderThan, IdleFor: q.IdleFor,
		ByAge: q.ByAge, After: q.After, Limit: q.Limit, Hold: q.Hold})
	if errors.Is(err, pm.ErrInvalidListing) {
		return server.ProcessListPage{}, &apiError{err, server.ErrInvalid}
	}
	if err != nil {
		return server.ProcessListPage{}, err
	}
	out := server.ProcessListPage{Processes: summaries(page.Processes), Next: page.Next}
	return out, nil
}

// summaries are the lines of processes as the API shows them.
func summaries(list []pm.ProcessSummary) []server.ProcessSummary {
	out := make([]server.ProcessSummary, len(list))
	for i, s := range list {
		out[i] = server.ProcessSummary{ID: s.ID, Status: string(s.Status), Erased: s.Erased, Version: s.Version,
			Events: s.Events, Commands: s.Commands, Deadlines: s.Deadlines, Parked: s.Parked, Damaged: s.Damaged, Panic: s.Panic}
		if !s.Created.IsZero() {
			out[i].Created, out[i].LastActivity = &s.Created, &s.LastActivity
		}
	}
	return out
}

// Process implements server.Processes.
func (p *processes) Process(ctx context.Context, name, id string) (server.Process, error) {
	mg, ok := p.find(name)
	if !ok {
		return server.Process{}, notFound("no process manager %q", name)
	}
	v, err := mg.m.Process(ctx, id)
	return p.view(ctx, name, id, v, err)
}

var _ server.ProcessPager = (*processes)(nil)

// ProcessPage implements server.ProcessPager: a page of a long process's timeline,
// its state folded from its newest snapshot.
func (p *processes) ProcessPage(ctx context.Context, name, id string, q server.ProcessQuery) (server.Process, error) {
	mg, ok := p.find(name)
	if !ok {
		return server.Process{}, notFound("no process manager %q", name)
	}
	v, err := mg.m.ProcessPage(ctx, id, q.Before, q.Limit, pm.PageOptions{PageBytes: q.PageBytes,
		CommandsFrom: q.CommandsFrom, CommandsLimit: q.CommandsLimit, AttemptsFrom: q.AttemptsFrom, AttemptsLimit: q.AttemptsLimit,
		Hold: q.Hold, HoldState: q.HoldState})
	return p.view(ctx, name, id, v, err)
}

// view is the answer to a query about one process.
func (p *processes) view(ctx context.Context, name, id string, v pm.Process, err error) (server.Process, error) {
	if errors.Is(err, pm.ErrProcessNotFound) || errors.Is(err, pm.ErrInvalidProcessID) {
		return server.Process{}, notFound("no process %q of %s", id, name)
	}
	if err != nil {
		return server.Process{}, err
	}
	out := server.Process{
		Manager: v.Name, ID: v.ID, Stream: v.Stream, Status: string(v.Status), Erased: v.Erased, State: v.State,
		Events: v.Events, States: v.States,
		DeliveriesStream: v.DeliveriesStream, DeliveriesVersion: v.DeliveriesVersion,
		Damaged: v.Damaged, Panic: v.Panic,
	}
	at := make(map[uuid.UUID]int, len(v.Commands))
	for i, c := range v.Commands {
		cmd := server.Command{ID: c.ID.String(), Type: c.Type, Data: c.Data, Status: "pending", Attempts: []server.Attempt{}}
		// The command may be outside the page of events shown: the store knows where.
		// Its data is in the view already (counted by the memory budget): read undecoded,
		// for the position alone.
		e, err := p.store.EventWith(ctx, c.ID, pmd.EventOptions{Encoded: true})
		if err != nil {
			return server.Process{}, err
		}
		cmd.Position = e.Position
		if i < len(v.CommandInfo) { // a page (ProcessPage) says where it stands from every record
			info := v.CommandInfo[i]
			cmd.Version, cmd.Delivered = info.Version, info.Delivered
			if info.Last != "" {
				cmd.Status = commandStatus(info.Settled, info.Last)
			}
			if info.AttemptsNext >= 0 {
				cmd.AttemptsNext = &info.AttemptsNext
			}
		}
		at[c.ID] = len(out.Commands)
		out.Commands = append(out.Commands, cmd)
	}
	for _, d := range v.Deliveries {
		i, ok := at[d.CommandID]
		if !ok {
			continue
		}
		cmd := &out.Commands[i]
		// An error recorded by an earlier version may name the webhook unmasked.
		a := server.Attempt{Attempt: d.Attempt, Outcome: d.Outcome, At: d.At, Error: redact.URLsIn(d.Err)}
		if !d.RetryAt.IsZero() {
			a.RetryAt = &d.RetryAt
		}
		cmd.Attempts = append(cmd.Attempts, a)
		if len(v.CommandInfo) == 0 {
			cmd.Delivered = cmd.Delivered || d.Delivered()
			cmd.Status = commandStatus(cmd.Status, d.Outcome)
		}
	}
	if v.CommandsNext >= 0 {
		out.CommandsNext = &v.CommandsNext
	}
	for _, d := range v.Deadlines {
		out.Deadlines = append(out.Deadlines, server.Deadline{Due: d.Due, Issue: d.Type})
	}
	if sn := v.Snapshot; sn != nil {
		out.Snapshot = &server.Snapshot{Version: sn.Version, ID: sn.ID.String(), Stream: sn.Stream, Position: sn.Position, Timestamp: sn.Timestamp}
	}
	if v.Older >= 0 {
		out.Older = &v.Older
	}
	return out, nil
}

// commandStatus is where a command stands after a delivery record of outcome, from
// where it stood before: the records of a command come in order, and nothing follows
// its delivery or skip.
func commandStatus(was, outcome string) string {
	switch {
	case was == "delivered" || was == "skipped":
		return was // also a page's CommandInfo.Settled, pm.OutcomeDelivered or pm.OutcomeSkipped
	case outcome == pm.OutcomeDelivered:
		return "delivered"
	case outcome == pm.OutcomeSkipped:
		return "skipped"
	case outcome == pm.OutcomeParked:
		return "parked"
	case outcome == pm.OutcomeFailed:
		return "failing"
	default: // retried: queued for delivery at once
		return "pending"
	}
}

// Parked implements server.Processes.
func (p *processes) Parked(ctx context.Context, name string, q server.ParkedQuery) (server.ParkedPage, error) {
	mg, ok := p.find(name)
	if !ok {
		return server.ParkedPage{}, notFound("no process manager %q", name)
	}
	page, err := mg.m.Parked(ctx, pm.ParkedOptions{From: q.From, Limit: max(q.Limit, 0), Bytes: q.PageBytes, Hold: q.Hold})
	if err != nil {
		return server.ParkedPage{}, err
	}
	out := server.ParkedPage{Parked: make([]server.ParkedCommand, len(page.Commands)), Total: page.Total}
	for i, pc := range page.Commands {
		out.Parked[i] = server.ParkedCommand{ProcessID: pc.Command.ProcessID, ID: pc.Command.ID.String(), Type: pc.Command.Type,
			Data: pc.Command.Data, Position: pc.Position, Receiver: pc.Receiver, Attempts: pc.Attempts, Error: redact.URLsIn(pc.Err)}
	}
	if page.Next >= 0 {
		next := uint64(page.Next)
		out.Next = &next
	}
	return out, nil
}

// Retry implements server.Processes.
func (p *processes) Retry(ctx context.Context, name, id string, command uuid.UUID) error {
	return p.operate(ctx, name, id, command, (*pm.Manager).Retry)
}

// Skip implements server.Processes.
func (p *processes) Skip(ctx context.Context, name, id string, command uuid.UUID) error {
	return p.operate(ctx, name, id, command, (*pm.Manager).Skip)
}

func (p *processes) operate(ctx context.Context, name, id string, command uuid.UUID, op func(*pm.Manager, context.Context, string, uuid.UUID) error) error {
	mg, ok := p.find(name)
	if !ok {
		return notFound("no process manager %q", name)
	}
	err := op(mg.m, ctx, id, command)
	switch {
	case errors.Is(err, pm.ErrCommandNotFound):
		return &apiError{err, server.ErrNotFound}
	case errors.Is(err, pm.ErrCommandNotStuck), errors.Is(err, pm.ErrNoDelivery):
		return &apiError{err, server.ErrConflict}
	}
	return err
}

// notFound is a server.ErrNotFound whose message is the formatted text alone: the API
// answers it with the code not_found, which a ": not found" in the text would repeat.
func notFound(format string, args ...any) error {
	return &apiError{fmt.Errorf(format, args...), server.ErrNotFound}
}

// apiError is an error of package pm that the server answers as kind (server.ErrNotFound,
// server.ErrConflict), with pm's own words as the message.
type apiError struct{ err, kind error }

func (e *apiError) Error() string   { return e.err.Error() }
func (e *apiError) Unwrap() []error { return []error{e.err, e.kind} }

// Holding implements server.Processes: the process streams of the managers that handle
// ev's type and have linked it.
func (p *processes) Holding(ctx context.Context, ev pmd.Event) ([]string, error) {
	var out []string
	for _, mg := range p.managers {
		if !slices.Contains(mg.cfg.Handles, ev.Type) {
			continue
		}
		id, ok := mg.def.ProcessID(ev)
		if !ok {
			continue
		}
		stream := mg.cfg.Name + "$" + id
		if pmd.CheckName(stream) != nil {
			continue // no process stream can have that name
		}
		in, err := p.store.Contains(stream, ev.Position)
		if err != nil {
			return nil, err
		}
		if in {
			out = append(out, stream)
		}
	}
	return out, nil
}

// managerCollector exports the process managers' Stats as Prometheus metrics, read
// when scraped.
type managerCollector struct{ p *processes }

var (
	lagDesc = prometheus.NewDesc("pmd_pm_lag_events",
		"How far a process manager is behind the log, in log positions: from the oldest handled event not done to the newest one; 0 when caught up.",
		[]string{"pm"}, nil)
	unmatchedDesc = prometheus.NewDesc("pmd_pm_unmatched_events_total",
		"Handled events that belonged to no process (the correlation field missing, or a process id that cannot name a stream), since start.",
		[]string{"pm", "type"}, nil)
	parkedDesc = prometheus.NewDesc("pmd_pm_parked_commands",
		"Commands parked after failing max_attempts times in a row, waiting for retry or skip.",
		[]string{"pm"}, nil)
	removedDesc = prometheus.NewDesc("pmd_pm_removed_processes_total",
		"Done processes removed by retention (retention: completed), since start.",
		[]string{"pm"}, nil)
	lateDesc = prometheus.NewDesc("pmd_pm_late_events_total",
		"Handled events of processes removed by retention, skipped without starting them again, since start.",
		[]string{"pm"}, nil)
	undeliverableDesc = prometheus.NewDesc("pmd_pm_undeliverable_commands_total",
		"Commands not delivered because their process, stored by an earlier version, has an id that leaves no room for the name of its deliveries stream, since start.",
		[]string{"pm"}, nil)
	panicsDesc = prometheus.NewDesc("pmd_pm_definition_panics_total",
		"Panics of the process manager's definition, each holding its process (or event) until pmd starts again, since start; logged at ERROR with the stack, at most one line a minute (it counts those not logged).",
		[]string{"pm"}, nil)
	exprErrorsDesc = prometheus.NewDesc("pmd_pm_expression_errors_total",
		"Evaluations of the config file's expressions (complete_when, when, data) that failed or gave a number JSON cannot hold, since start; each is logged, at most once a minute per expression.",
		[]string{"pm"}, nil)
)

func (c *managerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- unmatchedDesc
	ch <- parkedDesc
	ch <- removedDesc
	ch <- lateDesc
	ch <- undeliverableDesc
	ch <- panicsDesc
	ch <- exprErrorsDesc
}

func (c *managerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, mg := range c.p.managers {
		ch <- prometheus.MustNewConstMetric(exprErrorsDesc, prometheus.CounterValue, float64(c.p.exprs.Count(mg.cfg.Name)), mg.cfg.Name)
		st, err := mg.m.Stats(context.Background())
		if err != nil {
			continue // a closed store, or a follower's: nothing to say of it in this scrape
		}
		if st.LagErr == nil {
			// Left out when the lag lookup failed (a damaged index, which
			// pmd_damaged_records and /healthz report), not made an error that would
			// fail all of /metrics.
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(st.Lag), mg.cfg.Name)
		}
		ch <- prometheus.MustNewConstMetric(parkedDesc, prometheus.GaugeValue, float64(st.Parked), mg.cfg.Name)
		ch <- prometheus.MustNewConstMetric(removedDesc, prometheus.CounterValue, float64(st.Removed), mg.cfg.Name)
		ch <- prometheus.MustNewConstMetric(lateDesc, prometheus.CounterValue, float64(st.Late), mg.cfg.Name)
		ch <- prometheus.MustNewConstMetric(undeliverableDesc, prometheus.CounterValue, float64(st.Undeliverable), mg.cfg.Name)
		ch <- prometheus.MustNewConstMetric(panicsDesc, prometheus.CounterValue, float64(st.Panics), mg.cfg.Name)
		for typ, n := range st.Unmatched {
			ch <- prometheus.MustNewConstMetric(unmatchedDesc, prometheus.CounterValue, float64(n), mg.cfg.Name, typ)
		}
	}
}
