package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Node is the cluster node a server runs on (Options.Node; nil for a single node): what
// the server needs to send writes to the leader and to read linearizably.
type Node interface {
	// IsLeader reports whether this node leads and takes writes.
	IsLeader() bool
	// LeaderHTTP returns the leader's HTTP address, waiting up to wait for a leader.
	LeaderHTTP(ctx context.Context, wait time.Duration) (string, error)
	// LeaderKnown reports at once, without waiting or asking another node, whether this
	// node knows a leader that takes writes: nil, or why not (/healthz's degraded).
	LeaderKnown() error
	// AppliedIndex is the last Raft index this node applied.
	AppliedIndex() uint64
	// WaitApplied returns once this node applied the Raft entry at index.
	WaitApplied(ctx context.Context, index uint64) error
	// ReadBarrier returns once the leader has applied every entry committed before.
	ReadBarrier(ctx context.Context) error
	// Join and Remove change the cluster's members, through the leader. A change the
	// cluster refuses as it stands (a join of a node whose pmd applies older rules than
	// the entries it would replay, or that does not answer as id, or that would replace
	// the leader; the removal of the last voter, or of a voter when too few of the voters
	// left answer to make a quorum) fails with an error matching
	// ErrConflict: 409 conflict; the removal of an id that is no member, ErrNotFound:
	// 404 not_found; any other error is 503 unavailable.
	Join(ctx context.Context, id, raftAddr string) error
	Remove(ctx context.Context, id string) error
	// Problems lists what keeps the node from serving as a member (it was removed):
	// /healthz says degraded while there are any.
	Problems() []string
}

const (
	// headerApplied, on every successful answer a cluster node gives itself (not on
	// errors, nor on a follower's relay of the leader's answer), is the last Raft index
	// the node had applied when it answered: a follower that forwarded a write waits
	// until it has applied as much, so that its own reads then hold the write.
	headerApplied = "Pmd-Applied-Index"
	// headerForwarded marks a request a node forwarded to the leader: the receiver
	// answers it itself, never forwarding it again.
	headerForwarded = "Pmd-Forwarded-By"
	// leaderWait bounds the wait for a leader before a request that needs one is
	// answered 503 unavailable.
	leaderWait = 3 * time.Second
)

// consistency takes the consistency query parameter out of r (checkQuery knows nothing
// of it) and reports whether it asks for the leader. Only its own pairs are cut from the
// raw query: the others stay as sent, so that checkQuery still sees a malformed pair or a
// parameter given twice, which re-encoding the parsed query would drop or merge.
func consistency(r *http.Request) (leader bool, err error) {
	var kept, values []string
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(k); err != nil || key != "consistency" {
			kept = append(kept, pair)
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return false, errBadRequest("malformed query string: consistency=%s: %v", v, err)
		}
		values = append(values, val)
	}
	if values == nil {
		return false, nil
	}
	r.URL.RawQuery = strings.Join(kept, "&")
	switch {
	case len(values) != 1:
		return false, errBadRequest("query parameter consistency is given %d times: give it once", len(values))
	case values[0] == "leader":
		return true, nil
	case values[0] == "local":
		return false, nil
	}
	return false, errBadRequest("consistency must be leader or local, got %q", values[0])
}

// needsLeader reports whether rt must be answered by the leader: writes, and the
// process managers and subscriptions, which run there.
func needsLeader(rt route) bool {
	switch {
	case rt.path == "/v1/admin/scavenge", strings.HasPrefix(rt.path, "/v1/cluster"):
		return false // each node scavenges its own disk; membership goes to the leader itself
	case rt.method != http.MethodGet && rt.method != http.MethodHead:
		return true
	}
	return strings.HasPrefix(rt.path, "/v1/processes") || strings.HasPrefix(rt.path, "/v1/subscriptions")
}

