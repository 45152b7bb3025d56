package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// pmProcesses is fakeProcesses whose process pages are those of a pm.Manager, as the
// daemon's are (cmd/pmd): the pager passes ProcessQuery.Hold on to pm.
type pmProcesses struct {
	fakeProcesses
	m *pm.Manager
}

func (p *pmProcesses) ProcessPage(ctx context.Context, name, id string, q ProcessQuery) (Process, error) {
	v, err := p.m.ProcessPage(ctx, id, q.Before, q.Limit, pm.PageOptions{PageBytes: q.PageBytes, CommandsFrom: q.CommandsFrom,
		CommandsLimit: q.CommandsLimit, AttemptsFrom: q.AttemptsFrom, AttemptsLimit: q.AttemptsLimit, Hold: q.Hold,
		HoldState: q.HoldState})
	if err != nil {
		return Process{}, err
	}
	out := Process{Manager: v.Name, ID: v.ID, Stream: v.Stream, Status: string(v.Status), State: v.State,
		Events: v.Events, States: v.States, DeliveriesVersion: -1}
	at := map[string]int{}
	for _, c := range v.Commands {
		at[c.ID.String()] = len(out.Commands)
		out.Commands = append(out.Commands, Command{ID: c.ID.String(), Type: c.Type, Data: c.Data, Status: "pending", Attempts: []Attempt{}})
	}
	for _, d := range v.Deliveries {
		if i, ok := at[d.CommandID.String()]; ok {
			out.Commands[i].Attempts = append(out.Commands[i].Attempts, Attempt{Attempt: d.Attempt, Outcome: d.Outcome, At: d.At, Error: d.Err})
		}
	}
	return out, nil
}

func (p *pmProcesses) ListProcesses(ctx context.Context, name string, q ListQuery) (ProcessListPage, error) {
	page, err := p.m.List(ctx, pm.ListOptions{After: q.After, Limit: q.Limit, Hold: q.Hold})
	if err != nil {
		return ProcessListPage{}, err
	}
	out := ProcessListPage{Next: page.Next}
	for _, s := range page.Processes {
		out.Processes = append(out.Processes, ProcessSummary{ID: s.ID, Status: string(s.Status), Version: s.Version, Events: s.Events})
	}
	return out, nil
}

func (p *pmProcesses) Parked(ctx context.Context, name string, q ParkedQuery) (ParkedPage, error) {
	page, err := p.m.Parked(ctx, pm.ParkedOptions{From: q.From, Limit: max(q.Limit, 0), Bytes: q.PageBytes, Hold: q.Hold})
	if err != nil {
		return ParkedPage{}, err
	}
	out := ParkedPage{Total: page.Total}
	for _, c := range page.Commands {
		out.Parked = append(out.Parked, ParkedCommand{ProcessID: c.Command.ProcessID, ID: c.Command.ID.String(),
			Type: c.Command.Type, Data: c.Command.Data, Position: c.Position, Attempts: c.Attempts, Error: c.Err})
	}
	if page.Next >= 0 {
		next := uint64(page.Next)
		out.Next = &next
	}
	return out, nil
}

// pmEnv is an env whose process manager M counts the events E of process p. With
// issue, each process issues a command C of issue's data, which parks at its first
// delivery: its receiver is down.
func pmEnv(t *testing.T, opts Options, issue map[string]any) *env {
	t.Helper()
	return pmEnvFailing(t, opts, issue, "receiver down")
}

