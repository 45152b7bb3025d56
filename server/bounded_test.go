package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/prometheus/client_golang/prometheus"
)

func blob(n int) string { return strings.Repeat("x", n) }

// TestContractBounds: the zero Options, which pmd serve uses, give the bounds docs/api.md
// ("Limits", "Errors", "Subscribe") names: bodies up to
// 16 MiB, pages up to 4 MiB, 16 MiB buffered for a subscriber and 256 MiB for all of
// them before one is cut, 100 events a page by default and 1000 at most, 30 s to answer
// a request, a heartbeat every 15 s on an idle subscription.
func TestContractBounds(t *testing.T) {
	var o Options
	o.setDefaults()
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"MaxBody", o.MaxBody, 16 << 20},
		{"PageBytes", int64(o.PageBytes), 4 << 20},
		{"SubscriberBuffer", int64(o.SubscriberBuffer), 16 << 20},
		{"SubscribersBuffer", int64(o.SubscribersBuffer), 256 << 20},
		{"MemoryBudget", o.MemoryBudget, 256 << 20},
		{"DefaultLimit", int64(o.DefaultLimit), 100},
		{"MaxLimit", int64(o.MaxLimit), 1000},
		{"RequestTimeout", int64(o.RequestTimeout), int64(30 * time.Second)},
		{"Heartbeat", int64(o.Heartbeat), int64(15 * time.Second)},
	} {
		if c.got != c.want {
			t.Errorf("Options{}.%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestPagesAreBoundedInBytes: a page stops before the event that would take it past
// PageBytes, holds one event however large, and next continues without a gap, for
// every paged read.
func TestPagesAreBoundedInBytes(t *testing.T) {
	const pageBytes = 64 << 10
	e := newEnv(t, Options{PageBytes: pageBytes})
	sizes := []int{20 << 10, 20 << 10, 20 << 10, 100 << 10, 1, 20 << 10, 30 << 10, 30 << 10, 1 << 10, 20 << 10}
	for i, n := range sizes {
		e.append("Big$1", nil, ev("E", map[string]any{"i": i, "pad": blob(n)})).must(t, http.StatusCreated)
	}
	for _, path := range []string{"/v1/streams/Big%241", "/v1/all", "/v1/categories/Big", "/v1/all?types=E"} {
		t.Run(path, func(t *testing.T) {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			var got []int
			from, pages := "0", 0
			for {
				r := e.do("GET", path+sep+"limit=1000&from="+from, nil).must(t, http.StatusOK)
				evs := r.events(t)
				pages++
				if len(evs) == 0 {
					t.Fatalf("empty page at %s: %s", from, r.raw)
				}
				if len(r.raw) > pageBytes && len(evs) > 1 {
					t.Fatalf("a page of %d bytes with %d events, over %d", len(r.raw), len(evs), pageBytes)
				}
				for _, x := range evs {
					i, _ := x["data"].(map[string]any)["i"].(interface{ Int64() (int64, error) }).Int64()
					got = append(got, int(i))
				}
				if r.body["next"] == nil {
					break
				}
				from = fmt.Sprint(r.body["next"])
			}
			if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9]" {
				t.Fatalf("events %v across pages", got)
			}
			// 20+20+20 | 100 | 1+20+30 | 30+1+20 KiB: the byte bound, not the limit,
			// cut them.
			if pages != 4 {
				t.Fatalf("%d pages, want 4", pages)
			}
		})
	}
}

// pagedProcesses is fakeProcesses whose process "1" has events of the given data
// sizes, one a version, and pages them as the daemon's process managers do: the newest
// whose data fit in the bound asked for, and always one. asked is the last bound asked.
type pagedProcesses struct {
	fakeProcesses
	sizes []int
	asked atomic.Int64
}

func (f *pagedProcesses) ProcessPage(_ context.Context, name, id string, q ProcessQuery) (Process, error) {
	before, limit, pageBytes := q.Before, q.Limit, q.PageBytes
	f.asked.Store(int64(pageBytes))
	if name != "M" || id != "1" {
		return Process{}, fmt.Errorf("no process %q of %q: %w", id, name, ErrNotFound)
	}
	hi := int64(len(f.sizes)) - 1
	if before >= 0 {
		hi = min(hi, before-1)
	}
	lo := max(0, hi-int64(limit)+1)
	for total, v := 0, hi; pageBytes > 0 && v >= lo; v-- {
		if total += f.sizes[v]; total > pageBytes && v < hi {
			lo = v + 1
			break
		}
	}
	p := Process{Manager: "M", ID: "1", Stream: "M$1", Status: "open", State: map[string]any{}}
	if lo > 0 {
		p.Older = &lo
	}
	for v := lo; v <= hi; v++ {
		p.Events = append(p.Events, pmd.Event{Type: "E", Stream: "M$1", Version: uint64(v), Position: uint64(v + 1),
			Data: map[string]any{"v": v, "pad": blob(f.sizes[v])}})
		p.States = append(p.States, map[string]any{"v": v})
	}
	return p, nil
}

// TestProcessPagesAreBoundedInBytes: the process route's page of events stops at
// PageBytes like every paged read, holds one event however large, and older continues
// without a gap.
func TestProcessPagesAreBoundedInBytes(t *testing.T) {
	const pageBytes = 64 << 10
	sizes := []int{20 << 10, 20 << 10, 20 << 10, 100 << 10, 1, 20 << 10, 30 << 10, 30 << 10, 1 << 10, 20 << 10}
	e := newEnv(t, Options{PageBytes: pageBytes, Processes: &pagedProcesses{sizes: sizes}})
	var got []int // newest page first, each page oldest first
	before, pages := "", 0
	for {
		path := "/v1/processes/M/1?limit=1000"
		if before != "" {
			path += "&before=" + before
		}
		r := e.do("GET", path, nil).must(t, http.StatusOK)
		pages++
		evs, _ := r.body["events"].([]any)
		if len(evs) == 0 {
			t.Fatalf("empty page before %q: %s", before, r.raw)
		}
		if len(r.raw) > pageBytes && len(evs) > 1 {
			t.Fatalf("a page of %d bytes with %d events, over %d", len(r.raw), len(evs), pageBytes)
		}
		var page []int
		for _, x := range evs {
			v, _ := x.(map[string]any)["data"].(map[string]any)["v"].(interface{ Int64() (int64, error) }).Int64()
			page = append(page, int(v))
		}
		got = append(page, got...)
		if r.body["older"] == nil {
			break
		}
		before = fmt.Sprint(r.body["older"])
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Fatalf("events %v across pages", got)
	}
	// From the newest, in KiB: 30+1+20 | 0+20+30 | 100 | 20+20+20: the byte bound, not
	// the limit, cut them.
	if pages != 4 {
		t.Fatalf("%d pages: the byte bound did not cut the page", pages)
	}
}

// rawSubscribe opens a subscription on a bare connection that reads nothing until
// asked, with a small receive buffer, so that the server's writes block.
func rawSubscribe(t *testing.T, addr, query string) (net.Conn, *bufio.Reader) {
	t.Helper()
	// The receive buffer is set before connecting, so that the window the connection
	// agrees on is small too.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /v1/subscribe%s HTTP/1.1\r\nHost: %s\r\n\r\n", query, addr)
	rd := bufio.NewReaderSize(conn, 1<<10)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %s", resp.Status)
	}
	body := bufio.NewReader(resp.Body)
	// The retry line says the subscription has begun: what is written from now on is live.
	if line, err := body.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("first line %q: %v", line, err)
	}
	return conn, body
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// waitFor polls cond, the server's own state, until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// TestSlowSubscriberIsCut: a subscriber that does not read while live events pile up
// past the subscriber buffer is cut with an SSE error event after the last event it
// was sent, and resumes from there with Last-Event-ID, with no gap.
func TestSlowSubscriberIsCut(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Options{SubscriberBuffer: 64 << 10, Registry: reg})
	addr := strings.TrimPrefix(smallServer(t, e).URL, "http://")
	conn, body := rawSubscribe(t, addr, "")
	// More than the socket buffers on both sides and the subscriber buffer hold.
	const n, size = 300, 8 << 10
	for range n {
		e.append("Live$1", nil, ev("E", map[string]any{"pad": blob(size)})).must(t, http.StatusCreated)
	}
	waitFor(t, "the subscriber is cut", func() bool { return counter(t, reg, "pmd_subscriptions_cut_total") == 1 })

	// Now read: contiguous events from position 1, then the error event, then the end.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var last uint64
	var errorEvent, sawError bool
	for {
		line, err := body.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the stream after event %d (error event %v): %v", last, errorEvent, err)
		}
		switch {
		case strings.HasPrefix(line, "id: "):
			id, _ := strconv.ParseUint(strings.TrimSpace(line[4:]), 10, 64)
			if id != last+1 {
				t.Fatalf("event %d after %d: a gap", id, last)
			}
			last = id
		case line == "event: error\n":
			errorEvent = true
		case errorEvent && strings.HasPrefix(line, "data: "):
			if !strings.Contains(line, `"error":"too_slow"`) || !strings.Contains(line, "Last-Event-ID") {
				t.Fatalf("error event %s", line)
			}
			sawError = true
		}
	}
	if !sawError || last >= n {
		t.Fatalf("got events 1..%d and error event %v; want fewer than all %d, then the error", last, sawError, n)
	}
	resume := ""
	if last > 0 {
		resume = strconv.FormatUint(last, 10)
	}
	sub := openSSE(t, e.ts.URL+"/v1/subscribe", resume)
	if id, _ := sub.event(t); id != strconv.FormatUint(last+1, 10) {
		t.Fatalf("resumed at %s, want %d", id, last+1)
	}
}

