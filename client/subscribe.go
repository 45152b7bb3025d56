package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd"
)

// SubscribeOptions selects what a subscription delivers.
type SubscribeOptions struct {
	// Stream is the stream to follow; empty or pmd.All follows the global log.
	Stream string
	// Types keeps only events of these types; only for the global log.
	Types []string
	// Category, if set, follows the events written to the streams of a category (the
	// part of a stream name before its first $, as ReadCategory reads them) instead, by
	// position. Not with Stream (pmd.All included) or Types; a token limited to streams
	// may not (ErrForbidden).
	Category string
	// From is the first position (global log, category) or version (stream) to deliver.
	From uint64
	// Dropped, if set, is called with the reason each time the subscription lost its
	// connection, before it reconnects and resumes: a *ConnectionError, or the daemon's
	// *Error that ended it (errors.Is(err, ErrTooSlow) for a subscriber that fell
	// behind, pmd.ErrUnavailable while it stops, at its memory budget, or when the
	// leader's stream a cluster's follower relays ended: the leader stopped, was killed
	// or cut off). At an event whose decoded data is larger than the daemon's whole
	// memory budget, which it sends only while no other request holds bytes of the
	// budget, the subscription keeps reconnecting, each refusal reported here with a
	// message saying so, until it does.
	Dropped func(err error)
}