// pmEnvFailing is pmEnv whose receiver fails with the error why.
func pmEnvFailing(t *testing.T, opts Options, issue map[string]any, why string) *env {
	t.Helper()
	procs := &pmProcesses{}
	opts.Processes = procs
	e := newEnv(t, opts)
	def := pm.Definition[int]{
		Name: "M", Handles: []string{"E"}, ProcessID: pm.DataField("p"),
		Init:  func(string) int { return 0 },
		Apply: func(n int, ev pmd.Event) int { return n + 1 },
		Decide: func(int) []pm.Command {
			if issue == nil {
				return nil
			}
			return []pm.Command{{Type: "C", Key: "c", Data: issue}}
		},
	}
	pmOpts := pm.Options{Logger: quiet()}
	if issue != nil {
		pmOpts.MaxAttempts = 1
		pmOpts.Deliver = func(context.Context, pm.Command) error { return errors.New(why) }
	}
	m, err := pm.New(e.store, def, pmOpts)
	if err != nil {
		t.Fatal(err)
	}
	procs.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

// waitIdle waits until the manager of e linked every event appended.
func (e *env) waitIdle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.srv.opts.Processes.(*pmProcesses).m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestProcessHoldsDecodedData: GET /v1/processes/{name}/{id} decodes the events of its
// page into bytes reserved of the memory budget, before it decodes them, as pages of
// events do (TestPagesHoldDecodedData, TestEventByIDHoldsDecodedData). pm read them
// decoded and the route reserved only its answer's JSON, so the page's events, decoded
// into tens of times their JSON, were held uncounted for every client that asked and
// did not read.
func TestProcessHoldsDecodedData(t *testing.T) {
	e := pmEnv(t, Options{}, nil)
	data := map[string]any{"p": "a", "l": repeated(5000, func(int) any { return map[string]any{} })}
	for range 2 {
		e.append("Facts$1", nil, ev("E", data)).must(t, http.StatusCreated)
	}
	e.waitIdle(t)
	took := decodedSize(t, data)

	held, capacity, body := heldAnswer(t, e, "/v1/processes/M/a")
	if strings.Count(body, `"type":"E"`) != 2 {
		t.Fatalf("GET /v1/processes/M/a: %.300s, want the two events", body)
	}
	if held < int64(capacity)+2*took {
		t.Errorf("held %d for an answer of %d and two events that decoded into %d each", held, capacity, took)
	}
}

// TestProcessBeyondTheBudget: a process whose event's decoded bound is more than the
// whole memory budget is answered when no other request holds bytes of the budget, and
// while another does it is refused as a page of such an event is (TestEventBeyondTheBudget):
// 503 naming the event, its bound and the budget, without Retry-After, and the refused
// request holds nothing after. The event was decoded uncounted, and the answer refused
// only at its JSON, "retry shortly", with Retry-After, however idle the server was when
// the client retried.
func TestProcessBeyondTheBudget(t *testing.T) {
	e := pmEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, MemoryBudget: 1}, nil)
	data := map[string]any{"p": "a", "l": repeated(15000, func(int) any { return map[string]any{} })}
	r := e.append("Facts$1", nil, ev("E", data)).must(t, http.StatusCreated)
	id := fmt.Sprint(r.body["ids"].([]any)[0])
	e.waitIdle(t)

	if r := e.do("GET", "/v1/processes/M/a", nil).must(t, http.StatusOK); !strings.Contains(string(r.raw), id) {
		t.Errorf("idle: %.200s, want the event", r.raw)
	}
	msg := refusedBeyondBudget(t, e, "/v1/processes/M/a", id, fmt.Sprint(e.srv.memory.limit))
	if strings.HasPrefix(msg, "pm:") {
		t.Errorf("busy: message %q carries pm's wrapping", msg)
	}
}

// TestParkedHoldsDecodedData: GET /v1/processes/{name}/parked decodes the data of the
// parked commands it lists into bytes reserved of the memory budget, before it decodes
// them (pm.ParkedOptions.Hold), and a command larger than the whole budget is refused as
// a page of such an event is while another request holds bytes of it. pm read each
// command's record decoded and the route reserved only its answer's JSON, refused then
// with Retry-After as at a passing full budget.
func TestParkedHoldsDecodedData(t *testing.T) {
	data := map[string]any{"l": repeated(5000, func(int) any { return map[string]any{} })}
	e := pmEnv(t, Options{}, data)
	e.append("Facts$1", nil, ev("E", map[string]any{"p": "a"})).must(t, http.StatusCreated)
	e.waitIdle(t)
	took := decodedSize(t, data)

	held, capacity, body := heldAnswer(t, e, "/v1/processes/M/parked")
	if !strings.Contains(body, `"type":"C"`) {
		t.Fatalf("GET /v1/processes/M/parked: %.300s, want the parked command", body)
	}
	if held < int64(capacity)+took {
		t.Errorf("held %d for an answer of %d and a command whose data decoded into %d", held, capacity, took)
	}
}

