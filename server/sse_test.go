package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// frame is one SSE message, or a comment line.
type frame struct {
	id, event, data, retry, comment string
}

type sseClient struct {
	resp   *http.Response
	cancel context.CancelFunc
	frames chan frame
}

// openSSE subscribes at url, sending lastID as Last-Event-ID when not empty.
func openSSE(t *testing.T, url, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("subscribe: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{resp: resp, cancel: cancel, frames: make(chan frame, 1024)}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) read() {
	defer close(c.frames)
	sc := bufio.NewScanner(c.resp.Body)
	sc.Buffer(nil, 16<<20) // an event is one line
	var f frame
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if f != (frame{}) {
				c.frames <- f
			}
			f = frame{}
		case strings.HasPrefix(line, ":"):
			f.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			f.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data = line[6:]
		case strings.HasPrefix(line, "retry: "):
			f.retry = line[7:]
		}
	}
}

func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
}

// next returns the next frame, failing the test if none comes within a generous bound.
func (c *sseClient) next(t *testing.T) frame {
	t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			t.Fatal("the subscription ended")
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no SSE frame within 10s")
	}
	return frame{}
}

// event returns the next event frame, skipping heartbeats, with its data decoded.
func (c *sseClient) event(t *testing.T) (string, map[string]any) {
	t.Helper()
	for {
		f := c.next(t)
		if f.data == "" {
			continue
		}
		var ev map[string]any
		dec := json.NewDecoder(strings.NewReader(f.data))
		dec.UseNumber()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("data %q: %v", f.data, err)
		}
		return f.id, ev
	}
}

// waitEnd waits for the server to end the stream.
func (c *sseClient) waitEnd(t *testing.T) {
	t.Helper()
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the subscription did not end within 10s")
		}
	}
}

func TestSubscribeAllCatchUpLiveResume(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("a", nil, ev("A", map[string]any{"i": 0}), ev("B", map[string]any{"i": 1})).must(t, http.StatusCreated)
	e.append("b", nil, ev("A", map[string]any{"i": 2})).must(t, http.StatusCreated)

	sub := openSSE(t, e.ts.URL+"/v1/subscribe", "")
	if f := sub.next(t); f.retry == "" {
		t.Fatalf("first frame %+v, want the retry hint", f)
	}
	for i := range 3 {
		id, ev := sub.event(t)
		if id != ev["position"].(json.Number).String() || ev["data"].(map[string]any)["i"] != num(i) {
			t.Fatalf("catch-up event %d: id %s %v", i, id, ev)
		}
		if _, has := ev["version"]; has {
			t.Fatalf("version in a $all subscription: %v", ev)
		}
	}
	// Live.
	e.append("a", nil, ev("C", map[string]any{"i": 3})).must(t, http.StatusCreated)
	id, got := sub.event(t)
	if id != "4" || got["type"] != "C" {
		t.Fatalf("live event: id %s %v", id, got)
	}
	sub.close()

	// Events written while away, then resume after the last id seen.
	e.append("b", nil, ev("D", map[string]any{"i": 4}), ev("E", map[string]any{"i": 5})).must(t, http.StatusCreated)
	re := openSSE(t, e.ts.URL+"/v1/subscribe?from=1", id)
	for i := 4; i <= 5; i++ {
		_, ev := re.event(t)
		if ev["data"].(map[string]any)["i"] != num(i) {
			t.Fatalf("resumed event: %v, want i=%d (Last-Event-ID wins over from)", ev, i)
		}
	}
}

