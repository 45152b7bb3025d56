package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMemoryBudgetFitsMaxBody: the budget is at least MaxBody + PageBytes, so that the
// largest body fits while others hold bytes.
func TestMemoryBudgetFitsMaxBody(t *testing.T) {
	e := newEnv(t, Options{MemoryBudget: 64 << 10, MaxBody: 256 << 10, PageBytes: 16 << 10})
	e.srv.memory.wait = 20 * time.Millisecond
	if want := int64(272 << 10); e.srv.opts.MemoryBudget != want || e.srv.memory.limit != want {
		t.Fatalf("a budget of 64 KiB with MaxBody 256 KiB and PageBytes 16 KiB is %d (limit %d), want %d",
			e.srv.opts.MemoryBudget, e.srv.memory.limit, want)
	}
	e.append("s", nil, ev("E", map[string]any{"pad": "x"})).must(t, http.StatusCreated)
	stalled := newStalledWriter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.ServeHTTP(stalled, httptest.NewRequest("GET", "http://localhost/v1/streams/s", nil))
	}()
	<-stalled.started
	body := `{"events":[{"type":"E","data":{"pad":"` + blob(200<<10) + `"}}]}`
	if rec := e.serve(httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(body))); rec.Code != http.StatusCreated {
		t.Errorf("a 200 KiB append while a small page is held: %d %s, want 201", rec.Code, rec.Body)
	}
	close(stalled.release)
	<-done

	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("%d bytes held after the uploads", h)
	}
}