// serveRoute runs rt's handler; on a cluster node, on the leader or forwarded to it,
// but a local route (the fallbacks) on the node asked. A single node is its own
// leader: ?consistency=leader changes nothing there.
func (s *Server) serveRoute(rt route, w *statusRecorder, r *http.Request, leaderRead bool) error {
	node := s.opts.Node
	if node == nil || rt.local {
		return rt.h(w, r)
	}
	aw := &appliedWriter{statusRecorder: w, node: node}
	if !leaderRead && !needsLeader(rt) {
		// A read of this node's copy holds every write acknowledged through this node.
		if floor := s.readFloor.Load(); floor > node.AppliedIndex() {
			if err := node.WaitApplied(r.Context(), floor); err != nil {
				return errUnavailable("this node has not yet applied the writes it acknowledged: " + err.Error())
			}
		}
		return rt.h(aw, r)
	}
	if node.IsLeader() {
		if leaderRead {
			if err := node.ReadBarrier(r.Context()); err != nil {
				return errUnavailable("consistency=leader: " + err.Error())
			}
		}
		return rt.h(aw, r)
	}
	if by := r.Header.Get(headerForwarded); by != "" {
		return errUnavailable("this node is not the leader (any more) for a request forwarded by " + by)
	}
	return s.forward(w, r, rt.long, leaderRead)
}

// forward sends r to the leader (sendToLeader) and relays its answer. A successful answer
// raises the read floor to what the leader had applied: this node's own reads wait until
// it has applied as much, so that a write acknowledged through this node is in its copy,
// while the writer does not wait for the commit to reach this node (which learns it with
// the leader's next message, up to a tenth of the heartbeat timeout later).
func (s *Server) forward(w *statusRecorder, r *http.Request, long, leaderRead bool) error {
	ctx := r.Context()
	var out *longResponse
	if long {
		// A relayed subscription ends when this node stops, as its own do.
		var end func()
		ctx, out, end = s.whileServing(ctx, w)
		defer end()
	}
	resp, err := s.sendToLeader(ctx, r, leaderRead)
	if err != nil {
		if ctx.Err() != nil && s.isStopping() {
			// The wait for a leader, or the forward, ended with this node's stop: a
			// refusal, not a failure.
			return errShutdown("the server is shutting down")
		}
		return err // the client's going (ctx.Err(): nobody failed), or a 503
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		if idx, err := strconv.ParseUint(resp.Header.Get(headerApplied), 10, 64); err == nil {
			for {
				floor := s.readFloor.Load()
				if idx <= floor || s.readFloor.CompareAndSwap(floor, idx) {
					break
				}
			}
		}
	}
	for k, v := range resp.Header {
		if k != headerApplied {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	if long {
		out.started()
		// Under a write deadline, as this node's own subscriptions: a client that
		// stops reading would hold the relay, and its connections to the client and
		// to the leader, for ever. However the leader's event stream ends, the client
		// is told why with an error event, as by this node's own subscriptions (see
		// endRelay), unless the leader told it already.
		buf := make([]byte, 32<<10)
		events := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
		tail := relayTail{prevID: r.Header.Get("Last-Event-ID")}
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				if werr := out.write(buf[:n]); werr != nil {
					if events && errors.As(werr, new(*shutdownError)) {
						out.stoppedAfter(tail.cut()) // buf[:n] was not written
					}
					return nil
				}
				if events {
					tail.feed(buf[:n])
				}
			}
			if err != nil {
				if events {
					s.endRelay(ctx, r, out, &tail, err)
				}
				return nil
			}
		}
	}
	if _, err := io.Copy(w, resp.Body); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("forwarding a response cut short", "err", err)
	}
	return nil
}

// relayEnded is the message of the error event that ends a relayed subscription whose
// leader's stream ended without one: the leader stopped, was killed or was cut off.
const relayEnded = "the leader's stream of this subscription ended: reconnect with Last-Event-ID, to this node or another"

