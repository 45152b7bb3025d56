package server

import (
	"context"
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
		CommandsLimit: q.CommandsLimit, AttemptsFrom: q.AttemptsFrom, AttemptsLimit: q.AttemptsLimit, Hold: q.Hold})
	if err != nil {
		return Process{}, err
	}
	return Process{Manager: v.Name, ID: v.ID, Stream: v.Stream, Status: string(v.Status), State: v.State,
		Events: v.Events, States: v.States, DeliveriesVersion: -1}, nil
}

// pmEnv is an env whose process manager M counts the events E of process p.
func pmEnv(t *testing.T, opts Options) *env {
	t.Helper()
	procs := &pmProcesses{}
	opts.Processes = procs
	e := newEnv(t, opts)
	def := pm.Definition[int]{
		Name: "M", Handles: []string{"E"}, ProcessID: pm.DataField("p"),
		Init:   func(string) int { return 0 },
		Apply:  func(n int, ev pmd.Event) int { return n + 1 },
		Decide: func(int) []pm.Command { return nil },
	}
	m, err := pm.New(e.store, def, pm.Options{Logger: quiet()})
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
	e := pmEnv(t, Options{})
	data := map[string]any{"p": "a", "l": repeated(5000, func(int) any { return map[string]any{} })}
	for range 2 {
		e.append("Facts$1", nil, ev("E", data)).must(t, http.StatusCreated)
	}
	e.waitIdle(t)
	enc, err := pmd.EncodeData(data)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	took := int64(allocatedBy(func() { decoded, _ = pmd.DecodeData(enc) }))
	runtime.KeepAlive(decoded)

	var mu sync.Mutex
	var held []int64
	var capacity int
	e.srv.hooks.heldEncoded = func(h int64, c int) {
		mu.Lock()
		defer mu.Unlock()
		held, capacity = append(held, h), c
	}
	rec := e.serve(httptest.NewRequest("GET", "/v1/processes/M/a", nil))
	if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), `"type":"E"`) != 2 {
		t.Fatalf("GET /v1/processes/M/a: %d %.300s, want the two events", rec.Code, rec.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(held) != 1 {
		t.Fatalf("%d answers written, want 1", len(held))
	}
	if held[0] < int64(capacity)+2*took {
		t.Errorf("held %d for an answer of %d and two events that decoded into %d each", held[0], capacity, took)
	}
	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("%d bytes held after the answer", h)
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
	e := pmEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, MemoryBudget: 1})
	data := map[string]any{"p": "a", "l": repeated(15000, func(int) any { return map[string]any{} })}
	r := e.append("Facts$1", nil, ev("E", data)).must(t, http.StatusCreated)
	id := fmt.Sprint(r.body["ids"].([]any)[0])
	e.waitIdle(t)

	if r := e.do("GET", "/v1/processes/M/a", nil).must(t, http.StatusOK); !strings.Contains(string(r.raw), id) {
		t.Errorf("idle: %.200s, want the event", r.raw)
	}
	older := &reservation{s: e.srv}
	if err := older.take(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	defer older.free()
	r = e.do("GET", "/v1/processes/M/a", nil).mustError(t, http.StatusServiceUnavailable, codeUnavailable)
	msg := fmt.Sprint(r.body["message"])
	for _, want := range []string{id, fmt.Sprint(e.srv.memory.limit), "more than the server's whole memory budget"} {
		if !strings.Contains(msg, want) {
			t.Errorf("busy: message %q does not say %q", msg, want)
		}
	}
	if strings.HasPrefix(msg, "pm:") {
		t.Errorf("busy: message %q carries pm's wrapping", msg)
	}
	if ra := r.header.Get("Retry-After"); ra != "" {
		t.Errorf("busy: Retry-After %q, want none", ra)
	}
	if h := e.srv.memory.Held(); h != 1 {
		t.Errorf("%d bytes held after the refusal, want the older request's 1", h)
	}
}