// smallServer is a second server of e's store whose connections send from a small
// buffer, so that a test need not write megabytes to fill it.
func smallServer(t *testing.T, e *env) *httptest.Server {
	ts := httptest.NewUnstartedServer(e.srv)
	ts.Listener = smallSendBuffer{ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// smallSendBuffer accepts connections with a small send buffer.
type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return c, c.(*net.TCPConn).SetWriteBuffer(4 << 10)
}

// TestCatchUpIsNotCut: events stored before a subscription are sent at the client's
// pace, however far behind it is: the subscriber buffer bounds memory, not the
// catch-up.
func TestCatchUpIsNotCut(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Options{SubscriberBuffer: 64 << 10, Registry: reg})
	const n = 100
	for range n {
		e.append("Old$1", nil, ev("E", map[string]any{"pad": blob(16 << 10)})).must(t, http.StatusCreated)
	}
	sub := openSSE(t, smallServer(t, e).URL+"/v1/subscribe?stream=Old%241", "")
	for i := range n {
		if id, _ := sub.event(t); id != strconv.Itoa(i) {
			t.Fatalf("event %s, want %d", id, i)
		}
	}
	if got := counter(t, reg, "pmd_subscriptions_cut_total"); got != 0 {
		t.Fatalf("%v subscribers cut during catch-up", got)
	}
}

