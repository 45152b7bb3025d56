package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// Client talks to one pmd daemon. It is safe for concurrent use.
type Client struct {
	base        string // scheme://host:port[/path], without a trailing slash
	http        *http.Client
	token       string
	reconnect   time.Duration
	idle        time.Duration
	maxEvent    int
	leaderReads bool
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as "Authorization: Bearer <token>" with every request, for a
// daemon started with --auth. An empty token sends none; New refuses one holding a
// control character (a newline), which no header can carry.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sends the requests through hc, for instance one that trusts a private
// CA for an https daemon. It should have no overall Timeout: subscriptions last as long
// as their context. The default is a copy of http.DefaultTransport, shared by the
// Clients made without WithHTTPClient unless the program set it to a transport of its
// own, which keeps an idle connection to each daemon for each of up to 256 concurrent
// callers (see the package documentation, Connections).
// The client uses a copy of hc that follows no redirects: the API answers none, so a
// 3xx fails with an *Error naming it.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithReconnectDelay sets how long a subscription waits before it reconnects after
// losing its connection; the default is one second, the pause the daemon asks for.
func WithReconnectDelay(d time.Duration) Option { return func(c *Client) { c.reconnect = d } }

// WithIdleTimeout sets how long a subscription waits on a connection on which nothing
// comes, not even the comment the daemon sends every 15 s while it has no event, before
// it drops the connection and makes it again (telling Dropped); the default is one
// minute. The silence is of a hung daemon, or of a follower relaying a leader-read
// subscription from a leader that hung while another took over; a dead daemon's
// connection breaks by itself. The caller's loop body does not count.
func WithIdleTimeout(d time.Duration) Option { return func(c *Client) { c.idle = d } }

// WithMaxEventSize sets the largest event a subscription takes, in bytes of its JSON
// (and the longest line of its answer). An event over it ends the subscription with an
// error naming this option, as a reconnect would fail at the same event again; the
// limit keeps an answer that is not the daemon's events (another server at the address,
// a proxy's) from growing the subscription's memory without end. The default, 128 MiB,
// holds any event of a daemon with the default --max-body, 16 MiB: its JSON is at most
// six times the body taken (json escapes "<" and control characters as \u003c). Raise
// it for a daemon with a larger --max-body.
func WithMaxEventSize(n int) Option { return func(c *Client) { c.maxEvent = n } }

// WithLeaderReads sends every read of the store (GET) with ?consistency=leader: on a
// node of a cluster it is answered by the leader, after a round to a quorum, so it sees
// every write acknowledged through any node. Without it a node answers from its own
// copy, which holds every write acknowledged through that node. A single node answers
// the same either way. Health, Metrics, Stats, Cluster, Routes and OpenAPI are still
// answered by the node asked: they describe it. Reads that need it and reads that do
// not can use two Clients.
func WithLeaderReads() Option { return func(c *Client) { c.leaderReads = true } }

// New returns a Client of the daemon at addr: "host:port" (http is assumed) or an
// http or https URL, optionally with a path prefix if a proxy serves pmd under one. A
// port without a host (":7070", as pmd serve --addr takes it for every interface) is
// this machine: 127.0.0.1. An address holding user information (https://TOKEN@host)
// is refused, and New's errors never print it: a token goes with WithToken. Clients
// made without WithHTTPClient while http.DefaultTransport is the same share their
// connections (see the package documentation, Connections): make one per daemon and
// share it, or one per call.
func New(addr string, opts ...Option) (*Client, error) {
	raw := strings.TrimSpace(addr)
	if raw == "" {
		return nil, errors.New("client: the daemon's address is empty")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		// Shown without it: a token put there (https://TOKEN@host) would be printed
		// with the error, into a terminal or a log.
		u.User = nil
		return nil, fmt.Errorf("client: address %q with user information (user@ or user:password@, hidden here): the address takes scheme, host, port and path only; give a token with WithToken", u.String())
	}
	if hidden, ok := withoutUserinfo(raw); err != nil && ok {
		// url.Parse's error quotes the address whole, and pieces of it (a port, an
		// escape) that may be pieces of a token: the one shown is that of the address
		// without what comes before its last "@", or none if that parses.
		msg := fmt.Sprintf("client: address %q (hidden here up to its last @, which may end user information, user@ or user:password@: the address takes scheme, host, port and path only; give a token with WithToken)", hidden)
		if _, err := url.Parse(hidden); err != nil {
			return nil, fmt.Errorf("%s is neither host:port nor a URL: %w", msg, err)
		}
		return nil, errors.New(msg + " is not a URL: what comes before its last @ is not valid there")
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("client: address %q is neither host:port nor a URL: %w", addr, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("client: address %q: the scheme must be http or https, not %q", addr, u.Scheme)
	case u.Hostname() == "" && u.Port() == "":
		return nil, fmt.Errorf("client: address %q names no host", addr)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("client: address %q: only scheme, host, port and path are allowed", addr)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("client: address %q: the port must be 1 to 65535, not %s", addr, p)
		}
	}
	if u.Hostname() == "" {
		// Sent as it is, the Host header would be ":7070", which the daemon refuses.
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
	}
	c := &Client{base: strings.TrimSuffix(u.String(), "/"), http: &http.Client{Transport: defaultTransport()}, reconnect: time.Second, idle: time.Minute, maxEvent: 128 << 20}
	for _, o := range opts {
		o(c)
	}
	if c.reconnect <= 0 {
		return nil, fmt.Errorf("client: the reconnect delay must be positive, got %s", c.reconnect)
	}
	if c.idle <= 0 {
		return nil, fmt.Errorf("client: the idle timeout must be positive, got %s", c.idle)
	}
	if c.maxEvent <= 0 {
		return nil, fmt.Errorf("client: WithMaxEventSize: the event size must be positive, got %d", c.maxEvent)
	}
	if c.http == nil {
		return nil, errors.New("client: WithHTTPClient was given a nil *http.Client")
	}
	// net/http refuses such a header value at every request, before it reaches the
	// daemon: each would fail as a *ConnectionError, and a subscription retry it forever.
	if i := strings.IndexFunc(c.token, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }); i >= 0 {
		return nil, fmt.Errorf("client: WithToken: the token holds the control character %q at byte %d, which no Authorization header can carry (a token read from a file may end with a newline)", c.token[i], i)
	}
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	return c, nil
}

