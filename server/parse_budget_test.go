package server

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMemoryBudgetCountsParsedBodies: the values parsed from a body hold many times its
// bytes (an object {"a":0} of 8 bytes is a map of about 300), and count against the
// memory budget as they are made. A small body that parses into more than the budget
// has room for is refused with 503 unavailable and Retry-After, writing nothing; once
// the budget is free, it is taken, and its bytes are given back when it is answered.
func TestMemoryBudgetCountsParsedBodies(t *testing.T) {
	e := newEnv(t, Options{})
	e.srv.memory.limit = 64 << 10
	e.srv.memory.wait = 20 * time.Millisecond
	// Another request, the oldest, holds a little of the budget: this one may not pass it.
	other := &reservation{s: e.srv}
	if !other.tryTake(8 << 10) {
		t.Fatal("the budget is not free")
	}
	// 8 KiB of JSON that parses into about 300 KiB.
	body := `{"events":[{"type":"E","data":{"rows":[` + strings.Repeat(`{"a":0},`, 1<<10) + `{"a":0}]}}]}`
	if len(body) > 16<<10 {
		t.Fatalf("the body is %d bytes: it should fit the budget as bytes", len(body))
	}
	rec := e.serve(httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(body)))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "memory budget") || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("an append of %d bytes that parses into more than the budget: %d %s (Retry-After %q), want 503 unavailable at the memory budget",
			len(body), rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if info, err := e.store.StreamInfo("s"); err != nil || info.Version != -1 {
		t.Fatalf("after the refused append the stream is at %+v (%v), want never written", info, err)
	}
	if h := e.srv.memory.Held(); h != 8<<10 {
		t.Fatalf("%d bytes held after the refusal, want the other request's %d", h, 8<<10)
	}
	other.free()
	if rec := e.serve(httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(body))); rec.Code != http.StatusCreated {
		t.Fatalf("the append once the budget is free: %d %s", rec.Code, rec.Body)
	}
	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("%d bytes held after the append", h)
	}
}

// TestParsedBytesCharged: what parseBody reserves for a body's values is at least what
// they hold on the heap, for each kind of value, so that the memory budget bounds them.
func TestParsedBytesCharged(t *testing.T) {
	for _, unit := range []string{`0`, `1000`, `1.5`, `"abcdefgh"`, `true`, `{}`, `{"a":0}`, `{"a":0,"b":0}`,
		`{"a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":0,"h":0,"i":0}`, `[]`, `[0]`, `{"k":[1,2,3],"s":"abc"}`} {
		body := []byte("[" + strings.Repeat(unit+",", (256<<10)/(len(unit)+1)) + unit + "]")
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var charged int64
		p := &parser{data: body, charge: func(n int64) error { charged += n; return nil }}
		v, err := p.parse()
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(v)
		if live := int64(after.HeapAlloc) - int64(before.HeapAlloc); charged < live {
			t.Errorf("an array of %s: %d bytes reserved, %d held", unit, charged, live)
		}
	}
}
