package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
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
	e := newEnv(t, Options{MaxBody: 128 << 10, Registry: reg})
	// Below MaxBody + PageBytes, which Options would not allow, to fill it with little.
	e.srv.memory.limit = budget
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
		// beyond: the read's event has a decoded bound of more than the whole budget,
		// refused as such and without Retry-After: retrying in a second helps only if no
		// other request holds bytes by then (TestEventBeyondTheBudget). Still counted.
		beyond bool
	}{
		{"a read", func() *http.Request { return httptest.NewRequest("GET", "/v1/streams/s?from=1&limit=1", nil) }, true},
		{"an append with a Content-Length", func() *http.Request {
			return httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(appendBody))
		}, false},
		{"a chunked append", func() *http.Request {
			return httptest.NewRequest("POST", "/v1/streams/s", onlyReader{strings.NewReader(appendBody)})
		}, false},
	}
	for i, c := range refused {
		rec := e.serve(c.req())
		want, retry := "memory budget", rec.Header().Get("Retry-After") != ""
		if c.beyond {
			want = "more than the server's whole memory budget"
		}
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"error":"unavailable"`) ||
			!strings.Contains(rec.Body.String(), want) || retry == c.beyond {
			t.Fatalf("%s while the budget is held: %d %s (Retry-After %q), want 503 unavailable saying %q, with Retry-After unless beyond the whole budget",
				c.name, rec.Code, rec.Body, rec.Header().Get("Retry-After"), want)
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

	// Every way a request ends gives its bytes back (a client gone mid-body or
	// mid-page: TestMemoryBudgetClientGone).
	ended := []struct {
		name string
		req  *http.Request
	}{
		{"malformed JSON", httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(`{"events":[`+blob(10<<10)))},
		{"a body too large", httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(blob(int(e.srv.opts.MaxBody)+1)))},
		{"a chunked body too large", httptest.NewRequest("POST", "/v1/streams/s", onlyReader{strings.NewReader(blob(int(e.srv.opts.MaxBody) + 1))})},
		{"a wrong expected version", httptest.NewRequest("POST", "/v1/streams/s", strings.NewReader(`{"expected_version":0,"events":[{"type":"E"}]}`))},
		{"a read of a missing stream", httptest.NewRequest("GET", "/v1/streams/none", nil)},
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
	e := newEnv(t, Options{})
	data := map[string]any{"pad": blob(20 << 10)}
	// Room for what decoding one event at a time takes (decoded.go) besides.
	enc, err := pmd.EncodeData(data)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := decodedBytes(enc)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.memory.limit = 64<<10 + int64(len(enc)) + decoded
	e.srv.memory.wait = 20 * time.Millisecond
	for range 3 {
		e.append("s", nil, ev("E", data)).must(t, http.StatusCreated)
	}
	// Others hold all but 40 KiB and what decoding takes: room for the first two
	// events' JSON, not the third's.
	other := &reservation{s: e.srv}
	if !other.tryTake(24 << 10) {
		t.Fatal("the budget is not free")
	}
	r := e.do("GET", "/v1/streams/s", nil).must(t, http.StatusOK)
	if n := len(r.events(t)); n == 0 || n == 3 || r.body["next"] != num(n) {
		t.Fatalf("got %d events, next %v; want a page cut short with next at the first left out", n, r.body["next"])
	}
	other.free()
	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("%d bytes held after the read", h)
	}
}

// pausedBody is a request body that sends first, then waits for release before it
// sends rest, as a client that uploads slowly; waiting is closed once it waits.
type pausedBody struct {
	first, rest []byte
	waiting     chan struct{}
	release     <-chan struct{}
}

func newPausedBody(body string, at int, release <-chan struct{}) *pausedBody {
	return &pausedBody{first: []byte(body[:at]), rest: []byte(body[at:]), waiting: make(chan struct{}), release: release}
}

func (b *pausedBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	select {
	case <-b.waiting:
	default:
		close(b.waiting)
		<-b.release
	}
	if len(b.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	return n, nil
}

// startUpload serves an append whose body is paused (a Content-Length of length, or
// chunked for -1), returns once the server waits for the rest of the body, and returns
// the channel of its response.
func (e *env) startUpload(body *pausedBody, length int64) <-chan *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest("POST", "http://localhost/v1/streams/s", body)
	req.ContentLength = length
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- e.serve(req) }()
	select {
	case <-body.waiting:
	case rec := <-done:
		e.t.Fatalf("an upload was answered before it sent all its body: %d %s", rec.Code, rec.Body)
	}
	return done
}

// TestMemoryBudgetBodyAsItArrives: a body reserves the budget as it arrives, not its
// whole Content-Length at once, so clients that send only headers announcing large
// bodies do not hold the budget and others are served.
func TestMemoryBudgetBodyAsItArrives(t *testing.T) {
	const maxBody = 1 << 20
	e := newEnv(t, Options{MemoryBudget: 4 * maxBody, MaxBody: maxBody, PageBytes: 64 << 10})
	e.srv.memory.wait = 20 * time.Millisecond
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	var done []<-chan *httptest.ResponseRecorder
	for range 4 {
		done = append(done, e.startUpload(newPausedBody(`{"events":[`, 0, release), maxBody))
	}
	if h := e.srv.memory.Held(); h > 4*(4<<10) {
		t.Errorf("4 clients that sent no byte of their %d-byte bodies hold %d bytes of the budget, want at most 4 KiB each", maxBody, h)
	}
	e.append("t", nil, ev("E", nil)).must(t, http.StatusCreated)
	e.do("GET", "/v1/streams/t", nil).must(t, http.StatusOK)
	free()
	for _, d := range done {
		if rec := <-d; rec.Code != http.StatusBadRequest {
			t.Errorf("a body cut short of its Content-Length: %d %s, want 400", rec.Code, rec.Body)
		}
	}
	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("%d bytes held after the uploads", h)
	}
}

// TestMemoryBudgetNoHoldAndWait: uploads that each hold part of the budget and wait for
// more do not wait on each other until all are refused: the oldest grows, beyond the
// budget if need be, and the others follow as it gives its bytes back.
func TestMemoryBudgetNoHoldAndWait(t *testing.T) {
	e := newEnv(t, Options{MemoryBudget: 100 << 10, MaxBody: 60 << 10, PageBytes: 40 << 10})
	body := `{"events":[{"type":"E","data":{"pad":"` + blob(48<<10) + `"}}]}`
	for _, length := range []int64{-1, int64(len(body))} {
		release := make(chan struct{})
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		defer free()
		var done []<-chan *httptest.ResponseRecorder
		for range 3 {
			// 31 KiB each: 32 KiB held of 100, and the next step (64) fits none.
			done = append(done, e.startUpload(newPausedBody(body, 31<<10, release), length))
		}
		if h := e.srv.memory.Held(); h < 3*(31<<10) || h > e.srv.memory.limit {
			t.Fatalf("3 uploads of 31 KiB so far hold %d bytes, want 31-32 KiB each", h)
		}
		free()
		for i, d := range done {
			if rec := <-d; rec.Code != http.StatusCreated {
				t.Errorf("upload %d (Content-Length %d): %d %s, want 201", i, length, rec.Code, rec.Body)
			}
		}
		if h := e.srv.memory.Held(); h != 0 {
			t.Fatalf("%d bytes held after the uploads", h)
		}
	}
}

// TestMemoryBudgetClientGone: a client whose connection closes mid-body (with a
// Content-Length or chunked) or mid-page gives back every byte it held.
func TestMemoryBudgetClientGone(t *testing.T) {
	e := newEnv(t, Options{MaxBody: 2 << 20})
	for range 4 {
		e.append("s", nil, ev("E", map[string]any{"pad": blob(1 << 20)})).must(t, http.StatusCreated)
	}
	// until polls cond, which the server makes true in its own time.
	until := func(what string, cond func(int64) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(e.srv.memory.Held()); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d bytes held", what, e.srv.memory.Held())
			}
			time.Sleep(time.Millisecond)
		}
	}
	cases := []struct {
		name string
		send string
		// held is what the server holds once it reads the body or sends the page;
		// peek waits for the page's first byte.
		held int64
		peek bool
	}{
		{"mid-body with a Content-Length",
			fmt.Sprintf("POST /v1/streams/s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n{\"events\":[", 1<<20) + blob(100<<10),
			100 << 10, false},
		{"mid-body, chunked",
			fmt.Sprintf("POST /v1/streams/s HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", 300<<10, blob(300<<10)),
			300 << 10, false},
		{"mid-page", "GET /v1/streams/s?limit=4 HTTP/1.1\r\nHost: localhost\r\n\r\n", 0, true},
	}
	for _, c := range cases {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, c.send); err != nil {
			t.Fatal(err)
		}
		if c.peek {
			if _, err := bufio.NewReader(conn).Peek(1); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		until(c.name+", before the client goes", func(h int64) bool { return h >= c.held })
		conn.Close()
		until(c.name+", after the client went", func(h int64) bool { return h == 0 })
	}
}

// TestMemoryBudgetGiveAllLosesPlace: a request that gave back all it held loses its
// place among the holders: another that then takes past the limit is the oldest, and
// the first, taking again, must fit within the limit like any other (or wait). Had it
// kept its place, it would still be the oldest and pass the limit too, so the bytes
// beyond it were no longer one request's.
func TestMemoryBudgetGiveAllLosesPlace(t *testing.T) {
	b := newMemoryBudget(100)
	a, other := &reservation{}, &reservation{}
	if ok, _ := b.tryTake(a, 50); !ok {
		t.Fatal("a could not take 50 of a free budget of 100")
	}
	b.give(a, 50)
	if ok, _ := b.tryTake(other, 150); !ok {
		t.Fatal("the only holder could not pass the limit")
	}
	if ok, _ := b.tryTake(a, 10); ok {
		t.Fatalf("a took 10 more with %d held of a limit of 100: it kept the place of the oldest after giving all back", b.Held()-10)
	}
	b.release(other)
	if ok, _ := b.tryTake(a, 10); !ok {
		t.Fatal("a could not take 10 of a free budget")
	}
	b.release(a)
	if h := b.Held(); h != 0 {
		t.Fatalf("%d bytes held after both released", h)
	}
}