func TestSubscribeStreamAndTypes(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("Order$1", nil, ev("Placed", nil), ev("Paid", nil)).must(t, http.StatusCreated)
	e.append("Other", nil, ev("Placed", nil)).must(t, http.StatusCreated)

	// One stream, from version 1: ids are versions.
	sub := openSSE(t, e.ts.URL+"/v1/subscribe?stream=Order%241&from=1", "")
	id, got := sub.event(t)
	if id != "1" || got["type"] != "Paid" || got["version"] != num(1) {
		t.Fatalf("stream event: id %s %v", id, got)
	}
	// A link into the stream arrives live, marked as a link.
	other := e.do("GET", "/v1/streams/Other", nil).events(t)[0]["id"]
	e.do("POST", "/v1/streams/Order%241/links", map[string]any{"event_ids": []any{other}}).must(t, http.StatusCreated)
	id, got = sub.event(t)
	if id != "2" || got["link"] != true || got["stream"] != "Other" {
		t.Fatalf("linked event: id %s %v", id, got)
	}

	// A stream that does not exist yet: the subscription waits for it.
	wait := openSSE(t, e.ts.URL+"/v1/subscribe?stream=Later", "")
	e.append("Later", nil, ev("First", nil)).must(t, http.StatusCreated)
	if id, got := wait.event(t); id != "0" || got["type"] != "First" {
		t.Fatalf("first event of a new stream: id %s %v", id, got)
	}

	// Types filter the global log.
	typed := openSSE(t, e.ts.URL+"/v1/subscribe?types=Placed,First", "")
	var ids []string
	for range 3 {
		id, _ := typed.event(t)
		ids = append(ids, id)
	}
	if strings.Join(ids, ",") != "1,3,5" {
		t.Fatalf("typed subscription ids %v, want positions 1,3,5", ids)
	}
	// So do they with stream=$all, the global log named, in either form of types.
	for _, q := range []string{"stream=%24all&types=Placed,First", "stream=%24all&type=Placed&type=First"} {
		typed := openSSE(t, e.ts.URL+"/v1/subscribe?"+q, "")
		ids = nil
		for range 3 {
			id, _ := typed.event(t)
			ids = append(ids, id)
		}
		if strings.Join(ids, ",") != "1,3,5" {
			t.Fatalf("%s: ids %v, want positions 1,3,5", q, ids)
		}
		typed.close()
	}
}

func TestSubscribeHeartbeat(t *testing.T) {
	e := newEnv(t, Options{Heartbeat: time.Millisecond})
	sub := openSSE(t, e.ts.URL+"/v1/subscribe", "")
	for {
		if f := sub.next(t); f.comment == "heartbeat" {
			return
		}
	}
}

func TestSubscribeBadLastEventID(t *testing.T) {
	e := newEnv(t, Options{})
	req, _ := http.NewRequest("GET", e.ts.URL+"/v1/subscribe", nil)
	req.Header.Set("Last-Event-ID", "abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
}

// TestSlowClientIsCutOff: a client that sends its headers and part of a body, then
// nothing, is told so and disconnected once the request timeout passes.
func TestSlowClientIsCutOff(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := New(store, Options{Logger: quiet(), RequestTimeout: 200 * time.Millisecond})
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /v1/streams/s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"events\":")
	// If the server did not enforce its timeout, this read would wait for our own
	// much longer deadline and fail the test.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a stalled request open past its timeout")
	}
	if !strings.Contains(string(answer), "400 Bad Request") || !strings.Contains(string(answer), "did not arrive in time") {
		t.Fatalf("answer: %s", answer)
	}
	if store.LastPosition() != 0 {
		t.Fatal("a stalled request wrote something")
	}
}

