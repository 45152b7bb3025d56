package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd"
)

// following names what a subscription follows, for its log lines: a category, or a
// stream (empty or $all: the global log) and the types kept.
func following(opts pmd.SubscribeOptions) []any {
	if opts.Category != "" {
		return []any{"category", opts.Category}
	}
	return []any{"stream", opts.Stream, "types", opts.Types}
}

// subscribe streams events as Server-Sent Events: catch-up from "from" (or from the
// event after Last-Event-ID), then live. The SSE id of an event is its position when
// following the global log or a category and its version when following one stream, so
// resuming from Last-Event-ID is exact.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	types, typesParam, err := queryTypes(q)
	if err != nil {
		return err
	}
	opts := pmd.SubscribeOptions{Stream: q.Get("stream"), Types: types, Category: q.Get("category"), Encoded: true}
	if opts.Stream != "" && opts.Stream != pmd.All && len(opts.Types) > 0 {
		return errBadRequest("give stream or %s, not both: types filter only the global log (stream=$all)", typesParam)
	}
	if q.Has("category") {
		if err := pmd.CheckCategory(opts.Category); err != nil {
			return errBadArgument("category", err.Error())
		}
		switch {
		case opts.Stream != "":
			return errBadRequest("give category or stream, not both")
		case len(opts.Types) > 0:
			return errBadRequest("give category or %s, not both: types filter only the global log", typesParam)
		}
	}
	if opts.Stream != "" && opts.Stream != pmd.All {
		if err := checkName("stream", opts.Stream); err != nil {
			return err
		}
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return errBadRequest("from must be a non-negative integer, got %q", v)
		}
		opts.From = n
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == pmd.End {
			return errBadRequest("Last-Event-ID must be the id of an event sent before, got %q", v)
		}
		opts.From = n + 1
	}
	byStream := opts.Stream != "" && opts.Stream != pmd.All
	readStream := "" // the stream followed, by version
	if byStream {
		readStream = opts.Stream
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead {
		// The GET's header, and no events: a HEAD has no body, and a subscription
		// sending none would never end, its connection answering nothing else.
		w.WriteHeader(http.StatusOK)
		return nil
	}

	// Events after start are live: written once the client was told it is subscribed.
	start := s.store.LastPosition()
	ctx, out, end := s.whileServing(r.Context(), w)
	defer end()
	// However the stream ends, a client the server's stop ends it for is told so: it
	// reconnects, to this server once it is back or to another.
	defer out.stopped()
	w.WriteHeader(http.StatusOK)
	out.started()
	// Tell EventSource how soon to reconnect, and open the stream right away so the
	// client knows it is subscribed before the first event.
	if err := out.write([]byte("retry: 1000\n\n")); err != nil {
		return nil
	}

	s.metrics.subscriptions.Inc()
	defer s.metrics.subscriptions.Dec()

	// The subscription reads the store in its own goroutine, so that heartbeats can
	// be sent while it waits for events; only this goroutine writes to the client.
	// Events stored before the subscription began are read at the client's pace (the
	// reader waits for room in the queue); events written since are live, and a client
	// that lets more than SubscriberBuffer bytes of them pile up is cut.
	queue := newSendQueue(s.opts.SubscriberBuffer, &s.held, int64(s.opts.SubscribersBuffer))
	queue.waits = s.hooks.queueWaits
	defer func() {
		// The reader's context ends first: a push meanwhile sees it done, not a
		// released queue it would take for a cut subscriber.
		end()
		queue.release()
	}()
	go func() {
		for ev, err := range s.store.Subscribe(ctx, opts) {
			if err != nil {
				queue.finish(err)
				return
			}
			id := ev.Position
			if byStream {
				id = ev.Version
			}
			frame, err := s.sseFrame(ctx, queue, ev, id, readStream, ev.Position <= start)
			if err != nil {
				queue.finish(err)
				return
			}
			if frame == nil {
				if ctx.Err() == nil {
					// Counted here, not when the writer gets to say so: the writer
					// may be stuck on the very client that fell behind.
					s.metrics.subscriptionsCut.Inc()
					s.log.Info("subscriber cut: it let live events pile up", append(following(opts), "limit_bytes", s.opts.SubscriberBuffer)...)
				}
				return
			}
			queue.add(frame)
		}
		queue.finish(nil)
	}()

	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-queue.ready:
			frames, end := queue.take()
			if end.cut {
				why := fmt.Sprintf("this subscriber let more than %d bytes of live events pile up", s.opts.SubscriberBuffer)
				if end.shared {
					why = fmt.Sprintf("the subscribers of this server together let more than %d bytes of live events pile up, and this one fell behind", s.opts.SubscribersBuffer)
				}
				out.sseError("", errorBody{Error: "too_slow", Message: why + ": reconnect with Last-Event-ID to catch up from the last event received"})
				return nil
			}
			if len(frames) > 0 {
				err := out.write(frames...)
				queue.sent()
				if err != nil {
					return nil // the client is gone, or stopped reading
				}
				s.metrics.read(len(frames))
			}
			if end.done {
				if end.err != nil && ctx.Err() == nil {
					s.log.Warn("subscription ended", append(following(opts), "err", end.err)...)
					_, code := classify(end.err)
					out.sseError(damagedID(end.err, byStream), newErrorBody(code, end.err.Error(), end.err))
				}
				// The stream ends; the client reconnects with Last-Event-ID.
				return nil
			}
		case <-heartbeat.C:
			if err := out.write([]byte(": heartbeat\n\n")); err != nil {
				return nil
			}
		case <-ctx.Done():
			if err := revoked(ctx); err != nil {
				// Said, so that the client does not take the end for a broken
				// connection: its reconnect is refused with the same code.
				_, code := classify(err)
				out.sseError("", newErrorBody(code, err.Error(), err))
			}
			return nil
		}
	}
}