// withoutUserinfo returns raw, an address with its scheme that url.Parse refused,
// without everything from its "://" up to its last "@" (from its start if the "@"
// comes first), and whether it had an "@". That takes away any user information, and
// a token holding a "/", "?" or "#" whole, which url.Parse would have cut in two and
// read a piece of as a host or port; it may take away more (an "@" in a path), never
// less, as it reads the text, which is no URL.
func withoutUserinfo(raw string) (string, bool) {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw, false
	}
	scheme := ""
	if i := strings.Index(raw, "://"); i >= 0 && i+len("://") <= at {
		scheme = raw[:i+len("://")]
	}
	return scheme + raw[at+1:], true
}

// stdTransport is http.DefaultTransport as it was when the package was initialised:
// the standard library's own transport, unless a package initialised before this one
// had replaced it (nil if with a RoundTripper that is not an *http.Transport). pooled
// is its copy, made at the first New that finds http.DefaultTransport still
// stdTransport, which every such Client shares. Neither changes once set: they are the
// standard library's own pattern for a shared transport (http.DefaultTransport), not
// state that changes as the program runs.
var (
	stdTransport, _ = http.DefaultTransport.(*http.Transport)
	pooled          = sync.OnceValue(func() *http.Transport { return pooledCopy(stdTransport) })
)

// programPooled holds, for each other *http.Transport that New has found as
// http.DefaultTransport, the pooled copy of it that every Client made from it shares
// (*http.Transport to *http.Transport), as pooled does for stdTransport: with a copy
// per Client, a program making a Client per call left a connection open per Client,
// never closed if its transport has no IdleConnTimeout. It is a cache of values
// derived from its keys, not state the program's behaviour depends on: an entry is
// added once, never replaced or removed, and a copy made for a key is the same
// whichever New made it (LoadOrStore keeps the first when two race), so no Client sees
// a different transport for the same program transport. It keeps each such transport
// alive for as long as the program runs; a program sets http.DefaultTransport once or
// a few times, not per call.
var programPooled sync.Map