// endRelay ends a relayed event stream whose leader's answer ended, at err, with the
// error event that says why, as this node's own subscriptions end: the reload of this
// node's tokens no longer allows it (whileAuthorized), this node stops, or the
// leader's stream ended, which would otherwise look to the client as a stream cut off
// or, on a connection that stays open for a while, one with nothing to send. A stream
// the leader ended with an error event of its own (shutting down, too_slow) was told
// why already, and a client that went has nobody to tell. A message of the leader's
// cut short is ended first (relayTail.cut) so that its client takes the error event
// whole and no part of that message as an event.
func (s *Server) endRelay(ctx context.Context, r *http.Request, out *longResponse, tail *relayTail, err error) {
	if rv := revoked(ctx); rv != nil {
		_, code := classify(rv)
		_ = out.write(tail.cut(), errorFrame("", newErrorBody(code, rv.Error(), rv)))
		return
	}
	if s.isStopping() {
		out.stoppedAfter(tail.cut())
		return
	}
	if r.Context().Err() != nil || tail.endedByLeader() {
		return
	}
	s.log.Debug("a relayed subscription's stream from the leader ended", "err", err, "inside_a_message", tail.inside())
	_ = out.write(tail.cut(), errorFrame("", errorBody{Error: codeUnavailable, Message: relayEnded}))
}

// relayTail follows the event stream a relay passes on, line by line, so that the relay
// can end it where the leader's stream broke off, inside a message or a line, with an
// error event its client reads whole: without it, the event would end up in the
// message cut short, and a browser would dispatch that message, its data cut short,
// taking its id as the last event received (a reconnect would skip the event). It keeps
// the first bytes of each line only, enough for an id or an event type: a data line
// may be many megabytes.
type relayTail struct {
	prevID     string // the SSE id of the last message passed on whole, or the client's Last-Event-ID
	id         string // the id of the message under way
	hasID      bool   // the message under way has an id line
	errorEvent bool   // the message under way is an error event
	lastError  bool   // the last message passed on whole was an error event
	inMessage  bool   // lines of a message not yet ended were passed on
	line       []byte // the first bytes of the line under way
	lineLen    int    // its length so far
}

// relayLineHead bounds relayTail.line: a pmd id is at most 20 digits.
const relayLineHead = 64

// relayCutType is the event type of a message a relay ends cut short: no client takes
// it as an event (EventSource's onmessage takes "message", the Go client its data of
// no type or "message", and neither listens for this one).
const relayCutType = "incomplete"

// feed takes b, passed on to the client.
func (t *relayTail) feed(b []byte) {
	for len(b) > 0 {
		part, rest, ended := bytes.Cut(b, []byte{'\n'})
		if room := relayLineHead - len(t.line); room > 0 {
			t.line = append(t.line, part[:min(len(part), room)]...)
		}
		t.lineLen += len(part)
		if !ended {
			return
		}
		t.endLine()
		b = rest
	}
}

// endLine takes the line under way, now ended.
func (t *relayTail) endLine() {
	if t.lineLen == 0 { // a blank line ends a message
		if t.inMessage {
			if t.hasID {
				t.prevID = t.id
			}
			t.lastError = t.errorEvent
		}
		t.id, t.hasID, t.errorEvent, t.inMessage = "", false, false, false
		return
	}
	t.inMessage = true
	field, value, _ := strings.Cut(string(t.line), ":")
	value = strings.TrimPrefix(value, " ")
	switch {
	case t.lineLen > len(t.line):
		// Longer than any id or event type pmd sends: a data line.
	case field == "id":
		t.id, t.hasID = value, true
	case field == "event":
		t.errorEvent = value == "error"
	}
	t.line, t.lineLen = t.line[:0], 0
}

// inside reports whether the stream passed on stops inside a message.
func (t *relayTail) inside() bool { return t.inMessage || t.lineLen > 0 }

// endedByLeader reports whether the stream passed on ends with a whole error event.
func (t *relayTail) endedByLeader() bool { return !t.inside() && t.lastError }