// sseFrame makes the SSE frame of ev, with the SSE id id, once the queue has room for
// it: its data decoded into bytes reserved of the memory budget, given back once the
// frame is written, and the frame's bytes counted by the queue (reserve) before they are
// allocated, then written into exactly those bytes (held.go). A catch-up frame (wait)
// that finds the queue full lets go of its decoded data and the bytes reserved for it,
// waits for room for its frame (room) and is made again: a subscriber that stopped
// reading holds nothing of the budget while it waits. A nil frame and no error is a
// subscription that ends there (cut, or its context done).
func (s *Server) sseFrame(ctx context.Context, queue *sendQueue, ev pmd.Event, id uint64, stream string, wait bool) ([]byte, error) {
	for {
		frame, size, err := s.makeFrame(ctx, queue, ev, id, stream, wait)
		if err != nil || frame != nil || size == 0 {
			return frame, err
		}
		if !queue.room(ctx, size) {
			return nil, nil
		}
	}
}

// makeFrame is sseFrame's one try, on a copy of ev, undecoded: full, the queue has no
// room for the frame's size bytes now, and nothing is held.
func (s *Server) makeFrame(ctx context.Context, queue *sendQueue, ev pmd.Event, id uint64, stream string, wait bool) (_ []byte, full int, _ error) {
	byStream := stream != ""
	decoded, _, err := decodeHeld(ctx, &ev, stream, true)
	if err != nil {
		return nil, 0, err
	}
	defer reservationOf(ctx).give(decoded)
	e := toJSON(ev, byStream)
	n, err := heldSize(e)
	if err != nil {
		return nil, 0, fmt.Errorf("server: encode event %s: %w", ev.ID, err)
	}
	var head [48]byte
	prefix := fmt.Appendf(head[:0], "id: %d\ndata: ", id)
	const end = "\n\n"
	size := len(prefix) + n + len(end)
	switch ok, isFull := queue.reserve(size, wait); {
	case isFull:
		return nil, size, nil
	case !ok:
		return nil, 0, nil
	}
	frame := append(make([]byte, 0, size), prefix...)
	if frame, err = s.appendHeld(ctx, frame, e); err != nil {
		return nil, 0, fmt.Errorf("server: encode event %s: %w", ev.ID, err)
	}
	return append(frame, end...), 0, nil
}

// damagedID is the SSE id of the damaged record err names (its version when following
// one stream, its position otherwise, like an event's), or "" if err names none. Sent
// with the error event, it becomes the client's Last-Event-ID (EventSource keeps the id
// of every message, error or not), so the reconnect resumes right after the damaged
// record, as the store's own subscribers go on past it, instead of meeting it again.
func damagedID(err error, byStream bool) string {
	var ce *pmd.CorruptError
	if !errors.As(err, &ce) {
		return ""
	}
	if byStream {
		return strconv.FormatUint(ce.Version, 10)
	}
	return strconv.FormatUint(ce.Position, 10)
}

