package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stalledWriter is the response writer of a client that does not read: its first Write
// says so on started and blocks until release is closed, then fails as for a client
// gone.
type stalledWriter struct {
	header  http.Header
	started chan struct{}
	release chan struct{}
}

func newStalledWriter() *stalledWriter {
	return &stalledWriter{header: http.Header{}, started: make(chan struct{}), release: make(chan struct{})}
}

func (w *stalledWriter) Header() http.Header { return w.header }
func (w *stalledWriter) WriteHeader(int)     {}
func (w *stalledWriter) Write([]byte) (int, error) {
	close(w.started)
	<-w.release
	return 0, errors.New("client gone")
}

// serve runs req through e's server with a recorder, as a client on localhost.
func (e *env) serve(req *http.Request) *httptest.ResponseRecorder {
	req.Host = "localhost"
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

// onlyReader hides the length of a body, so that it is read as a chunked one.
type onlyReader struct{ io.Reader }

// TestMemoryBudget: pages held for clients that do not read and bodies being read
// share Options.MemoryBudget. Once stalled readers hold it, a read, an append with a
// Content-Length and a chunked one are refused with 503 unavailable and Retry-After,
// and the append changes nothing; once the readers are released, they succeed. The
// bytes are given back however a request ends.
func TestMemoryBudget(t *testing.T) {
	const budget = 64 << 10
	reg := prometheus.NewRegistry()
	e := newEnv(t, Options{MemoryBudget: budget, MaxBody: 128 << 10, Registry: reg})
	e.srv.memory.wait = 20 * time.Millisecond
	big := ev("E", map[string]any{"pad": blob(40 << 10)})
	e.append("s", nil, big).must(t, http.StatusCreated)
	e.append("s", nil, big).must(t, http.StatusCreated)
	held := func() int64 { return e.srv.memory.Held() }

	// A reader that does not read holds its 40 KiB page.
	stalled := newStalledWriter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.ServeHTTP(stalled, httptest.NewRequest("GET", "http://localhost/v1/streams/s?limit=1", nil))
	}()
	<-stalled.started
	if h := held(); h < 40<<10 || h > budget {
		t.Fatalf("a stalled reader holds %d bytes of the budget, want its page's, at most %d", h, budget)
	}

	appendBody := `{"events":[{"type":"E","data":{"pad":"` + blob(30<<10) + `"}}]}`
	refused := []struct {
		name string
		req  func() *http.Request
	}{
		{"a read", func() *http.Request { return httptest.NewRequest("GET", "/v1/streams/s?from=1&limit=1", nil) }},
		{"an append with a Content-Length", func() *http.Request {
			return httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(appendBody))
		}},
		{"a chunked append", func() *http.Request {
			return httptest.NewRequest("POST", "/v1/streams/s", onlyReader{strings.NewReader(appendBody)})
		}},
	}
	for i, c := range refused {
		rec := e.serve(c.req())
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"error":"unavailable"`) ||
			!strings.Contains(rec.Body.String(), "memory budget") || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%s while the budget is held: %d %s (Retry-After %q), want 503 unavailable at the memory budget, with Retry-After",
				c.name, rec.Code, rec.Body, rec.Header().Get("Retry-After"))
		}
		if got := counter(t, reg, "pmd_memory_budget_refused_total"); got != float64(i+1) {
			t.Fatalf("pmd_memory_budget_refused_total = %v after %d refusals", got, i+1)
		}
	}
	if info, err := e.store.StreamInfo("s"); err != nil || info.Version != 1 {
		t.Fatalf("after refused appends the stream is at %+v (%v), want version 1", info, err)
	}

	// The stalled reader gives its bytes back when its write fails.
	close(stalled.release)
	<-done
	if h := held(); h != 0 {
		t.Fatalf("%d bytes held after the stalled reader ended", h)
	}
	for _, c := range refused {
		if rec := e.serve(c.req()); rec.Code/100 != 2 {
			t.Fatalf("%s once the budget is free: %d %s", c.name, rec.Code, rec.Body)
		}
		if h := held(); h != 0 {
			t.Fatalf("%d bytes held after %s", h, c.name)
		}
	}

	// Every way a request ends gives its bytes back.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	ended := []struct {
		name string
		req  *http.Request
	}{
		{"malformed JSON", httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(`{"events":[`+blob(10<<10)))},
		{"a body too large", httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(blob(int(e.srv.opts.MaxBody)+1)))},
		{"a chunked body too large", httptest.NewRequest("POST", "/v1/streams/s", onlyReader{strings.NewReader(blob(int(e.srv.opts.MaxBody) + 1))})},
		{"a wrong expected version", httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(`{"expected_version":0,"events":[{"type":"E"}]}`))},
		{"a read of a missing stream", httptest.NewRequest("GET", "/v1/streams/none", nil)},
		{"a client gone", httptest.NewRequestWithContext(gone, "GET", "/v1/streams/s", nil)},
		{"a body of a client gone", httptest.NewRequestWithContext(gone, "POST", "/v1/streams/s", onlyReader{strings.NewReader(appendBody)})},
	}
	for _, c := range ended {
		rec := e.serve(c.req)
		if h := held(); h != 0 {
			t.Fatalf("%d bytes held after %s (%d %s)", h, c.name, rec.Code, rec.Body)
		}
	}
}

// TestMemoryBudgetEndsPagesEarly: a page that the budget cannot grow, once it holds an
// event, ends there with next at the event left out.
func TestMemoryBudgetEndsPagesEarly(t *testing.T) {
	e := newEnv(t, Options{MemoryBudget: 64 << 10})
	e.srv.memory.wait = 20 * time.Millisecond
	for range 3 {
		e.append("s", nil, ev("E", map[string]any{"pad": blob(20 << 10)})).must(t, http.StatusCreated)
	}
	// Others hold all but 40 KiB: room for the first two events, not the third.
	if ok, _ := e.srv.memory.tryTake(24<<10, 0); !ok {
		t.Fatal("the budget is not free")
	}
	r := e.do("GET", "/v1/streams/s", nil).must(t, http.StatusOK)
	if n := len(r.events(t)); n == 0 || n == 3 || r.body["next"] != num(n) {
		t.Fatalf("got %d events, next %v; want a page cut short with next at the first left out", n, r.body["next"])
	}
	e.srv.memory.release(24 << 10)
	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("%d bytes held after the read", h)
	}
}