// TestParkedBeyondTheBudget: parked commands whose data's decoded bound is more than the
// whole memory budget are refused while another request holds bytes of it, as a page of
// such an event is: naming the command's record, without Retry-After, holding nothing
// after (TestProcessBeyondTheBudget).
func TestParkedBeyondTheBudget(t *testing.T) {
	data := map[string]any{"l": repeated(15000, func(int) any { return map[string]any{} })}
	e := pmEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, MemoryBudget: 1}, data)
	e.append("Facts$1", nil, ev("E", map[string]any{"p": "a"})).must(t, http.StatusCreated)
	e.waitIdle(t)
	r := e.do("GET", "/v1/processes/M/parked", nil).must(t, http.StatusOK)
	id := fmt.Sprint(r.body["parked"].([]any)[0].(map[string]any)["id"])

	refusedBeyondBudget(t, e, "/v1/processes/M/parked", id)
}

// TestProcessFoldBeyondTheBudget: the fold of a process's state decodes its events into
// bytes reserved of the memory budget too (pm.PageOptions.Hold), so a page of older
// events (?before=) of a process whose newer event is more than the whole budget is
// refused as a page of that event is while another request holds bytes of it: naming
// the event, without Retry-After, holding nothing after. The fold read the events after
// the page decoded and uncounted, and the page was answered.
func TestProcessFoldBeyondTheBudget(t *testing.T) {
	e := pmEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, MemoryBudget: 1}, nil)
	e.append("Facts$1", nil, ev("E", map[string]any{"p": "a"})).must(t, http.StatusCreated)
	data := map[string]any{"p": "a", "l": repeated(15000, func(int) any { return map[string]any{} })}
	r := e.append("Facts$1", nil, ev("E", data)).must(t, http.StatusCreated)
	id := fmt.Sprint(r.body["ids"].([]any)[0])
	e.waitIdle(t)

	if r := e.do("GET", "/v1/processes/M/a?before=1", nil).must(t, http.StatusOK); strings.Contains(string(r.raw), id) {
		t.Errorf("idle: %.200s, want the first event only", r.raw)
	}
	refusedBeyondBudget(t, e, "/v1/processes/M/a?before=1", id)
}

// TestProcessHoldsDeliveries: GET /v1/processes/{name}/{id} decodes the delivery records
// of its commands into bytes reserved of the memory budget, before it decodes them
// (pm.PageOptions.Hold), those shown held until the answer is written, and a record
// larger than the whole budget is refused as a page of such an event is while another
// request holds bytes of it: naming the record, without Retry-After, holding nothing
// after. pm read the deliveries stream decoded, its records' errors (a receiver's
// answer) uncounted.
func TestProcessHoldsDeliveries(t *testing.T) {
	why := strings.Repeat("receiver down ", 3000)
	e := pmEnvFailing(t, Options{MaxBody: 64 << 10, PageBytes: 256 << 10, MemoryBudget: 1}, map[string]any{"x": 1}, why)
	e.append("Facts$1", nil, ev("E", map[string]any{"p": "a"})).must(t, http.StatusCreated)
	e.waitIdle(t)
	m := e.srv.opts.Processes.(*pmProcesses).m
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for parked := false; !parked; {
		p, err := m.Process(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range p.Deliveries {
			parked = parked || d.Outcome == pm.OutcomeParked
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not parked after a minute: %+v", p.Deliveries)
		case <-time.After(10 * time.Millisecond): // observing the manager's own goroutine
		}
	}
	var records []pmd.Event
	for ev, err := range e.store.ReadStream(ctx, "M.deliveries$a", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, ev)
	}
	took := decodedSize(t, records[0].Data)

	held, capacity, body := heldAnswer(t, e, "/v1/processes/M/a")
	if strings.Count(body, why) != len(records) {
		t.Fatalf("GET /v1/processes/M/a: %.300s, want the %d delivery records", body, len(records))
	}
	if held < int64(capacity)+int64(len(records))*took {
		t.Errorf("held %d for an answer of %d and %d delivery records that decoded into %d each", held, capacity, len(records), took)
	}

	refusedBeyondBudget(t, e, "/v1/processes/M/a", records[0].ID.String())
}