// pooledCopy is a copy of t that keeps an idle connection to each daemon for each of up
// to 256 concurrent callers.
func pooledCopy(t *http.Transport) *http.Transport {
	t = t.Clone()
	// http.DefaultTransport keeps two idle connections per host: beyond two concurrent
	// callers, each answer would close its connection and the next call dial again. No
	// cap over all daemons (MaxIdleConns, 100 in http.DefaultTransport), which would
	// close those beyond it however few each daemon has: a program talking to a cluster
	// has a Client per node.
	t.MaxIdleConnsPerHost = 256
	t.MaxIdleConns = 0
	return t
}

// defaultTransport is the transport of a Client made without WithHTTPClient, decided
// from http.DefaultTransport at New (see the package documentation, Connections):
// pooled while it is still stdTransport; the pooled copy in programPooled if the
// program set it to another *http.Transport (in its main, or an init, which runs after
// this package's when it imports it), so that such a Client keeps the program's
// settings without the two idle connections per daemon of an *http.Transport that
// leaves MaxIdleConnsPerHost unset, and shares its connections with the other Clients
// made from that transport; and any other RoundTripper (a mock, a tracing wrapper) as
// it is.
func defaultTransport() http.RoundTripper {
	rt := http.DefaultTransport
	t, ok := rt.(*http.Transport)
	switch {
	case !ok || t == nil:
		return rt
	case t == stdTransport:
		return pooled()
	}
	if p, ok := programPooled.Load(t); ok {
		return p.(*http.Transport)
	}
	p, _ := programPooled.LoadOrStore(t, pooledCopy(t))
	return p.(*http.Transport)
}

// CloseIdleConnections closes the connections of the Client that are kept for the next
// calls and carry none now (see http.Client.CloseIdleConnections). Of Clients that
// share their connections (see the package documentation, Connections), it closes the
// idle ones of them all.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// URL is the daemon's base URL, e.g. http://127.0.0.1:7070.
func (c *Client) URL() string { return c.base }

// Sentinel errors for API error codes that have no counterpart in the root package.
var (
	ErrNotFound        = errors.New("not found")
	ErrPayloadTooLarge = errors.New("payload too large")
	ErrUnauthorized    = errors.New("unauthorized")
	ErrForbidden       = errors.New("forbidden")
	// ErrConflict: a retry or skip of a command that is being delivered, waits behind
	// an earlier command of its process, or whose manager delivers no commands; or a
	// JoinNode of a node whose pmd is too old for the cluster's Raft log.
	ErrConflict = errors.New("conflict")
	// ErrTooSlow: the daemon cut a subscriber that let too many live events pile up
	// (SSE error event too_slow). Subscribe resumes by itself; Dropped is told.
	ErrTooSlow = errors.New("too slow")
)