// Subscribe follows the global log, a category or one stream: the stored events from
// opts.From, then live events as they are written. It yields each event once, in
// order; when the connection drops, goes silent (WithIdleTimeout) or the daemon cuts
// it, it reconnects after the reconnect delay and resumes after the last event yielded
// (SSE Last-Event-ID), for as long as ctx lasts. It stops without an error when ctx is
// done, and with one when the daemon refuses the subscription with a client error (4xx:
// a missing token), when the answer is not an event stream (an *Error of status 200
// naming its Content-Type: the address is not a pmd daemon's), when TLS refuses the
// connection to an https address (a *ConnectionError around http.ErrSchemeMismatch for
// an address that answers plain HTTP, or around the *tls.CertificateVerificationError of
// a certificate the client does not trust; an expired one is waited for, as the daemon
// takes a renewed one on SIGHUP), or at an event over WithMaxEventSize, which a retry
// would not change; options the store would refuse (a
// stream or category name that breaks its rules, types with a stream, a category with
// a stream or types) end it before anything is sent, with a *pmd.InvalidArgumentError.
// At a damaged record it yields a *pmd.CorruptError and, if the loop goes on, resumes
// after the record at once. Breaking out of the loop ends the subscription.
func (c *Client) Subscribe(ctx context.Context, opts SubscribeOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		q := url.Values{}
		if opts.Category != "" {
			// As the store's Subscribe refuses them, with its Arg.
			if err := checked("category", pmd.CheckCategory(opts.Category)); err != nil {
				yield(Event{}, err)
				return
			}
			if opts.Stream != "" || len(opts.Types) > 0 {
				yield(Event{}, invalid("category", "follow a category, a stream or types, not two of them"))
				return
			}
			q.Set("category", opts.Category)
		}
		if opts.Stream != "" {
			if err := checkStream(opts.Stream); err != nil {
				yield(Event{}, err)
				return
			}
			if opts.Stream != pmd.All {
				if len(opts.Types) > 0 {
					yield(Event{}, invalid("types", "filter only the global log, not stream %q", opts.Stream))
					return
				}
				// pmd.All is not sent: without a stream the daemon follows the global
				// log, and daemons before this release refused stream=$all with types.
				q.Set("stream", opts.Stream)
			}
		}
		if err := checkTypes(opts.Types); err != nil {
			yield(Event{}, err)
			return
		}
		if len(opts.Types) > 0 {
			setTypes(q, opts.Types)
		}
		if opts.From > 0 {
			q.Set("from", strconv.FormatUint(opts.From, 10))
		}
		path := "/v1/subscribe"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		s := &sse{c: c, path: path, yield: yield}
		for {
			err := s.connect(ctx)
			if ctx.Err() != nil || s.stopped {
				return
			}
			var ev *errorEvent
			if errors.As(err, &ev) && ev.err.Code == "corrupt" {
				// As pmd.Store.Subscribe does: the damaged record is the caller's to
				// see, and a caller that goes on gets the events after it. The error
				// event's id is the damaged record's, so resuming after it skips it.
				if ev.id == "" { // a daemon older than the id on the error event
					yield(Event{}, ev.err)
					return
				}
				if !yield(Event{}, damaged(ev, opts.Stream)) {
					return
				}
				s.lastID = ev.id
				continue // nothing failed: reconnect at once
			}
			if !transient(err) {
				yield(Event{}, err)
				return
			}
			if opts.Dropped != nil {
				opts.Dropped(err)
			}
			t := time.NewTimer(c.reconnect)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// transient tells whether a subscription that ended with err is worth resuming: a
// connection that broke, a daemon that cut it or could not serve it for now (5xx, as
// while it restarts). A refusal (4xx) or an answer that is not the events expected
// would come again, and so would a connection that TLS refused (mistrusted).
func transient(err error) bool {
	var conn *ConnectionError
	var api *Error
	var ev *errorEvent
	return (errors.As(err, &conn) && !mistrusted(err)) || errors.As(err, &ev) || (errors.As(err, &api) && api.Status >= 500)
}

// mistrusted tells whether err is a connection to an https address that every retry
// would fail the same way: the address answers plain HTTP (http.ErrSchemeMismatch), or
// its certificate is one the client does not trust (another CA, another name: give
// WithHTTPClient a client that trusts it). An expired certificate is not: the daemon
// takes a renewed one on SIGHUP, and the subscription then resumes.
func mistrusted(err error) bool {
	if errors.Is(err, http.ErrSchemeMismatch) {
		return true
	}
	var verify *tls.CertificateVerificationError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) && !(errors.As(err, &invalid) && invalid.Reason == x509.Expired)
}

// errorEvent is an SSE error event, with which the daemon ends a subscription: too_slow
// for a subscriber that fell too far behind, corrupt at a damaged record, unavailable
// while it stops, unauthorized or forbidden when a reload of its tokens revoked the
// subscription's token (the reconnect is refused, ending it).
type errorEvent struct {
	id  string // the event's SSE id: the damaged record's for corrupt, else empty
	err *Error
}

func (e *errorEvent) Error() string { return "the daemon ended the subscription: " + e.err.Error() }

func (e *errorEvent) Unwrap() error { return e.err }

// damaged is the *pmd.CorruptError of a corrupt error event with an id, as the store's
// Subscribe gives it: the id is the record's version when following one stream, its
// position otherwise; the event's position field names a stream's record's position
// (a daemon older than that field names it only in the message).
func damaged(ev *errorEvent, stream string) error {
	n, err := strconv.ParseUint(ev.id, 10, 64)
	if err != nil {
		return fmt.Errorf("client: the daemon's corrupt error event has id %q, not a number: %w", ev.id, ev.err)
	}
	ce := &pmd.CorruptError{Position: n, Cause: ev.err}
	if stream != "" && stream != pmd.All {
		ce.Stream, ce.Version, ce.Position = stream, n, ev.err.Position
		if ce.Position == 0 {
			fmt.Sscanf(ev.err.Message, "damaged record at position %d", &ce.Position)
		}
	}
	// The message starts as ce's own text does: keep what follows, so that ce's
	// text is the daemon's message once.
	prefix := (&pmd.CorruptError{Position: ce.Position, Stream: ce.Stream, Version: ce.Version, Cause: errors.New("")}).Error()
	if rest, ok := strings.CutPrefix(ev.err.Message, prefix); ok {
		cause := *ev.err
		cause.Message = rest
		ce.Cause = &cause
	}
	return ce
}

// sse is one subscription across its connections.
type sse struct {
	c       *Client
	path    string
	yield   func(Event, error) bool
	lastID  string // the SSE id of the last event yielded, sent as Last-Event-ID
	stopped bool   // the caller broke out of the loop
}

// connect reads one connection until it ends, yielding its events, and returns why it
// ended: nil only when the caller stopped the loop, since a subscription never ends by
// itself.
func (s *sse) connect(ctx context.Context) error {
	// The connection ends when nothing comes on it for the idle timeout: its answer,
	// then each byte that arrives (of an event or a heartbeat; a long event's line
	// arrives over many reads) sets the timer again.
	conn, cancel := context.WithCancel(ctx)
	defer cancel()
	var silent atomic.Bool
	timer := time.AfterFunc(s.c.idle, func() {
		silent.Store(true)
		cancel()
	})
	defer timer.Stop()
	// broken is why a connection that failed with err ended: ctx's end, the silence, or
	// err itself.
	broken := func(err error) error {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case silent.Load():
			return &ConnectionError{URL: s.c.base, Err: fmt.Errorf("nothing came for %s, not even a heartbeat", s.c.idle)}
		}
		return err
	}
	req, err := s.c.request(conn, "GET", s.path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	resp, err := s.c.send(req)
	if err != nil {
		return broken(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return apiError(resp, raw)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return notEvents(resp)
	}
	lines := &lineReader{rd: bufio.NewReaderSize(&arriving{r: resp.Body, timer: timer, idle: s.c.idle}, 64<<10), max: s.c.maxEvent}
	var id, kind string
	var data []byte
	for {
		// An event is one data line, its JSON, which the daemon's body limit does not
		// bound (six bytes for each "<" or control character taken): WithMaxEventSize
		// does, so that an answer that is not the daemon's events cannot grow without
		// end. A line over it would fail every reconnect at it: it ends the
		// subscription.
		line, owned, err := lines.next()
		if err != nil {
			var big *eventSizeError
			if errors.As(err, &big) {
				return err
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // a subscription never ends by itself
			}
			return broken(&ConnectionError{URL: s.c.base, Err: err})
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "": // a blank line ends an event; a line starting with ':' is a comment
			if len(line) > 0 {
				continue
			}
			if kind == "error" {
				return &errorEvent{id: id, err: sseError(data)}
			}
			if data != nil && (kind == "" || kind == "message") {
				var ev Event
				if err := decode(data, &ev); err != nil {
					return err
				}
				if err := ev.numbers(); err != nil {
					return err
				}
				timer.Stop() // the caller's time is not the connection's silence
				if !s.yield(ev, nil) {
					s.stopped = true
					return nil
				}
				timer.Reset(s.c.idle)
				if id != "" {
					s.lastID = id
				}
			}
			id, kind, data = "", "", nil
		case "id":
			id = string(value)
		case "event":
			kind = string(value)
		case "data":
			switch {
			case data == nil && len(value) > s.c.maxEvent:
				// next allows a line "data: " and max bytes: one "data:" without the
				// space holds a byte more.
				return &eventSizeError{max: s.c.maxEvent, what: "an event's data lines"}
			case data == nil && owned && len(value) > 0:
				data = value // a long line's own slice: no copy
			case data != nil && len(value) >= s.c.maxEvent-len(data):
				return &eventSizeError{max: s.c.maxEvent, what: "an event's data lines"}
			default:
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, value...)
			}
		}
	}
}

// notEvents is the error of a subscription answered with a 200 that is not an event
// stream: a proxy's page, or another server at the address. Read as one, its lines
// would be none the client knows, and at its end the subscription would reconnect to it
// forever.
func notEvents(resp *http.Response) *Error {
	what := "no Content-Type"
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		what = fmt.Sprintf("Content-Type %q", ct)
	}
	return &Error{
		Status: resp.StatusCode,
		Code:   "not_an_event_stream",
		Message: fmt.Sprintf("GET %s answered %s with %s, not text/event-stream: the address may not be a pmd daemon's",
			resp.Request.URL.EscapedPath(), resp.Status, what),
	}
}