// TestProcessListBeyondTheBudget: the process-list route folds each process it lists
// with its events decoded into bytes reserved of the memory budget (pm.ListOptions.Hold),
// so a process whose event is more than the whole budget is listed when no other request
// holds bytes of the budget, and while another does the listing is refused as a page of
// that event is: naming it, without Retry-After, holding nothing after. The folds read
// the events decoded, uncounted.
func TestProcessListBeyondTheBudget(t *testing.T) {
	e := pmEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, MemoryBudget: 1}, nil)
	data := map[string]any{"p": "a", "l": repeated(15000, func(int) any { return map[string]any{} })}
	r := e.append("Facts$1", nil, ev("E", data)).must(t, http.StatusCreated)
	id := fmt.Sprint(r.body["ids"].([]any)[0])
	e.waitIdle(t)

	if r := e.do("GET", "/v1/processes/M", nil).must(t, http.StatusOK); !strings.Contains(string(r.raw), `"id":"a"`) {
		t.Errorf("idle: %.200s, want process a", r.raw)
	}
	refusedBeyondBudget(t, e, "/v1/processes/M", id)
}

// refusedBeyondBudget checks that a GET of path is refused while another request holds
// a byte of the memory budget (1 byte in all in these tests), as a page of an event
// larger than the whole budget is: 503 unavailable whose message says each of says and
// that it is more than the whole budget, without Retry-After (waiting cannot make room),
// and that the refusal holds nothing after. It returns the message.
func refusedBeyondBudget(t *testing.T, e *env, path string, says ...string) string {
	t.Helper()
	older := &reservation{s: e.srv}
	if err := older.take(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	defer older.free()
	r := e.do("GET", path, nil).mustError(t, http.StatusServiceUnavailable, codeUnavailable)
	msg := fmt.Sprint(r.body["message"])
	for _, want := range append(says, "more than the server's whole memory budget") {
		if !strings.Contains(msg, want) {
			t.Errorf("busy: message %q does not say %q", msg, want)
		}
	}
	if ra := r.header.Get("Retry-After"); ra != "" {
		t.Errorf("busy: Retry-After %q, want none", ra)
	}
	if h := e.srv.memory.Held(); h != 1 {
		t.Errorf("%d bytes held after the refusal, want the older request's 1", h)
	}
	return msg
}

// decodedSize is what pmd.DecodeData allocates decoding data, as the server's decode of
// an event holding it does.
func decodedSize(t *testing.T, data map[string]any) int64 {
	t.Helper()
	enc, err := pmd.EncodeData(data)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	took := int64(allocatedBy(func() { decoded, _ = pmd.DecodeData(enc) }))
	runtime.KeepAlive(decoded)
	return took
}

// heldAnswer serves GET path, which must answer 200, and returns what its one answer
// held of the memory budget as it was written, the capacity of the answer's buffer, and
// its body; nothing may be held after it.
func heldAnswer(t *testing.T, e *env, path string) (held int64, capacity int, body string) {
	t.Helper()
	var mu sync.Mutex
	var helds []int64
	e.srv.hooks.heldEncoded = func(h int64, c int) {
		mu.Lock()
		defer mu.Unlock()
		helds, capacity = append(helds, h), c
	}
	rec := e.serve(httptest.NewRequest("GET", path, nil))
	mu.Lock()
	defer mu.Unlock()
	e.srv.hooks.heldEncoded = nil
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", path, rec.Code, rec.Body)
	}
	if len(helds) != 1 {
		t.Fatalf("GET %s: %d answers written, want 1", path, len(helds))
	}
	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("GET %s: %d bytes held after the answer", path, h)
	}
	return helds[0], capacity, rec.Body.String()
}