// levels records the levels of the log records written.
type levels struct {
	mu   sync.Mutex
	seen []slog.Record
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, r)
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

// TestClientHangingUpIsNotAnError: a client that goes away in the middle of a large
// response is logged below ERROR.
func TestClientHangingUpIsNotAnError(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// 8 MiB: more than the socket buffers hold, so the server is still writing when the
	// client goes.
	for range 8 {
		if _, err := store.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "E", Data: map[string]any{"pad": blob(1 << 20)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{"/v1/streams/s?limit=8", "/v1/subscribe?stream=s"} {
		t.Run(path, func(t *testing.T) {
			logs := &levels{}
			srv := New(store, Options{Logger: slog.New(logs), PageBytes: 64 << 20})
			ln := listen(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln, 10*time.Second) }()

			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conn.(*net.TCPConn).SetReadBuffer(4 << 10)
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
			if _, err := io.ReadFull(conn, make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
			conn.Close() // unread data: the close resets the connection under the server's write
			if strings.HasPrefix(path, "/v1/subscribe") {
				// The subscription ends because its client went, not because the server stops.
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				deadline := time.After(10 * time.Second)
				open := func() bool {
					rec := httptest.NewRecorder()
					srv.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
					return !strings.Contains(rec.Body.String(), "\npmd_subscriptions 0\n")
				}
				for open() {
					select {
					case <-tick.C:
					case <-deadline:
						t.Fatal("the subscription did not end when its client went")
					}
				}
			}
			cancel() // Serve returns once the request has finished
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			logs.mu.Lock()
			defer logs.mu.Unlock()
			for _, r := range logs.seen {
				if r.Level >= slog.LevelError {
					t.Errorf("logged at %s: %s", r.Level, r.Message)
				}
			}
		})
	}
}

// TestCausedIsBoundedInBytes: the events an event caused are listed as far as a page's
// bytes allow, and the answer says when more are left out.
func TestCausedIsBoundedInBytes(t *testing.T) {
	e := newEnv(t, Options{PageBytes: 64 << 10})
	cause := "0190c1d2-0000-7000-8000-0000000000c0"
	e.do("POST", "/v1/streams/c", `{"events":[{"id":"`+cause+`","type":"Cause"}]}`).must(t, http.StatusCreated)
	for range 4 {
		e.append("c", nil, map[string]any{"type": "Effect", "data": map[string]any{"pad": blob(25 << 10)},
			"metadata": map[string]any{"causation_id": cause}}).must(t, http.StatusCreated)
	}
	r := e.do("GET", "/v1/events/"+cause, nil).must(t, http.StatusOK)
	if caused := r.body["caused"].([]any); len(caused) != 2 || r.body["caused_truncated"] != true || len(r.raw) > 64<<10 {
		t.Fatalf("%d caused events, truncated %v, %d bytes; want 2, true, at most 64 KiB", len(caused), r.body["caused_truncated"], len(r.raw))
	}
	e2 := newEnv(t, Options{})
	e2.do("POST", "/v1/streams/c", `{"events":[{"id":"`+cause+`","type":"Cause"},{"type":"Effect","metadata":{"causation_id":"`+cause+`"}}]}`).must(t, http.StatusCreated)
	r = e2.do("GET", "/v1/events/"+cause, nil).must(t, http.StatusOK)
	if caused := r.body["caused"].([]any); len(caused) != 1 || r.body["caused_truncated"] != false {
		t.Fatalf("caused %v truncated %v", caused, r.body["caused_truncated"])
	}
}

// TestEventStreamsBoundedInBytes: an event linked into more streams than a page holds
// lists as many as fit in a page's bytes (and at most MaxLimit), and says more exist.
func TestEventStreamsBoundedInBytes(t *testing.T) {
	ctx := context.Background()
	const nameLen = 250
	for _, tt := range []struct {
		name      string
		opts      Options
		links     int
		want      int // streams listed; 0: as many as fit in PageBytes
		truncated bool
	}{
		{"by bytes", Options{PageBytes: 8 << 10}, 60, 0, true},
		{"by count", Options{MaxLimit: 5}, 10, 5, true},
		{"one past the count", Options{MaxLimit: 5}, 5, 5, true},
		{"exactly the count", Options{MaxLimit: 5}, 4, 5, false},
		{"all of them", Options{PageBytes: 8 << 10}, 10, 11, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			res := e.append("s", nil, ev("E", nil)).must(t, http.StatusCreated)
			id := uuid.MustParse(res.body["ids"].([]any)[0].(string))
			for i := range tt.links {
				name := fmt.Sprintf("%03d%s", i, blob(nameLen-3))
				if _, err := e.store.Link(ctx, name, pmd.Any, id); err != nil {
					t.Fatal(err)
				}
			}
			r := e.do("GET", "/v1/events/"+id.String(), nil).must(t, http.StatusOK)
			streams := r.body["streams"].([]any)
			if r.body["streams_truncated"] != tt.truncated || tt.want > 0 && len(streams) != tt.want {
				t.Fatalf("%d streams, truncated %v; want %d, %v", len(streams), r.body["streams_truncated"], tt.want, tt.truncated)
			}
			if streams[0] != "s" {
				t.Fatalf("first stream %v, want the one it was written to", streams[0])
			}
			// Full: at most a page, and one more name would not have fit.
			if tt.want == 0 && (len(r.raw) > tt.opts.PageBytes || len(r.raw)+nameLen+3 <= tt.opts.PageBytes) {
				t.Fatalf("%d streams in %d bytes, a page being %d", len(streams), len(r.raw), tt.opts.PageBytes)
			}
		})
	}
}
