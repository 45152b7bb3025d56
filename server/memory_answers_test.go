package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// bigParked is fakeProcesses whose parked commands carry 40 KiB of data each.
type bigParked struct{ pagedProcesses }

func (f *bigParked) Parked(ctx context.Context, name string, q ParkedQuery) (ParkedPage, error) {
	page, err := f.fakeProcesses.Parked(ctx, name, q)
	for i := range page.Parked {
		page.Parked[i].Data = map[string]any{"pad": blob(40 << 10)}
	}
	return page, err
}

// TestMemoryBudgetAnswers: the answers that carry events' or commands' data besides
// pages of events (an event with its cause and effects, a process, parked commands)
// hold their bytes of Options.MemoryBudget while they are sent, as pages do. They held
// none: clients that asked for a large event and did not read held its answer each,
// beyond any budget (12 such clients of a 16 MiB event: 2 GiB, and more, of a daemon
// whose budget was 256 MiB), and the budget refused none of them.
func TestMemoryBudgetAnswers(t *testing.T) {
	const budget = 64 << 10
	procs := &bigParked{pagedProcesses{sizes: []int{40 << 10}}}
	e := newEnv(t, Options{MaxBody: 128 << 10, Processes: procs})
	// Below MaxBody + PageBytes, which Options would not allow, to fill it with little.
	e.srv.memory.limit = budget
	e.srv.memory.wait = 20 * time.Millisecond
	const id = "0190c1d2-0000-7000-8000-0000000000e1"
	big := ev("E", map[string]any{"pad": blob(40 << 10)})
	big["id"] = id
	e.append("s", nil, big).must(t, http.StatusCreated)

	for _, c := range []struct {
		path string
		// beyond: the answer reads the event, whose decoded bound is more than the whole
		// budget: refused as such, without Retry-After, for retrying in a second helps
		// only if no other request holds bytes by then (TestEventBeyondTheBudget).
		beyond bool
	}{{"/v1/events/" + id, true}, {"/v1/processes/M/1", false}, {"/v1/processes/M/parked", false}} {
		path := c.path
		t.Run(path, func(t *testing.T) {
			stalled := newStalledWriter()
			done := make(chan struct{})
			go func() {
				defer close(done)
				e.srv.ServeHTTP(stalled, httptest.NewRequest("GET", "http://localhost"+path, nil))
			}()
			<-stalled.started
			if h := e.srv.memory.Held(); h < 40<<10 {
				close(stalled.release)
				<-done
				t.Fatalf("a client that does not read its answer holds %d bytes of the budget, want its answer's, at least %d", h, 40<<10)
			}
			rec := e.serve(httptest.NewRequest("GET", path, nil))
			close(stalled.release)
			<-done
			switch {
			case c.beyond && (rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "more than the server's whole memory budget") ||
				rec.Header().Get("Retry-After") != ""):
				t.Fatalf("while a stalled client holds the budget: %d %.200s (Retry-After %q), want 503 unavailable for an event beyond the whole budget, without Retry-After",
					rec.Code, rec.Body, rec.Header().Get("Retry-After"))
			case !c.beyond && (rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "memory budget") ||
				rec.Header().Get("Retry-After") == ""):
				t.Fatalf("while a stalled client holds the budget: %d %.200s, want 503 unavailable at the memory budget, with Retry-After", rec.Code, rec.Body)
			}
			if h := e.srv.memory.Held(); h != 0 {
				t.Fatalf("%d bytes held after the stalled client ended", h)
			}
			if rec := e.serve(httptest.NewRequest("GET", path, nil)); rec.Code != http.StatusOK {
				t.Fatalf("once the budget is free: %d %.200s", rec.Code, rec.Body)
			}
			if h := e.srv.memory.Held(); h != 0 {
				t.Fatalf("%d bytes held after the answer", h)
			}
		})
	}
}