// cut returns what ends the message under way, if any, so that what follows is a
// message of its own, and none of the message cut short is an event: a newline ends
// its line, and the message is ended as one of relayCutType, with the id of the last
// message passed on whole (the last event id a browser keeps is set by each message
// ended, of any type).
func (t *relayTail) cut() []byte {
	if !t.inside() {
		return nil
	}
	var b []byte
	if t.lineLen > 0 {
		b = append(b, '\n')
	}
	return fmt.Appendf(b, "id: %s\nevent: %s\n\n", t.prevID, relayCutType)
}

// sendToLeader sends r to the leader, waiting up to leaderWait for one. Right after the
// leader dies, Raft still names it until the heartbeat timeout ends (LeaderHTTP returns
// its address at once), and a new leader may not listen yet: a forward whose dial fails
// reached nobody, so the leader is asked for again after a short back-off, and r sent to
// the one then named, within the same wait. A forward that may have reached a leader (a
// connection to it was had) is never sent again, to it or another: a write would be
// applied twice; its error says that the write may have been applied.
//
// r's body is read first, under the server's MaxBody and memory budget as a handler's
// (readRaw), and each forward sends it from memory: a body streamed into a forward
// refused at the dial could not be sent again, and the server only sees a client leave
// once its body is read. The body of a GET or HEAD is not read, nor sent: no route reads
// one, and a relayed subscription would hold it in memory, outside the budget, for as
// long as it runs.
func (s *Server) sendToLeader(ctx context.Context, r *http.Request, leaderRead bool) (*http.Response, error) {
	var body []byte
	if r.ContentLength != 0 && r.Method != http.MethodGet && r.Method != http.MethodHead {
		var err error
		if body, err = readRaw(r); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(leaderWait)
	backoff := firstForwardBackoff
	var refused string // why the last leader named could not be dialled
	for {
		addr, err := s.opts.Node.LeaderHTTP(ctx, time.Until(deadline).Round(time.Millisecond))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if refused != "" {
				return nil, errUnavailable(fmt.Sprintf("no leader answered within %s: %v (before that, %s)", leaderWait, err, refused))
			}
			return nil, errUnavailable(err.Error())
		}
		var reached atomic.Bool // a connection to the leader was had: r may have reached it
		trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { reached.Store(true) }}
		req, err := leaderRequest(httptrace.WithClientTrace(ctx, trace), r, body, addr, leaderRead)
		if err != nil {
			return nil, err
		}
		resp, err := s.forwarder.Do(req)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := "forwarding to the leader at " + addr + ": " + err.Error()
		if reached.Load() || !dialFailed(err) {
			if reached.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead {
				msg += ": the request may have reached the leader, and the write may have been applied"
			}
			return nil, errUnavailable(msg)
		}
		refused = msg
		pause := min(backoff, time.Until(deadline))
		if pause <= 0 {
			return nil, errUnavailable("no leader answered within " + leaderWait.String() + ": " + refused)
		}
		backoff = min(2*backoff, maxForwardBackoff)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// dialFailed reports whether err is a failure to connect (refused, no route): nothing of
// the request was sent.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// The back-off between forwards refused at the dial: the first, doubling to the most. A
// dead leader's address refuses at once, and LeaderHTTP names it again until Raft's
// heartbeat timeout ends: without a pause the retries would spin.
const (
	firstForwardBackoff = 25 * time.Millisecond
	maxForwardBackoff   = 400 * time.Millisecond
)

// leaderRequest is r, with body, to be sent to the leader at addr.
func leaderRequest(ctx context.Context, r *http.Request, body []byte, addr string, leaderRead bool) (*http.Request, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if leaderRead {
		q := r.URL.Query()
		q.Set("consistency", "leader")
		u.RawQuery = q.Encode()
	}
	var b io.Reader = http.NoBody
	if len(body) > 0 {
		b = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), b)
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		switch k {
		case "Origin", "Connection", "Content-Length", "Accept-Encoding":
			continue // the Origin was checked here; the transport sets the others
		case "Idempotency-Key", "X-Idempotency-Key":
			// With one, Go's transport takes a POST or DELETE for one it may send again
			// by itself once it was written, on a kept-alive connection that broke: pmd
			// does not honour the key, and the leader would apply the write twice.
			// Without, it sends a write again only if none of it was written.
			continue
		}
		req.Header[k] = v
	}
	req.Header.Set(headerForwarded, r.Host)
	return req, nil
}