// Error is an error answered by the daemon.
type Error struct {
	Status  int    // the HTTP status, e.g. 409; 0 for an SSE error event of a subscription
	Code    string // the API's error code, e.g. wrong_expected_version
	Message string // what the daemon said, naming the stream, event or field

	// Position names the damaged record of a corrupt error (0 in any other), and
	// Version its version when the read followed one stream.
	Position, Version uint64
	// NeedsRestart marks an unavailable error of a store that stopped writing until it
	// is restarted: errors.Is(err, pmd.ErrNeedsRestart) holds, as for the store's own.
	NeedsRestart bool

	// typed is the store's typed error of Code, made of the fields the daemon's answer
	// carries beside code and message (typedError); nil when it carries none.
	typed error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// As makes errors.As find, beside e itself, the embedded store's typed error of e's
// code, with the fields the daemon named: *pmd.WrongExpectedVersionError (Stream,
// Expected, Actual), *pmd.DuplicateEventError (ID, Stream), *pmd.EventNotFoundError
// (ID), *pmd.StreamNotFoundError (Stream), *pmd.CorruptError (Position, and Stream and
// Version for a read of one stream) and, for a bad_request the store refused,
// *pmd.InvalidArgumentError (Arg, Reason). An answer without those fields (a daemon
// older than them, a bad request of the daemon's own parsing) gives none: errors.Is
// still matches the sentinel.
func (e *Error) As(target any) bool {
	return e.typed != nil && errors.As(e.typed, target)
}

// Is makes errors.Is match e against the sentinel of its code (see the package
// documentation), so that code written against the embedded store's errors works with
// the client's too.
func (e *Error) Is(target error) bool {
	if e.NeedsRestart && target == pmd.ErrNeedsRestart {
		return true
	}
	s := sentinel(e.Code)
	return s != nil && s == target
}

func sentinel(code string) error {
	switch code {
	case "wrong_expected_version":
		return pmd.ErrWrongExpectedVersion
	case "duplicate_event":
		return pmd.ErrDuplicateEvent
	case "stream_not_found":
		return pmd.ErrStreamNotFound
	case "event_not_found":
		return pmd.ErrEventNotFound
	case "bad_request":
		return pmd.ErrInvalidArgument
	case "unavailable":
		return pmd.ErrUnavailable
	case "corrupt":
		return pmd.ErrCorrupt
	case "not_found":
		return ErrNotFound
	case "payload_too_large":
		return ErrPayloadTooLarge
	case "unauthorized":
		return ErrUnauthorized
	case "forbidden":
		return ErrForbidden
	case "conflict":
		return ErrConflict
	case "too_slow":
		return ErrTooSlow
	}
	return nil
}

// ConnectionError is a request that got no answer: the daemon is not running at the
// address, or the connection broke before the answer was read.
type ConnectionError struct {
	URL string // the daemon's base URL
	Err error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("cannot reach pmd at %s: %v", e.URL, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// segment escapes s as one segment of a URL path: url.PathEscape, and a "." or ".."
// with its dots escaped, as %2E, since a URL takes a bare "." or ".." for a move
// within the path: the daemon would refuse /v1/processes/Ship/.. with 404 not_found
// naming the clean path, /v1/processes, instead of reading the process "..".
// The daemon decodes %2E%2E back into "..", the name or id asked for. Every name or
// id the client puts into a path goes through segment.
func segment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

// nodeRoutes answer about the node asked, not the store: WithLeaderReads leaves them to
// that node, which would hand them to the leader with consistency=leader (its health,
// metrics and cluster view for the node's, and an error while there is no leader).
var nodeRoutes = []string{"/healthz", "/metrics", "/v1/stats", "/v1/cluster", "/v1/", "/v1/openapi.json"}

// request builds a request of path (which starts with /) with the token set.
func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		// Without HTML escaping: json.Marshal writes each <, > and & as six bytes
		// (\u003c), which no daemon needs, so that an event holding HTML was refused as
		// over --max-body at a sixth of the size the store, or a body sent as written,
		// takes.
		var data bytes.Buffer
		enc := json.NewEncoder(&data)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			return nil, fmt.Errorf("client: encode the request: %w", err)
		}
		rd = &data
	}
	if route, _, _ := strings.Cut(path, "?"); c.leaderReads && method == http.MethodGet && !slices.Contains(nodeRoutes, route) {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "consistency=leader"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// send sends req. A request that got no answer fails with a *ConnectionError, or with
// its context's error when the context is why.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &ConnectionError{URL: c.base, Err: err}
	}
	return resp, nil
}

// answer reads and closes the body of resp. A body cut short fails with a
// *ConnectionError, or with the context's error when the context is why.
func (c *Client) answer(ctx context.Context, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		req := resp.Request
		return nil, &ConnectionError{URL: c.base, Err: fmt.Errorf("read the answer to %s %s: %w", req.Method, req.URL.Path, err)}
	}
	return raw, nil
}

// apiError reads the error JSON of a failed answer; an answer that is not one (a
// proxy's page) keeps its status and text. A redirect names where it pointed: the API
// answers none (a path the daemon's router had to clean, or a proxy in front of it),
// and the client follows none.
func apiError(resp *http.Response, body []byte) *Error {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		to := resp.Header.Get("Location")
		if to == "" {
			to = "nowhere"
		}
		return &Error{
			Status: resp.StatusCode,
			Code:   strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_")),
			Message: fmt.Sprintf("%s %s answered %s to %s: the pmd API answers no redirects, and none is followed",
				resp.Request.Method, resp.Request.URL.EscapedPath(), resp.Status, to),
		}
	}
	if e := decodeError(body); e != nil {
		e.Status = resp.StatusCode
		return e
	}
	e := &Error{Status: resp.StatusCode}
	e.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
	e.Message = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	return e
}