// TestSendQueueBounds: a subscriber's queue takes frames up to its limit and cuts a live
// subscriber at the first frame past it, not later; a frame always fits an empty queue;
// the bytes of every queue together are bounded too; a catch-up frame waits for room
// instead of cutting.
func TestSendQueueBounds(t *testing.T) {
	ctx := context.Background()
	frame := func(n int) []byte { return make([]byte, n) }

	var held atomic.Int64
	q := newSendQueue(100, &held, 1<<20)
	for i := range 3 {
		if !q.push(ctx, frame(30), false) {
			t.Fatalf("frame %d of 30 bytes cut a queue of limit 100 holding %d", i, 30*i)
		}
	}
	if q.push(ctx, frame(11), false) {
		t.Fatal("a frame past the limit did not cut the live subscriber")
	}
	if _, end := q.take(); !end.cut || end.shared || held.Load() != 0 {
		t.Fatalf("after the cut: end %+v, %d bytes still counted; want a cut by its own bound", end, held.Load())
	}

	q = newSendQueue(100, &held, 1<<20)
	if !q.push(ctx, frame(500), false) {
		t.Fatal("a frame larger than the limit did not fit the empty queue")
	}
	q.take()
	q.sent()

	// Two queues share the server's bound of 150 bytes.
	a, b := newSendQueue(100, &held, 150), newSendQueue(100, &held, 150)
	if !a.push(ctx, frame(90), false) || !b.push(ctx, frame(50), false) {
		t.Fatal("frames within both bounds were refused")
	}
	if b.push(ctx, frame(20), false) {
		t.Fatal("a frame past the server's bound did not cut its subscriber")
	}
	if _, end := b.take(); !end.cut || !end.shared {
		t.Fatalf("cut by the server's bound: end %+v, want it said (shared)", end)
	}
	a.take()
	a.sent()

	// Catch-up frames wait for room: the push returns once the queue is taken.
	c := newSendQueue(100, &held, 1<<20)
	c.push(ctx, frame(90), true)
	pushed := make(chan bool)
	go func() { pushed <- c.push(ctx, frame(20), true) }()
	frames, end := c.take()
	if len(frames) != 1 || end.cut {
		t.Fatalf("took %d frames, end %+v", len(frames), end)
	}
	if !<-pushed {
		t.Fatal("the waiting catch-up frame was dropped")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if c.push(cctx, frame(95), true) {
		t.Fatal("a catch-up push into a full queue returned true with its context ended")
	}
	if _, end := c.take(); end.cut {
		t.Fatal("a catch-up frame cut the subscriber")
	}
}

// TestSendQueueCountsTheBatchBeingSent: the frames the writer took count against the
// subscriber's bound and the server's until they are written, so a client reading slowly
// cannot hold a batch in the writer and another full queue besides.
func TestSendQueueCountsTheBatchBeingSent(t *testing.T) {
	ctx := context.Background()
	frame := func(n int) []byte { return make([]byte, n) }
	var held atomic.Int64
	q := newSendQueue(100, &held, 1<<20)
	for range 3 {
		q.push(ctx, frame(30), false)
	}
	frames, _ := q.take() // the writer is now sending 90 bytes to a slow client
	if len(frames) != 3 || held.Load() != 90 {
		t.Fatalf("took %d frames, %d bytes counted while they are sent; want 3, 90", len(frames), held.Load())
	}
	// With nothing else queued one frame always fits, as in an empty queue; the next
	// would take the subscriber past its bound, counting what is being sent.
	if !q.push(ctx, frame(30), false) {
		t.Fatal("a frame behind a batch being sent, with nothing queued, cut the subscriber")
	}
	if q.push(ctx, frame(30), false) {
		t.Fatalf("a live subscriber holding %d bytes, 90 of them being sent, was not cut at a limit of 100", held.Load())
	}
	if _, end := q.take(); !end.cut {
		t.Fatalf("end %+v, want a cut", end)
	}
	if held.Load() != 90 {
		t.Fatalf("%d bytes counted after the cut, want the 90 still being sent", held.Load())
	}
	q.sent()
	if held.Load() != 0 {
		t.Fatalf("%d bytes counted once sent, want 0", held.Load())
	}

	// A catch-up frame waits until the batch is written, not only taken.
	c := newSendQueue(100, &held, 1<<20)
	c.push(ctx, frame(60), true)
	c.take()
	c.push(ctx, frame(30), true) // nothing queued: fits
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if c.push(ended, frame(30), true) {
		t.Fatal("a catch-up frame was queued while 60 bytes were being sent and 30 queued, at a limit of 100")
	}
	c.sent()
	if !c.push(ended, frame(30), true) {
		t.Fatal("a catch-up frame did not fit once the batch was written")
	}
	c.release()
	q.release()
	if held.Load() != 0 {
		t.Fatalf("%d bytes counted after every queue was released", held.Load())
	}
}

// TestSendQueueCountsNothingAfterRelease: a subscription that ends gives its bytes back,
// and a frame its reader pushes after that (the client went away while events came in)
// is refused, not counted against the server's shared bound for good.
func TestSendQueueCountsNothingAfterRelease(t *testing.T) {
	ctx := context.Background()
	var held atomic.Int64
	q := newSendQueue(100, &held, 1<<20)
	q.push(ctx, make([]byte, 30), true)
	q.take()
	q.sent()
	q.release()
	if q.push(ctx, make([]byte, 40), true) {
		t.Fatal("a frame pushed after the subscription ended was queued")
	}
	if held.Load() != 0 {
		t.Fatalf("%d bytes counted after the subscription ended, want 0", held.Load())
	}
	// A reader waiting for room when the subscription ends stops waiting.
	q = newSendQueue(10, &held, 1<<20)
	q.push(ctx, make([]byte, 10), true)
	done := make(chan bool)
	go func() { done <- q.push(ctx, make([]byte, 10), true) }()
	q.release()
	if <-done {
		t.Fatal("a frame waiting for room was queued after the subscription ended")
	}
	if held.Load() != 0 {
		t.Fatalf("%d bytes counted after the subscription ended, want 0", held.Load())
	}
}