// appliedWriter stamps headerApplied when the header is written: after the handler's
// write was applied.
type appliedWriter struct {
	*statusRecorder
	node    Node
	stamped bool
}

func (w *appliedWriter) stamp() {
	if !w.stamped {
		w.stamped = true
		w.Header().Set(headerApplied, strconv.FormatUint(w.node.AppliedIndex(), 10))
	}
}

func (w *appliedWriter) WriteHeader(code int) {
	w.stamp()
	w.statusRecorder.WriteHeader(code)
}

func (w *appliedWriter) Write(b []byte) (int, error) {
	w.stamp()
	return w.statusRecorder.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *appliedWriter) Unwrap() http.ResponseWriter { return w.statusRecorder }

// cluster answers GET /v1/cluster: how the cluster stands, as this node sees it.
func (s *Server) cluster(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Cluster == nil {
		return errNotFound("this pmd is a single node, not a cluster (pmd serve --node-id)")
	}
	c, err := s.opts.Cluster(r.Context())
	if err != nil {
		return errUnavailable(err.Error())
	}
	if c.Nodes == nil {
		c.Nodes = []ClusterNode{}
	}
	return writeJSON(w, http.StatusOK, c)
}

// joinNode answers POST /v1/cluster/nodes {"id", "raft_addr"}: the node joins.
func (s *Server) joinNode(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Node == nil {
		return errNotFound("this pmd is a single node, not a cluster (pmd serve --node-id)")
	}
	v, err := readBody(r)
	if err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return errBadRequest("the body must be a JSON object with id and raft_addr")
	}
	id, _ := obj["id"].(string)
	addr, _ := obj["raft_addr"].(string)
	for k := range obj {
		if k != "id" && k != "raft_addr" {
			return errBadRequest("unknown field %q: a join takes id and raft_addr", k)
		}
	}
	if id == "" || addr == "" {
		return errBadRequest("a join needs id and raft_addr, both non-empty strings")
	}
	if err := checkRaftAddr(addr); err != nil {
		return err
	}
	if err := s.opts.Node.Join(r.Context(), id, addr); errors.Is(err, ErrConflict) {
		return &apiError{http.StatusConflict, codeConflict, "join " + id + ": " + err.Error()}
	} else if err != nil {
		return errUnavailable("join " + id + ": " + err.Error())
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeNode answers DELETE /v1/cluster/nodes/{id}: the node leaves the configuration.
func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Node == nil {
		return errNotFound("this pmd is a single node, not a cluster (pmd serve --node-id)")
	}
	if err := noBody(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	switch err := s.opts.Node.Remove(r.Context(), id); {
	case errors.Is(err, ErrNotFound):
		return errNotFound("remove %s: %v", id, err)
	case errors.Is(err, ErrConflict):
		return &apiError{http.StatusConflict, codeConflict, "remove " + id + ": " + err.Error()}
	case err != nil:
		return errUnavailable("remove " + id + ": " + err.Error())
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkRaftAddr refuses a join's raft_addr that is not HOST:PORT, a port from 1 to 65535:
// the leader would add a voter that nobody can dial.
func checkRaftAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errBadRequest("raft_addr %q is not HOST:PORT: %v", addr, err)
	}
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
		return errBadRequest("raft_addr %q is not HOST:PORT with a host and a port from 1 to 65535", addr)
	}
	return nil
}