// decodeError reads the daemon's error JSON, {"error": code, "message": ..., for
// corrupt "position" and "version", for unavailable "needs_restart", and the fields of
// the store's typed error (typedError)}, or returns nil if data is not that.
func decodeError(data []byte) *Error {
	var b struct {
		Error        string `json:"error"`
		Message      string `json:"message"`
		Position     uint64 `json:"position"`
		Version      uint64 `json:"version"`
		NeedsRestart bool   `json:"needs_restart"`
	}
	if json.Unmarshal(data, &b) != nil || b.Error == "" {
		return nil
	}
	return &Error{Code: b.Error, Message: b.Message, Position: b.Position, Version: b.Version, NeedsRestart: b.NeedsRestart,
		typed: typedError(b.Error, data)}
}

// typedError is the store's typed error of code made of the fields of the daemon's
// error JSON data: "stream", "expected_version" and "actual_version" of
// wrong_expected_version, "id" and "stream" of duplicate_event, "id" of
// event_not_found, "stream" of stream_not_found, "argument" and "reason" of
// bad_request. It is nil when a field is missing or malformed (a daemon older than the
// fields, a bad request the daemon's parsing refused, not the store): a typed error
// with a zero field would pretend to know it. They are read apart from the code and
// message, which a malformed field does not lose.
func typedError(code string, data []byte) error {
	var f struct {
		Stream          *string              `json:"stream"`
		ExpectedVersion *pmd.ExpectedVersion `json:"expected_version"`
		ActualVersion   *int64               `json:"actual_version"`
		ID              *string              `json:"id"`
		Argument        *string              `json:"argument"`
		Reason          *string              `json:"reason"`
		Message         string               `json:"message"`
		Position        uint64               `json:"position"`
		Version         uint64               `json:"version"`
	}
	if json.Unmarshal(data, &f) != nil {
		return nil
	}
	id := func() (uuid.UUID, bool) {
		if f.ID == nil || len(*f.ID) != 36 {
			return uuid.Nil, false
		}
		id, err := uuid.Parse(*f.ID)
		return id, err == nil
	}
	switch code {
	case "wrong_expected_version":
		if f.Stream == nil || f.ExpectedVersion == nil || f.ActualVersion == nil || *f.ActualVersion < -1 {
			return nil
		}
		return &pmd.WrongExpectedVersionError{Stream: *f.Stream, Expected: *f.ExpectedVersion, Actual: *f.ActualVersion}
	case "duplicate_event":
		if id, ok := id(); ok && f.Stream != nil {
			return &pmd.DuplicateEventError{ID: id, Stream: *f.Stream}
		}
	case "event_not_found":
		if id, ok := id(); ok {
			return &pmd.EventNotFoundError{ID: id}
		}
	case "stream_not_found":
		if f.Stream != nil {
			return &pmd.StreamNotFoundError{Stream: *f.Stream}
		}
	case "bad_request":
		if f.Argument != nil && f.Reason != nil {
			return &pmd.InvalidArgumentError{Arg: *f.Argument, Reason: *f.Reason}
		}
	case "corrupt":
		if f.Position > 0 {
			ce := &pmd.CorruptError{Position: f.Position}
			if f.Stream != nil {
				ce.Stream, ce.Version = *f.Stream, f.Version
			}
			// The message starts as ce's own text does: its cause is what follows,
			// so that ce's text is the daemon's message.
			prefix := (&pmd.CorruptError{Position: ce.Position, Stream: ce.Stream, Version: ce.Version, Cause: errors.New("")}).Error()
			rest, ok := strings.CutPrefix(f.Message, prefix)
			if !ok {
				rest = f.Message
			}
			ce.Cause = errors.New(rest)
			return ce
		}
	}
	return nil
}

// do sends a request and decodes its JSON answer into out, if out is not nil.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	raw, err := c.answer(ctx, resp)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return apiError(resp, raw)
	}
	if out == nil {
		return nil
	}
	return decode(raw, out)
}

// decode decodes one JSON answer, keeping numbers as json.Number so that event data
// can be given back exactly (see numbers).
func decode(raw []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("client: the daemon's answer is not the JSON expected: %w", err)
	}
	return nil
}