// sendQueue holds the SSE frames of one subscriber that are encoded but not yet
// written, bounded in bytes. One goroutine pushes, one takes. The frames taken count
// until the writer says they are sent: a slow client's writer holds them as long as the
// queue, and the bound is of both together.
type sendQueue struct {
	limit int
	ready chan struct{} // signalled when frames are added or the end is set
	space chan struct{} // signalled when frames are taken

	// held counts the bytes every subscription of the server holds, bounded by
	// allLimit beyond one frame each.
	held     *atomic.Int64
	allLimit int64
	// waits is the server's queueWaits hook (tests'), nil outside them.
	waits func()

	mu     sync.Mutex
	frames [][]byte
	bytes  int // of frames, of the one being made and of those taken and not yet sent
	taken  int // of those taken and not yet sent
	// pending is the bytes of the frame being made: reserved, not yet added.
	pending int
	end     queueEnd
	// released is set when the subscription ended and gave its bytes back: a frame
	// the reader pushes after that would be counted for good.
	released bool
}

// queueEnd is how a subscription ends: the reader finished (done, with the store's
// error if any) or the subscriber was cut for falling behind (shared: by the bound of
// all subscribers together, its own having room).
type queueEnd struct {
	done, cut, shared bool
	err               error
}

func newSendQueue(limit int, held *atomic.Int64, allLimit int64) *sendQueue {
	return &sendQueue{limit: limit, held: held, allLimit: allLimit, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// release gives back to the server's count what q still holds, when its subscription ends.
func (q *sendQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.held.Add(-int64(q.bytes))
	q.frames, q.bytes, q.taken, q.pending = nil, 0, 0, 0
	q.released = true
	signal(q.space) // a reader waiting for room stops
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// reserve counts n bytes of a frame about to be made (add queues it), before they are
// allocated. A frame always fits a queue with no frame waiting, however large (so a
// subscriber holds at most its limit, or the batch being sent and one frame). When the
// queue is full, a catch-up frame (wait) is not counted (full: the caller waits for
// room, holding nothing); a live one cuts the subscriber. ok says the frame is counted.
func (q *sendQueue) reserve(n int, wait bool) (ok, full bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.released:
		return false, false
	case q.fits(n):
		q.bytes += n
		q.pending += n
		q.held.Add(int64(n))
		return true, false
	case wait:
		return false, true
	}
	q.end = queueEnd{cut: true, shared: q.bytes+n <= q.limit}
	q.held.Add(-int64(q.bytes - q.taken))
	q.frames, q.bytes = nil, q.taken
	signal(q.ready)
	return false, false
}

// fits says whether n more bytes fit in q now; q.mu is held.
func (q *sendQueue) fits(n int) bool {
	return len(q.frames) == 0 || q.bytes+n <= q.limit && q.held.Load()+int64(n) <= q.allLimit
}

// room waits until a frame of n bytes fits in q (reserve), and reports whether the
// subscription goes on.
func (q *sendQueue) room(ctx context.Context, n int) bool {
	for {
		q.mu.Lock()
		released, fits := q.released, q.fits(n)
		q.mu.Unlock()
		switch {
		case released:
			return false
		case fits:
			return true
		}
		if q.waits != nil {
			q.waits()
		}
		select {
		case <-q.space:
		case <-ctx.Done():
			return false
		}
	}
}

// add queues frame, whose bytes reserve counted.
func (q *sendQueue) add(frame []byte) {
	q.mu.Lock()
	q.pending = 0
	if !q.released {
		q.frames = append(q.frames, frame)
	}
	q.mu.Unlock()
	signal(q.ready)
}

// finish marks the end of the reader, with its error.
func (q *sendQueue) finish(err error) {
	q.mu.Lock()
	q.end = queueEnd{done: true, err: err}
	q.mu.Unlock()
	signal(q.ready)
}

// take returns the queued frames and how the subscription ends, if it does. The
// frames count against the bounds until sent is called.
func (q *sendQueue) take() ([][]byte, queueEnd) {
	q.mu.Lock()
	frames, end := q.frames, q.end
	q.frames, q.taken = nil, q.bytes-q.pending
	q.mu.Unlock()
	signal(q.space)
	return frames, end
}

// sent says the frames last taken are written (or will never be): their bytes no
// longer count.
func (q *sendQueue) sent() {
	q.mu.Lock()
	q.held.Add(-int64(q.taken))
	q.bytes -= q.taken
	q.taken = 0
	q.mu.Unlock()
	signal(q.space)
}

// stopWrite is how long, from the server's stop, a long response's client has to take
// what is left to write: the error event that tells it why its stream ends. A client
// that stopped reading holds the shutdown no longer than that.
const stopWrite = time.Second

// shutdownBody is the error event a subscription ends with when the server stops.
var shutdownBody = errorBody{Error: codeUnavailable, Message: "the server is shutting down: reconnect with Last-Event-ID"}

// longResponse writes a long response (a subscription, one relayed from the leader),
// each write under a deadline, until the server stops.
type longResponse struct {
	s       *Server
	w       http.ResponseWriter
	rc      *http.ResponseController
	watched chan struct{}
	// sending is set once the response's header is written: from then on, the stop
	// cuts the write under way. Before, cancelling the context is enough, and the
	// handler's error answer must reach the client.
	sending atomic.Bool
	once    sync.Once
	final   time.Time // the deadline of every write from the stop on
}

// whileServing returns a context for a long response that ends with ctx or when the
// server begins to stop, and the response's writer. At the stop, a write to the client
// that is under way gets stopWrite to finish, once the header is written (started):
// for a client that stopped reading, it would wait for its deadline, RequestTimeout,
// and hold the shutdown that long. end releases what whileServing holds; the handler
// calls it before it returns, for the connection is no longer the handler's to touch
// once it has. end may be called more than once.
func (s *Server) whileServing(ctx context.Context, w http.ResponseWriter) (_ context.Context, _ *longResponse, end func()) {
	ctx, cancel := context.WithCancel(ctx)
	l := &longResponse{s: s, w: w, rc: http.NewResponseController(w), watched: make(chan struct{})}
	go func() {
		defer close(l.watched)
		select {
		case <-s.stopping:
			cancel()
			if l.sending.Load() {
				l.stopDeadline()
			}
		case <-ctx.Done():
		}
	}()
	return ctx, l, func() {
		cancel()
		<-l.watched
	}
}

// started says the response's header is written: the stop cuts its writes from now on.
func (l *longResponse) started() {
	l.sending.Store(true)
	if l.s.isStopping() {
		l.stopDeadline()
	}
}

// stopDeadline gives the writes the deadline of the stop, the same however many times
// it is called.
func (l *longResponse) stopDeadline() {
	l.once.Do(func() { l.final = time.Now().Add(stopWrite) })
	_ = l.rc.SetWriteDeadline(l.final)
}

// deadline gives the next write RequestTimeout, unless the server is stopping: then it
// gives it the stop's deadline and returns a shutdownError. The stop may come between
// the check and the deadline, after whileServing set the stop's: the check after puts it
// back, so that a deadline pushed back never outlives the handler, under which net/http
// would write the response's end to a client that stopped reading.
func (l *longResponse) deadline() error {
	if !l.s.isStopping() {
		_ = l.rc.SetWriteDeadline(time.Now().Add(l.s.opts.RequestTimeout))
		if !l.s.isStopping() {
			return nil
		}
	}
	l.stopDeadline()
	return errShutdown("the server is shutting down")
}

// write writes chunks and flushes them, each chunk under a write deadline, so that a
// client that stops reading is cut off rather than holding a goroutine and a connection
// forever; a burst of events costs one flush. Once the server stops, it writes no
// further chunk (a shutdownError: the chunk was not written), and flushes what it wrote
// under the stop's deadline.
func (l *longResponse) write(chunks ...[]byte) error {
	for _, b := range chunks {
		if err := l.deadline(); err != nil {
			return err
		}
		if _, err := l.w.Write(b); err != nil {
			return err
		}
	}
	_ = l.deadline()
	return l.rc.Flush()
}

// sseError sends an SSE "error" event, {"error": code, "message": msg, ...}, before the
// server ends the stream; with the SSE id id, unless it is empty.
func (l *longResponse) sseError(id string, body errorBody) {
	_ = l.write(errorFrame(id, body))
}

func errorFrame(id string, body errorBody) []byte {
	data, _ := json.Marshal(body)
	var frame []byte
	if id != "" {
		frame = fmt.Appendf(frame, "id: %s\n", id)
	}
	return fmt.Appendf(frame, "event: error\ndata: %s\n\n", data)
}

// stopped sends the error event that tells the client the server is shutting down,
// if it is (the handler's context ended, or a write refused, for another reason
// otherwise), under the stop's deadline.
func (l *longResponse) stopped() { l.stoppedAfter(nil) }

// stoppedAfter is stopped, sending cut first: what ends a message a relay passed on
// cut short (relayTail.cut).
func (l *longResponse) stoppedAfter(cut []byte) {
	if !l.s.isStopping() {
		return
	}
	l.stopDeadline()
	if _, err := l.w.Write(append(cut, errorFrame("", shutdownBody)...)); err == nil {
		_ = l.rc.Flush()
	}
}