// eventSizeError is a line or an event of a subscription over WithMaxEventSize.
type eventSizeError struct {
	max  int
	what string
}

func (e *eventSizeError) Error() string {
	return fmt.Sprintf("client: the subscription's answer has %s of over %d bytes, the limit WithMaxEventSize sets: an event larger than that, or an answer that is not the daemon's events", e.what, e.max)
}

// lineReader reads the lines of an event stream, none longer than a data line of max
// bytes ("data: " and its value).
type lineReader struct {
	rd  *bufio.Reader
	max int
}

// next returns the next line without its end ("\n" or "\r\n"). A line that fits in rd's
// buffer is returned in it, valid until the next call (owned is false); a longer one in
// a slice of its own, which next grows by doubling, so that its bytes are copied about
// twice. A line over a data line of max bytes is an *eventSizeError, read no further
// than that.
func (l *lineReader) next() (line []byte, owned bool, err error) {
	line, err = l.rd.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		line, err = l.gather(line)
		owned = true
	}
	if err != nil {
		return nil, false, err
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line)-len("data: ") > l.max {
		return nil, false, &eventSizeError{max: l.max, what: "a line"}
	}
	return line, owned, nil
}

// gather reads the rest of a line longer than rd's buffer, whose first bytes are chunk.
func (l *lineReader) gather(chunk []byte) ([]byte, error) {
	limit := l.max + len("data: \r\n")
	if limit < l.max {
		limit = math.MaxInt
	}
	var line []byte
	for more := true; ; {
		if len(chunk) > limit-len(line) {
			return nil, &eventSizeError{max: l.max, what: "a line"}
		}
		if cap(line)-len(line) < len(chunk) {
			grown := make([]byte, len(line), min(max(2*cap(line), len(line)+len(chunk)), limit))
			copy(grown, line)
			line = grown
		}
		line = append(line, chunk...)
		if !more {
			return line, nil
		}
		var err error
		chunk, err = l.rd.ReadSlice('\n')
		if more = err == bufio.ErrBufferFull; err != nil && !more {
			return nil, err
		}
	}
}

// arriving passes reads on, setting timer to idle again whenever bytes arrive.
type arriving struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (a *arriving) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.timer.Reset(a.idle)
	}
	return n, err
}

// sseError reads the data of an SSE error event, the daemon's error JSON, as an *Error
// with no Status (the response's was 200); data that is not that is kept as the
// message, with the code "unknown".
func sseError(data []byte) *Error {
	if e := decodeError(data); e != nil {
		return e
	}
	return &Error{Code: "unknown", Message: string(data)}
}
